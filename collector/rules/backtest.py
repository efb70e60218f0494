"""`fieldwatch rules backtest`: replay stored metric history through a rule set and report, per
rule, how many tickets it would have opened, when, and how often it would have flapped, so an
operator sees the noise before shipping a rule.

The replay drives the same Engine the collector runs: messages in the order they were received,
`received_at` as the arrival time, and engine ticks every TICK seconds of history time (so
absence rules are judged as they would have been live). Tickets follow the store's rule: at most
one open per fingerprint; a clear resolves it when the rule auto-resolves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.alerts import TicketChange, plan
from fieldwatch.collector.rules.engine import Engine, EngineState, Transition
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.schema import messages

from fieldwatch import wire
from fieldwatch.errors import WireFormatError

TICK = 10.0
CHUNK = 2000


@dataclass
class RuleReport:
    rule: str
    severity: str
    tickets: int = 0
    opened_at: list[float] = field(default_factory=list)
    flapping: int = 0  # fingerprints that were marked flapping
    muted: int = 0  # firings a silence or a parent outage would have kept from the desk
    devices: set[str] = field(default_factory=set)


@dataclass
class Report:
    since: float
    until: float
    messages: int = 0
    samples: int = 0
    skipped: int = 0  # stored payloads that no longer decode
    rules: dict[str, RuleReport] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since, "until": self.until, "messages": self.messages,
            "samples": self.samples, "skipped": self.skipped,
            "rules": [{"rule": r.rule, "severity": r.severity, "tickets": r.tickets,
                       "opened_at": r.opened_at, "flapping": r.flapping, "muted": r.muted,
                       "devices": sorted(r.devices)}
                      for r in sorted(self.rules.values(), key=lambda r: (-r.tickets, r.rule))],
        }


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")


def format_report(report: Report) -> str:
    lines = [f"replayed {report.messages} messages ({report.samples} samples) from "
             f"{_iso(report.since)} to {_iso(report.until)} UTC"
             + (f"; {report.skipped} undecodable skipped" if report.skipped else "")]
    lines.append(f"{'RULE':<32} {'SEV':<3} {'TICKETS':>7} {'FLAPPING':>8} {'MUTED':>5}  "
                 "DEVICES  FIRST OPENED → LAST")
    for r in sorted(report.rules.values(), key=lambda r: (-r.tickets, r.rule)):
        when = (f"{_iso(r.opened_at[0])} → {_iso(r.opened_at[-1])}" if r.opened_at else "-")
        lines.append(f"{r.rule:<32} {r.severity:<3} {r.tickets:>7} {r.flapping:>8} "
                     f"{r.muted:>5}  {len(r.devices):>7}  {when}")
    return "\n".join(lines)


class _Desk:
    """The ticket store's rules, in memory: one open ticket per fingerprint."""

    def __init__(self, report: Report, ruleset: RuleSet) -> None:
        self.report = report
        self.open: set[str] = set()
        self.flapped: set[str] = set()
        for r in ruleset.rules:
            report.rules[r.name] = RuleReport(r.name, r.severity)

    def apply(self, changes: list[TicketChange]) -> None:
        for c in changes:
            r = self.report.rules[c.rule]
            if c.flapping and c.fingerprint not in self.flapped:
                self.flapped.add(c.fingerprint)
                r.flapping += 1
            if c.muted:
                if c.kind == "fire":
                    r.muted += 1
                continue
            if c.kind == "fire" and c.fingerprint not in self.open:
                self.open.add(c.fingerprint)
                r.tickets += 1
                r.opened_at.append(c.first_ts)
                r.devices.add(f"{c.site}/{c.device}")
            elif c.kind == "resolve" and c.auto_resolve:
                self.open.discard(c.fingerprint)


def replay(rows: Any, ruleset: RuleSet, since: float, until: float) -> Report:
    """Replay (kind, payload, received_at) rows in order; pure apart from iterating `rows`."""
    report = Report(since, until)
    desk = _Desk(report, ruleset)
    engine, st = Engine(ruleset), EngineState()
    next_tick = None
    out: list[Transition] = []
    for _kind, payload, received_at in rows:
        if next_tick is None:
            next_tick = received_at + TICK
        while received_at >= next_tick:
            out.extend(engine.tick(st, next_tick))
            next_tick += TICK
        try:
            msg = wire.decode(bytes(payload))
        except WireFormatError:
            report.skipped += 1
            continue
        report.messages += 1
        if isinstance(msg, wire.Metrics):
            report.samples += len(msg.samples)
        engine.observe(st, msg, received_at, out)
        if len(out) > 1000:
            desk.apply(plan(out))
            out = []
    if next_tick is not None:
        out.extend(engine.tick(st, next_tick))
    desk.apply(plan(out))
    return report


def backtest(db: sa.Engine, ruleset: RuleSet, since: float, until: float) -> Report:
    """Replay the `messages` history between `since` and `until` (epoch seconds)."""
    q = (sa.select(messages.c.kind, messages.c.payload, messages.c.received_at)
         .where(messages.c.received_at >= since, messages.c.received_at < until,
                messages.c.kind.in_(("metrics", "event")))
         .order_by(messages.c.received_at, messages.c.id))
    with db.connect() as conn:
        rows = conn.execution_options(yield_per=CHUNK).execute(q)
        return replay(rows, ruleset, since, until)
