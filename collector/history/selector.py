"""A series selector in one string, as in PromQL and in rule unit tests' `series:`:

    disk.used_percent{mount="/", device=~"web-.*", site!="lab"}

The metric name first (required), then optional matchers `key OP "value"` with OP one of
`=`, `!=`, `=~` (regex, full match), `!~`. `device`, `site` and `type` match the device, as
those keys do in a rule file; every other key is a label. Values are double-quoted, with `\\"`
and `\\\\` escapes. The result is the rule language's own Selector.
"""

from __future__ import annotations

import re

from fieldwatch.collector.rules.selectors import Matcher, Selector

from fieldwatch.errors import FieldwatchError

DEVICE_KEYS = ("device", "site", "type")

_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.:-]*)\s*")
_OP = re.compile(r"(=~|!~|!=|=)\s*")
_VALUE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*')
_SPACE = re.compile(r"\s*")


class SelectorError(FieldwatchError):
    """A selector string is malformed; the message says where (1-based column)."""


def _fail(text: str, pos: int, what: str) -> SelectorError:
    return SelectorError(f"selector {text!r}, column {pos + 1}: {what}")


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def matcher(op: str, value: str) -> Matcher:
    if op in ("=~", "!~"):
        try:
            return Matcher(op, value, re.compile(value))
        except re.error as exc:
            raise SelectorError(f"bad regex {value!r}: {exc}") from None
    return Matcher(op, value)


def parse_selector(text: str) -> tuple[str, Selector]:
    """(metric, selector) from `metric{...}`; raises SelectorError naming the column."""
    m = _NAME.match(text)
    if m is None:
        raise _fail(text, len(text) - len(text.lstrip()), "expected a metric name")
    metric, pos = m.group(1), m.end()
    labels: dict[str, Matcher] = {}
    device: dict[str, Matcher] = {}
    if pos < len(text) and text[pos] == "{":
        pos += 1
        while True:
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if pos < len(text) and text[pos] == "}":
                pos += 1
                break
            k = _NAME.match(text, pos)
            if k is None:
                raise _fail(text, pos, "expected a label name or '}'")
            op = _OP.match(text, k.end())
            if op is None:
                raise _fail(text, k.end(), "expected =, !=, =~ or !~")
            v = _VALUE.match(text, op.end())
            if v is None:
                raise _fail(text, op.end(), 'expected a "double-quoted" value')
            key = k.group(1)
            into = device if key in DEVICE_KEYS else labels
            if key in into:
                raise _fail(text, k.start(1), f"{key} is matched twice")
            into[key] = matcher(op.group(1), _unescape(v.group(1)))
            pos = v.end()
            if pos < len(text) and text[pos] == ",":
                pos += 1
            elif pos >= len(text) or text[pos] != "}":
                raise _fail(text, pos, "expected ',' or '}'")
    pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
    if pos < len(text):
        raise _fail(text, pos, f"unexpected {text[pos:pos + 20]!r} after the selector")
    return metric, Selector(labels, device.get("device"), device.get("site"), device.get("type"))


def format_selector(metric: str, sel: Selector) -> str:
    """The string form again (parse_selector(format_selector(m, s)) == (m, s))."""
    parts = [(k, m) for k, m in (("device", sel.device), ("site", sel.site), ("type", sel.type))
             if m is not None]
    parts += sorted(sel.labels.items())
    body = ", ".join(f'{k}{m.op}"{_escape(m.value)}"' for k, m in parts)
    return f"{metric}{{{body}}}" if body else metric


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
