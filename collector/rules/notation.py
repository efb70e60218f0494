"""Compact series notation for rule unit tests, as in promtool:

    '1 2 3'       three values, one per step
    '0+10x5'      0 10 20 30 40 50   (start, step, then x and how many more)
    '100-1x3'     100 99 98 97
    '7x2'         7 7 7
    '_'  '_x3'    one / three steps with no sample (a gap)

Values are separated by whitespace. `parse_series` raises ValueError naming the bad token.
"""

from __future__ import annotations

import re

_NUM = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_EXPAND = re.compile(rf"({_NUM})(?:([+-])((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))?x(\d+)")
_SINGLE = re.compile(_NUM)
_GAPS = re.compile(r"_(?:x(\d+))?")
MAX_POINTS = 100_000


def parse_series(text: str) -> list[float | None]:
    """The values of a notation string, None for a gap."""
    if not isinstance(text, str):
        text = str(text)
    out: list[float | None] = []
    for tok in text.split():
        if m := _GAPS.fullmatch(tok):
            n = int(m.group(1)) if m.group(1) else 1
            _room(out, n, tok)
            out.extend([None] * n)
        elif m := _EXPAND.fullmatch(tok):
            start = float(m.group(1))
            step = float(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
            n = int(m.group(4))
            _room(out, n + 1, tok)
            out.extend(start + i * step for i in range(n + 1))
        elif _SINGLE.fullmatch(tok):
            _room(out, 1, tok)
            out.append(float(tok))
        else:
            raise ValueError(f"bad value {tok!r}: write numbers, 'a+bxN', 'axN', '_' or '_xN'")
    return out


def _room(out: list[float | None], n: int, tok: str) -> None:
    if len(out) + n > MAX_POINTS:
        raise ValueError(f"{tok!r}: a test series is limited to {MAX_POINTS} points")


_SERIES = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.:]*)\s*(?:\{(.*)\})?\s*")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_selector(text: str) -> tuple[str, dict[str, str]]:
    """`name{k="v", ...}` → (name, labels); raises ValueError."""
    m = _SERIES.fullmatch(text or "")
    if m is None:
        raise ValueError(f'bad series {text!r}: write name{{label="value", ...}}')
    name, body = m.group(1), m.group(2) or ""
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(body) and body[pos:].strip():
        lm = _LABEL.match(body, pos)
        if lm is None:
            raise ValueError(f'bad labels in {text!r} at {body[pos:]!r}: write k="v"')
        labels[lm.group(1)] = re.sub(r"\\(.)", r"\1", lm.group(2))
        pos = lm.end()
    return name, labels
