"""`fieldwatch rules backtest`: replay stored metric history through a rule set and report, per
rule, how many tickets it would have opened, when, and how often it would have flapped, so an
operator sees the noise before shipping a rule.

The replay runs the collector's own code: messages in the order they were received go through
the pipeline's `prepare_all` (duplicate and gap accounting, the rule engine, ticket planning,
muting), with `received_at` as the arrival time and engine ticks every TICK seconds of history
time (so absence rules are judged as they would have been live). What the planned changes do to
tickets is the store's decision (`tickets.recurrence`): at most one open ticket per fingerprint,
a clear resolves it when the rule auto-resolves, and a recurrence within the verification window
reopens it (or opens a new one, or is ignored, per the rule's `on_recurrence`). So `opened` and
`reopened` are what the collector would have counted; people's actions are not in the history
(a ticket a person closed early would have opened anew).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.alerts import TicketChange, plan
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import Sequences, prepare_all, split_muted
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.schema import messages
from fieldwatch.collector.tickets.config import DeskPolicy
from fieldwatch.collector.tickets.recurrence import Ledger

from fieldwatch import wire
from fieldwatch.errors import WireFormatError

TICK = 10.0
CHUNK = 2000


@dataclass
class RuleReport:
    rule: str
    severity: str
    tickets: int = 0  # tickets opened (new ones; a recurrence with `on_recurrence: new` too)
    reopened: int = 0  # resolved tickets a recurrence within the verification window reopened
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
                       "opened": r.tickets, "reopened": r.reopened, "opened_at": r.opened_at,
                       "flapping": r.flapping, "muted": r.muted,
                       "devices": sorted(r.devices)}
                      for r in sorted(self.rules.values(), key=lambda r: (-r.tickets, r.rule))],
        }


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")


def format_report(report: Report) -> str:
    lines = [f"replayed {report.messages} messages ({report.samples} samples) from "
             f"{_iso(report.since)} to {_iso(report.until)} UTC"
             + (f"; {report.skipped} undecodable skipped" if report.skipped else "")]
    lines.append(f"{'RULE':<32} {'SEV':<3} {'OPENED':>6} {'REOPENED':>8} {'FLAPPING':>8} "
                 f"{'MUTED':>5}  DEVICES  FIRST OPENED → LAST")
    for r in sorted(report.rules.values(), key=lambda r: (-r.tickets, r.rule)):
        when = (f"{_iso(r.opened_at[0])} → {_iso(r.opened_at[-1])}" if r.opened_at else "-")
        lines.append(f"{r.rule:<32} {r.severity:<3} {r.tickets:>6} {r.reopened:>8} "
                     f"{r.flapping:>8} {r.muted:>5}  {len(r.devices):>7}  {when}")
    return "\n".join(lines)


class _Desk:
    """Counts what the planned ticket changes do, through the store's own decision."""

    def __init__(self, report: Report, ruleset: RuleSet, verify_window: float) -> None:
        self.report = report
        self.ledger = Ledger(verify_window)
        self.flapped: set[str] = set()
        for r in ruleset.rules:
            report.rules[r.name] = RuleReport(r.name, r.severity)

    def apply(self, changes: list[TicketChange]) -> None:
        for c in changes:
            r = self.report.rules[c.rule]
            if c.flapping and c.fingerprint not in self.flapped:
                self.flapped.add(c.fingerprint)
                r.flapping += 1
            if c.muted and c.kind == "fire":
                r.muted += 1
            how = self.ledger.apply(c)
            if how in ("open", "new"):
                r.tickets += 1
                r.opened_at.append(c.first_ts)
                r.devices.add(f"{c.site}/{c.device}")
            elif how == "reopen":
                r.reopened += 1


def replay(rows: Any, ruleset: RuleSet, since: float, until: float,
           verify_window: float | None = None) -> Report:
    """Replay (kind, payload, received_at) rows in order; pure apart from iterating `rows`.
    `verify_window`: the SLA policy's default (seconds) for rules that set none."""
    report = Report(since, until)
    if verify_window is None:
        verify_window = DeskPolicy().sla.verify_window
    desk = _Desk(report, ruleset, verify_window)
    engine, st = Engine(ruleset), EngineState()
    sequences: Sequences = {}
    items: list[Received] = []

    def run_batch() -> None:
        if items:
            batch, muted = prepare_all(items, engine, st, sequences)
            desk.apply([*batch.changes, *muted])  # the ledger skips the muted ones
            items.clear()

    def tick(t: float) -> None:
        run_batch()
        desk.apply([c for part in split_muted(plan(engine.tick(st, t))) for c in part])

    next_tick = None
    for _kind, payload, received_at in rows:
        if next_tick is None:
            next_tick = received_at + TICK
        while received_at >= next_tick:
            tick(next_tick)
            next_tick += TICK
        try:
            msg = wire.decode(bytes(payload))
        except WireFormatError:
            report.skipped += 1
            continue
        report.messages += 1
        if isinstance(msg, wire.Metrics):
            report.samples += len(msg.samples)
        items.append(Received(msg, bytes(payload), received_at))
        if len(items) >= CHUNK:
            run_batch()
    if next_tick is not None:
        tick(next_tick)
    return report


def backtest(db: sa.Engine, ruleset: RuleSet, since: float, until: float,
             verify_window: float | None = None) -> Report:
    """Replay the `messages` history between `since` and `until` (epoch seconds)."""
    q = (sa.select(messages.c.kind, messages.c.payload, messages.c.received_at)
         .where(messages.c.received_at >= since, messages.c.received_at < until,
                messages.c.kind.in_(("metrics", "event")))
         .order_by(messages.c.received_at, messages.c.id))
    with db.connect() as conn:
        rows = conn.execution_options(yield_per=CHUNK).execute(q)
        return replay(rows, ruleset, since, until, verify_window)
