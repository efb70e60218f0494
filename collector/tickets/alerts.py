"""Alert transitions → ticket changes, pure. Coalesces a batch so a storm of repeats for one
fingerprint costs one row update, not one per sample."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from fieldwatch.collector.rules.engine import Transition
from fieldwatch.collector.rules.templates import render


@dataclass
class TicketChange:
    """What one batch does to the ticket of one fingerprint, in order of kinds."""

    kind: Literal["fire", "repeat", "resolve"]
    fingerprint: str
    rule: str
    site: str
    device: str
    labels: Mapping[str, str]
    severity: str
    title: str
    description: str
    team: str | None
    value: float
    first_ts: float
    last_ts: float
    count: int = 1
    auto_resolve: bool = True
    diagnostics: tuple[str, ...] = field(default_factory=tuple)
    on_recurrence: str = "reopen"  # within the verification window: reopen | new | ignore
    verify_window: float | None = None  # seconds; None: the SLA policy's default
    # Added by the rule engine; consumers that ignore them keep the skeleton's behaviour.
    flapping: bool = False  # the alert changed state too often: one ticket, marked flapping
    silenced: str | None = None  # id of the silence that mutes it: record, open no ticket
    suppressed_by: str | None = None  # fingerprint of the parent's outage alert explaining it
    parent: str | None = None  # the parent device ("site/device" or "device") that is down
    reason: str = ""  # why, in words (offline cause, absence gap, event type)
    routing: Mapping[str, str] = field(default_factory=dict)  # routing labels for desks
    resolution: str = ""  # resolve: why, when not its own condition ("no data ...")

    @property
    def muted(self) -> bool:
        """Silenced or suppressed by a parent: recorded, but opens and updates no ticket."""
        return self.silenced is not None or self.suppressed_by is not None


def _change(t: Transition, kind: Literal["fire", "repeat", "resolve"]) -> TicketChange:
    rule = t.rule
    values = {"device": t.device, "site": t.site, "value": t.value, "rule": rule.name,
              "metric": rule.metric, "severity": rule.severity, "reason": t.reason,
              "type": t.dtype}
    return TicketChange(
        kind=kind, fingerprint=t.fingerprint, rule=rule.name, site=t.site, device=t.device,
        labels=dict(t.labels), severity=rule.severity,
        # only an opening needs text; repeats in a storm skip the rendering
        title=render(rule.ticket.title, values, t.labels) if kind == "fire" else "",
        description=render(rule.ticket.description, values, t.labels) if kind == "fire" else "",
        team=rule.ticket.team, value=t.value, first_ts=t.ts, last_ts=t.ts,
        on_recurrence=rule.on_recurrence, verify_window=rule.verify_window,
        auto_resolve=rule.auto_resolve, diagnostics=rule.diagnostics, count=t.count,
        flapping=t.flapping, silenced=t.silenced, suppressed_by=t.suppressed_by,
        parent=t.parent, reason=t.reason, routing=dict(rule.ticket.routing),
        resolution=t.resolution,
    )


_KIND = {"firing": "fire", "update": "repeat", "resolved": "resolve"}


def plan(transitions: Iterable[Transition]) -> list[TicketChange]:
    """Ticket changes for a batch of transitions; consecutive repeats of a fingerprint merge."""
    out: list[TicketChange] = []
    last_repeat: dict[str, TicketChange] = {}
    for t in transitions:
        kind = _KIND[t.kind]
        if kind == "repeat":
            prev = last_repeat.get(t.fingerprint)
            if prev is not None:
                prev.count += t.count
                prev.value, prev.last_ts = t.value, t.ts
                prev.flapping = prev.flapping or t.flapping
                continue
            change = _change(t, "repeat")
            last_repeat[t.fingerprint] = change
        else:
            last_repeat.pop(t.fingerprint, None)
            change = _change(t, kind)  # type: ignore[arg-type]
        out.append(change)
    return out
