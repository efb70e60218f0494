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


def _change(t: Transition, kind: Literal["fire", "repeat", "resolve"]) -> TicketChange:
    rule = t.rule
    values = {"device": t.device, "site": t.site, "value": t.value, "rule": rule.name,
              "metric": rule.metric, "severity": rule.severity}
    return TicketChange(
        kind=kind, fingerprint=t.fingerprint, rule=rule.name, site=t.site, device=t.device,
        labels=dict(t.labels), severity=rule.severity,
        # only an opening needs text; repeats in a storm skip the rendering
        title=render(rule.ticket.title, values, t.labels) if kind == "fire" else "",
        description=render(rule.ticket.description, values, t.labels) if kind == "fire" else "",
        team=rule.ticket.team, value=t.value, first_ts=t.ts, last_ts=t.ts,
        auto_resolve=rule.auto_resolve, diagnostics=rule.diagnostics,
        on_recurrence=rule.on_recurrence, verify_window=rule.verify_window,
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
                prev.count += 1
                prev.value, prev.last_ts = t.value, t.ts
                continue
            change = _change(t, "repeat")
            last_repeat[t.fingerprint] = change
        else:
            last_repeat.pop(t.fingerprint, None)
            change = _change(t, kind)  # type: ignore[arg-type]
        out.append(change)
    return out
