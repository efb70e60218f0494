"""`rules backtest` counts what the live collector does with the same data: the collector's worker
writes a history into a real store (SQLite and PostgreSQL), then the backtest replays that
stored history, and per rule the tickets opened and reopened agree."""

from __future__ import annotations

import queue
from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import Worker
from fieldwatch.collector.rules.backtest import backtest
from fieldwatch.collector.rules.engine import Engine
from fieldwatch.collector.rules.loader import load_rules
from fieldwatch.collector.store.schema import tickets
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import FakeClock

T0 = 1_800_000_000.0

RULES = """
rules:
  - name: hot                 # fires, clears, fires again within the window: reopened
    metric: temp
    when: value > 80
    severity: P2
    ticket: {title: "{device} hot"}
  - name: hot_new             # the same, but a recurrence opens a new ticket
    metric: temp
    when: value > 80
    on_recurrence: new
    severity: P3
    ticket: {title: "{device} hot (new)"}
  - name: hot_ignored         # the same, but a recurrence is only noted
    metric: temp
    when: value > 80
    on_recurrence: ignore
    severity: P3
    ticket: {title: "{device} hot (ignored)"}
  - name: hot_by_hand         # a person resolves it: firing again refires the open ticket
    metric: temp
    when: value > 80
    auto_resolve: false
    severity: P3
    ticket: {title: "{device} hot (by hand)"}
  - name: hot_short_window    # past its 2-minute window a recurrence is a new fault
    metric: temp
    when: value > 80
    verify_window: 2m
    severity: P3
    ticket: {title: "{device} hot (short)"}
  - name: gaps                # the pipeline's own sequence accounting
    metric: agent.samples_missing
    when: value > 0
    severity: P3
    ticket: {title: "{device} lost messages"}
  - name: silent              # judged on the clock's ticks
    kind: offline
    no_data_for: 3m
    for: 0s
    severity: P1
    ticket: {title: "{device} silent"}
"""

# device x: hot at 1-2, cool 3-4, hot 5 (within 2 min of clearing), cool, then hot again 10 min
# later; seq 7 never arrives (a gap) and seq 4 comes twice (a duplicate); silent 14-20
X = [(1, 40), (2, 90), (3, 90), (4, 40), (4, 40), (5, 40), (6, 90), (8, 40), (9, 40),
     (20, 90), (21, 90), (22, 40), (30, 40)]


def _history() -> list[Received]:
    out = []
    for seq, value in X:
        t = T0 + seq * 60
        msg = wire.Metrics(device="x", site="s", seq=seq, ts=t,
                           samples=[wire.Sample("temp", value)])
        out.append(Received(msg, wire.encode(msg), t + 0.5))
    for i in range(32):  # a steady neighbour keeps the clock ticking through x's silence
        t = T0 + i * 60 + 30
        msg = wire.Metrics(device="y", site="s", seq=i + 1, ts=t,
                           samples=[wire.Sample("temp", 20)])
        out.append(Received(msg, wire.encode(msg), t))
    return sorted(out, key=lambda r: r.received_at)


def _live(store: Store, rules: Path) -> None:
    """The collector's worker, driven by hand: each message as its own batch, then a tick."""
    clock = FakeClock(T0)
    worker = Worker(queue.Queue(), store, Engine(load_rules([rules])), clock, Stats())
    for item in _history():
        clock.t = item.received_at
        worker.process([item])
        worker.tick(item.received_at)


def _counted(store: Store) -> dict[str, tuple[int, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(tickets.c.rule, sa.func.count(),
                                      sa.func.sum(tickets.c.reopen_count))
                            .group_by(tickets.c.rule)).all()
    return {r: (int(n), int(reopened)) for r, n, reopened in rows}


def test_backtest_counts_what_the_collector_opened_and_reopened(store: Store,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    _live(store, tmp_path / "r.yaml")
    live = _counted(store)
    # what the collector did, spelled out; the case is `hot`: one ticket, reopened twice
    assert live == {"hot": (1, 2), "hot_new": (3, 0), "hot_ignored": (1, 0),
                    "hot_by_hand": (1, 0), "hot_short_window": (2, 1), "gaps": (1, 0),
                    "silent": (1, 1)}
    report = backtest(store.engine, load_rules([tmp_path]), T0, T0 + 3600,
                      store.policy.sla.verify_window)
    replayed = {r.rule: (r.tickets, r.reopened) for r in report.rules.values() if r.tickets}
    assert replayed == live
    assert report.as_json()["rules"][0].keys() >= {"opened", "reopened", "tickets"}


def test_rules_test_counts_tickets_as_the_collector_does(tmp_path: Path) -> None:
    """`ticket_test` in rule unit tests: a recurrence reopens, it does not open a second."""
    from fieldwatch.collector.rules.testing import run_test_files

    (tmp_path / "r.yaml").write_text(RULES)
    (tmp_path / "t.yaml").write_text("""
rule_files: [r.yaml]
tests:
  - input_series: [{series: 'temp{device="d"}', values: '90 40 90 40 90'}]
    ticket_test:
      - {eval_time: 4m, rule: hot, opened: 1, reopened: 2}
      - {eval_time: 4m, rule: hot_new, opened: 3}
      - {eval_time: 4m, rule: hot_ignored, opened: 1, reopened: 0}
  - name: wrong
    input_series: [{series: 'temp{device="d"}', values: '90 40 90'}]
    ticket_test:
      - {eval_time: 2m, rule: hot, opened: 2}
""")
    ok, wrong = run_test_files([tmp_path / "t.yaml"])
    assert ok.failures == []
    assert wrong.failures == ["at 2m rule hot: expected 2 ticket(s) opened, got 1 opened, "
                              "1 reopened"]
