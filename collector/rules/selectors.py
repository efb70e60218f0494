"""Label matchers as operators write them, Prometheus-style, in one string:

    "/"          equal                "!=tmpfs"   not equal
    "=~eth.*"    regex, full match    "!~lo|docker.*"   regex must not match
    "==!odd"     explicit equality (for a literal value that starts with `!` or `=~`)

A label the sample lacks reads as "" (so `{nic: "!=lo"}` matches a sample without `nic`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Matcher:
    op: str  # "=", "!=", "=~", "!~"
    value: str
    rx: re.Pattern[str] | None = field(default=None, compare=False)

    def __call__(self, text: str) -> bool:
        op = self.op
        if op == "=":
            return text == self.value
        if op == "!=":
            return text != self.value
        assert self.rx is not None
        hit = self.rx.fullmatch(text) is not None
        return hit if op == "=~" else not hit

    def __str__(self) -> str:
        return self.value if self.op == "=" else f"{self.op}{self.value}"


def parse_matcher(text: object) -> Matcher:
    """A Matcher from its string form; raises ValueError with a message for the operator."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError("a matcher is a string: value, !=value, =~regex or !~regex")
    s = str(text)
    for op in ("==", "!=", "=~", "!~"):
        if s.startswith(op):
            body = s[len(op):]
            if op == "==":
                return Matcher("=", body)
            if op == "!=":
                return Matcher("!=", body)
            try:
                return Matcher(op, body, re.compile(body))
            except re.error as exc:
                raise ValueError(f"bad regex {body!r}: {exc}") from None
    return Matcher("=", s)


@dataclass(frozen=True, slots=True)
class Selector:
    """Which series a rule reads: labels, device, site and device type matchers."""

    labels: Mapping[str, Matcher] = field(default_factory=dict)
    device: Matcher | None = None
    site: Matcher | None = None
    type: Matcher | None = None

    def matches_device(self, site: str, device: str, dtype: str) -> bool:
        return ((self.device is None or self.device(device))
                and (self.site is None or self.site(site))
                and (self.type is None or self.type(dtype)))

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return all(m(labels.get(k, "")) for k, m in self.labels.items())
