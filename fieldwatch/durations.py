"""Durations as operators write them: `500ms`, `10s`, `5m`, `1h30m`, `7d`, or plain seconds."""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | float | int) -> float:
    """Seconds in `text`; raises ValueError naming the accepted forms."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    s = text.strip()
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"expected a duration such as 30s, 5m, 1h or 7d, got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact form of `seconds` in the units parse_duration reads."""
    if seconds == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        n = seconds / _UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    return f"{seconds:g}s"


class Duration(float):
    """A config field type, in msgspec structs and pydantic models alike: accepts `5m` or 300.

    Values are plain floats (seconds); this class only names the type for the validators.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema  # only processes that use pydantic pay for it

        return core_schema.no_info_before_validator_function(parse_duration,
                                                             core_schema.float_schema())
