"""`fieldwatch rules backtest`: replay stored metric history through a rule set and report, per
rule, how many tickets it would have opened, when, and how often it would have flapped, so an
operator sees the noise before shipping a rule.

It reads the metric history (collector/history): the raw samples of the metrics the rules read,
rebuilt into one message per device and timestamp (history/replay.py), merged in time order
with the stored events, so it reaches back `history.raw_for` (2 days by default). The samples
are what the rules saw live, the agent's gap accounting included, so they go straight to the
rule engine. `source="messages"` replays the stored raw messages instead (kept
`keep_raw_for`) through the pipeline's `prepare_all` (duplicate and gap accounting, the engine,
ticket planning, muting), with `received_at` as the arrival time. Either way engine ticks come
every TICK seconds of history time (so absence rules are judged as they would have been live),
and sample times stand for arrival times in the history. What the planned changes do to
tickets is the store's decision (`tickets.recurrence`): at most one open ticket per fingerprint,
a clear resolves it when the rule auto-resolves, and a recurrence within the verification window
reopens it (or opens a new one, or is ignored, per the rule's `on_recurrence`). So `opened` and
`reopened` are what the collector would have counted; people's actions are not in the history
(a ticket a person closed early would have opened anew).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.history.replay import ACCOUNTING, metrics_messages
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import Sequences, prepare_all, split_muted
from fieldwatch.collector.rules.engine import SNMP_UP, Engine, EngineState, Transition
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.schema import messages
from fieldwatch.collector.tickets.alerts import TicketChange, plan
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
    source: str = "history"  # history (raw samples and events) | messages

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since, "until": self.until, "source": self.source,
            "messages": self.messages,
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


class _Replay:
    """Batches of messages through the engine, ticks every TICK seconds of history time."""

    def __init__(self, report: Report, ruleset: RuleSet, verify_window: float | None,
                 accounted: bool) -> None:
        self.report = report
        if verify_window is None:
            verify_window = DeskPolicy().sla.verify_window
        self.desk = _Desk(report, ruleset, verify_window)
        self.engine, self.st = Engine(ruleset), EngineState()
        # messages from the `messages` table go through the pipeline's own gap accounting;
        # messages from the history carry what it produced live (history/replay.py)
        self.accounted = accounted
        self.sequences: Sequences = {}
        self.items: list[Received] = []
        self.next_tick: float | None = None

    def add(self, item: Received) -> None:
        at = item.received_at
        if self.next_tick is None:
            self.next_tick = at + TICK
        while at >= self.next_tick:
            self.tick(self.next_tick)
            self.next_tick += TICK
        self.report.messages += 1
        if isinstance(item.message, wire.Metrics):  # as sent: the gap accounting left out
            self.report.samples += sum(1 for s in item.message.samples
                                       if s.name not in ACCOUNTING)
        self.items.append(item)
        if len(self.items) >= CHUNK:
            self.run_batch()

    def run_batch(self) -> None:
        if not self.items:
            return
        if self.accounted:
            transitions: list[Transition] = []
            for item in self.items:
                self.engine.observe(self.st, item.message, item.received_at, transitions)
            self.desk.apply([c for part in split_muted(plan(transitions)) for c in part])
        else:
            batch, muted = prepare_all(self.items, self.engine, self.st, self.sequences)
            self.desk.apply([*batch.changes, *muted])  # the ledger skips the muted ones
        self.items.clear()

    def tick(self, t: float) -> None:
        self.run_batch()
        self.desk.apply([c for part in split_muted(plan(self.engine.tick(self.st, t)))
                         for c in part])

    def finish(self) -> Report:
        if self.next_tick is not None:
            self.tick(self.next_tick)
        return self.report


def replay(rows: Any, ruleset: RuleSet, since: float, until: float,
           verify_window: float | None = None) -> Report:
    """Replay (kind, payload, received_at) rows of the `messages` table in order; pure apart
    from iterating `rows`. `verify_window`: the SLA policy's default (seconds) for rules that
    set none."""
    run = _Replay(Report(since, until, source="messages"), ruleset, verify_window, False)
    for _kind, payload, received_at in rows:
        try:
            msg = wire.decode(bytes(payload))
        except WireFormatError:
            run.report.skipped += 1
            continue
        run.add(Received(msg, bytes(payload), received_at))
    return run.finish()


def replay_history(messages: Iterable[tuple[float, wire.Message]], ruleset: RuleSet,
                   since: float, until: float, verify_window: float | None = None) -> Report:
    """Replay (time, message) pairs in time order: metrics messages read back from the history
    (with the gap accounting they carried live) and events, judged at those times."""
    run = _Replay(Report(since, until, source="history"), ruleset, verify_window, True)
    for at, msg in messages:
        run.add(Received(msg, b"", at))
    return run.finish()


def backtest(db: sa.Engine, ruleset: RuleSet, since: float, until: float,
             verify_window: float | None = None, source: str = "history") -> Report:
    """Replay the history between `since` and `until` (epoch seconds): raw samples of the
    metrics the rules read plus stored events (`history`, reaching back `raw_for`), or the
    stored messages (`messages`, reaching back `keep_raw_for`)."""
    q = (sa.select(messages.c.kind, messages.c.payload, messages.c.received_at)
         .where(messages.c.received_at >= since, messages.c.received_at < until,
                messages.c.kind.in_(("metrics", "event") if source == "messages"
                                    else ("event",)))
         .order_by(messages.c.received_at, messages.c.id))
    with db.connect() as conn:
        rows = conn.execution_options(yield_per=CHUNK).execute(q)
        if source == "messages":
            return replay(rows, ruleset, since, until, verify_window)
        metrics = set(ruleset.by_metric())
        if any(r.kind == "offline" for r in ruleset.rules):
            metrics.add(SNMP_UP)
        skipped = [0]
        events = _decoded(rows, skipped)
        samples = ((m.ts, m) for m in metrics_messages(db, metrics, since, until))
        report = replay_history(heapq.merge(samples, events, key=lambda p: p[0]), ruleset,
                                since, until, verify_window)
        report.skipped = skipped[0]
        return report


def _decoded(rows: Iterable[Any], skipped: list[int]) -> Iterator[tuple[float, wire.Message]]:
    for _kind, payload, received_at in rows:
        try:
            yield received_at, wire.decode(bytes(payload))
        except WireFormatError:
            skipped[0] += 1
