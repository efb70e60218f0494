"""Validated rules: frozen values the engine evaluates. Built only by the loader."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fieldwatch.collector.rules.anomaly import AnomalySpec
from fieldwatch.collector.rules.expr import Compiled
from fieldwatch.collector.rules.selectors import Matcher, Selector

SEVERITIES = ("P1", "P2", "P3")
Kind = Literal["metric", "absent", "offline", "event"]


@dataclass(frozen=True)
class TicketTemplate:
    title: str
    description: str = ""
    team: str | None = None
    routing: Mapping[str, str] = field(default_factory=dict)  # labels a desk routes by


@dataclass(frozen=True)
class Flapping:
    """More than `changes` state changes within `window`: one ticket marked flapping."""

    changes: int = 6
    window: float = 3600.0


@dataclass(frozen=True)
class EventSpec:
    type: Matcher
    fields: Mapping[str, Matcher] = field(default_factory=dict)
    labels_from: tuple[str, ...] = ()  # event fields that identify the alert
    clear_type: Matcher | None = None  # an event of this type (same labels) resolves it
    resolve_after: float = 0.0  # 0: an event alert stays until cleared or resolved by hand


@dataclass(frozen=True)
class Silence:
    """Alerts matching every matcher while starts_at <= t < ends_at open no ticket.

    Matcher keys: `rule`, `device`, `site`, `type`, `severity`, or any alert label."""

    id: str
    matchers: Mapping[str, Matcher]
    starts_at: float
    ends_at: float
    author: str = ""
    reason: str = ""

    def active(self, t: float) -> bool:
        return self.starts_at <= t < self.ends_at

    def matches(self, fields: Mapping[str, str], labels: Mapping[str, str]) -> bool:
        for k, m in self.matchers.items():
            v = fields.get(k)
            if v is None:
                v = labels.get(k, "")
            if not m(v):
                return False
        return True


@dataclass(frozen=True)
class DeviceInfo:
    type: str = ""
    parent: str | None = None  # "site/device" or "device" (same site)


@dataclass(frozen=True, eq=False)  # identity: one object per loaded rule, hashable
class Rule:
    name: str
    metric: str
    when: Compiled
    when_text: str
    severity: str
    ticket: TicketTemplate
    labels: Mapping[str, str] = field(default_factory=dict)  # equality matchers (legacy view)
    for_seconds: float = 0.0
    clear: Compiled | None = None  # None: the alert clears when `when` is false
    clear_text: str | None = None
    diagnostics: tuple[str, ...] = ()
    auto_resolve: bool = True
    on_recurrence: str = "reopen"  # reopen | new | ignore (a recurrence in the window)
    verify_window: float | None = None  # None: the SLA policy's verify_window
    origin: str = ""  # file:line where the rule is defined
    kind: Kind = "metric"
    selector: Selector = field(default_factory=Selector)
    keep_firing_for: float = 0.0
    update_interval: float = 0.0  # minimum sample time between two ticket updates
    window: float = 0.0  # longest window its functions read (0: keeps no history)
    quiet: tuple[float, float] | None = None  # values where `when` is surely false
    anomaly: AnomalySpec | None = None
    flapping: Flapping | None = None
    no_data_for: float = 0.0  # absent/offline: silence longer than this is absence
    hold: float = 0.0  # offline/absent: wait this long for a parent's outage to show first
    event: EventSpec | None = None
    stale_after: float | None = None  # metric: silence that ends its alerts (None: 3 x interval)
    signature: str = ""  # the rule's source, to tell a changed rule on reload

    # `quiet` unpacked for the hot loop (an empty range when the rule has none)
    quiet_lo: float = field(default=math.inf, init=False, compare=False)
    quiet_hi: float = field(default=-math.inf, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.quiet is not None:
            object.__setattr__(self, "quiet_lo", self.quiet[0])
            object.__setattr__(self, "quiet_hi", self.quiet[1])

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return self.selector.matches_labels(labels)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    silences: tuple[Silence, ...] = ()
    devices: Mapping[str, DeviceInfo] = field(default_factory=dict)  # "site/device" or "device"

    def by_metric(self) -> dict[str, tuple[Rule, ...]]:
        out: dict[str, list[Rule]] = {}
        for r in self.rules:
            if r.kind == "metric" or (r.kind == "absent" and r.metric):
                out.setdefault(r.metric, []).append(r)
        return {k: tuple(v) for k, v in out.items()}

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)
