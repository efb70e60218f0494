"""Samples written by other programs into `*.metrics` files (like node_exporter's textfile
collector): a cron job, a PLC bridge, a vendor tool. One sample per line:

    # comment
    compressor.pressure_bar{unit="2"} 7.9
    ups.on_battery 0 1764230000.5      # optional unix timestamp
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fieldwatch.errors import SourceError
from fieldwatch.wire import Sample

_NAME = r"[A-Za-z_][A-Za-z0-9_.:]*"
_LINE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?\s+(\S+)(?:\s+([^\s#]\S*))?\s*(?:#.*)?$")
_LABEL = re.compile(rf'\s*({_NAME})\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _labels(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if m is None:
            raise SourceError(f"{where}: expected label=\"value\" pairs, got {{{text}}}")
        out[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2))
        pos = m.end()
    return out


def parse_textfile(text: str, file: str = "<text>") -> list[Sample]:
    """Every sample in `text`; any bad line raises SourceError naming `file:line`."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        where = f"{file}:{n}"
        if m is None:
            raise SourceError(f"{where}: expected `name{{labels}} value [timestamp]`")
        name, labels, value, ts = m.groups()
        try:
            v = float(value)
            t = float(ts) if ts is not None else None
        except ValueError:
            raise SourceError(f"{where}: value and timestamp must be numbers") from None
        out.append(Sample(name=name, value=v, labels=_labels(labels or "", where), ts=t))
    return out


class TextfileSource:
    name = "textfile"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def collect(self) -> Iterator[Sample]:
        for path in sorted(self.directory.glob("*.metrics")):
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise SourceError(f"{path}: {exc.strerror}") from None
            yield from parse_textfile(text, str(path))
