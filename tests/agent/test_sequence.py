"""Collector side of store-and-forward: duplicates dropped by sequence number, gaps and
backfills accounted per device, visible in `devices list` and to rules."""

from __future__ import annotations

import json

import pytest
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.ingest.sequence import MAX_RANGES, SeqState, observe
from fieldwatch.collector.pipeline import prepare
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import rules_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.store import Store
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch.cli import main
from fieldwatch.wire import Metrics, Sample, encode


@pytest.mark.parametrize(("seqs", "verdicts", "missing", "backfilled", "dups"), [
    ([1, 2, 3], ["new"] * 3, 0, 0, 0),
    ([1, 2, 2, 1], ["new", "new", "duplicate", "duplicate"], 0, 0, 2),
    ([1, 5], ["new", "new"], 3, 0, 0),
    ([1, 5, 3, 2, 4, 3], ["new", "new", "backfill", "backfill", "backfill", "duplicate"],
     0, 3, 1),
    ([10, 12, 11, 11], ["new", "new", "backfill", "duplicate"], 0, 1, 1),  # first seen: 10
])
def test_observe_table(seqs: list[int], verdicts: list[str], missing: int, backfilled: int,
                       dups: int) -> None:
    s = SeqState()
    assert [observe(s, q, float(q)) for q in seqs] == verdicts
    assert (s.missing, s.backfilled, s.duplicates) == (missing, backfilled, dups)


def test_agent_that_lost_its_state_starts_over_at_one() -> None:
    s = SeqState()
    for q in (1, 2, 3, 4):
        observe(s, q, 100.0 + q)
    assert observe(s, 1, 101.0) == "duplicate"  # a redelivered old message
    assert observe(s, 1, 500.0) == "reset"  # a new stream: newer than anything seen
    assert observe(s, 2, 510.0) == "new"


def test_gap_ranges_are_bounded() -> None:
    s = SeqState()
    for i in range(MAX_RANGES + 50):
        observe(s, 1 + 2 * i, float(i))  # every other number missing
    assert len(s.gaps) == MAX_RANGES
    assert s.missing == MAX_RANGES + 49  # forgotten ranges stay counted as missing


@given(st.integers(1, 60), st.randoms(use_true_random=False), st.integers(0, 30))
def test_any_arrival_order_with_repeats_accounts_for_every_number(
        n: int, rnd, extra: int) -> None:  # type: ignore[no-untyped-def]
    order = list(range(1, n + 1)) + [rnd.randint(1, n) for _ in range(extra)]
    rnd.shuffle(order)
    s = SeqState()
    verdicts = [observe(s, q, float(q)) for q in order]
    first = order[0]
    assert verdicts.count("duplicate") == len(order) - len(set(order)) + sum(
        1 for q in set(order) if q < first)  # numbers below the first one seen are unknowable
    assert s.missing == 0 and s.gaps == []
    assert verdicts.count("new") + verdicts.count("backfill") == n - (first - 1)


# -- through the collector pipeline and store (SQLite and PostgreSQL) --------------------------

GAP_RULE = """
rules:
  - {name: data_lost, metric: agent.samples_missing, when: value > 2, severity: P3,
     ticket: {title: "{device} lost {value:.0f} cycles"}}
"""


def _msg(seq: int, device: str = "a") -> Received:
    m = Metrics(device=device, site="hq", seq=seq, ts=1000.0 + seq, agent="t",
                samples=[Sample("x", float(seq))])
    return Received(m, encode(m), 2000.0 + seq)


def test_pipeline_drops_duplicates_and_accounts_gaps_in_the_device_record(
        store: Store) -> None:
    engine, alerts, seqs = Engine(RuleSet(tuple(rules_from_text(GAP_RULE)))), EngineState(), {}
    store.write(prepare([_msg(q) for q in (1, 2, 6, 2)], engine, alerts, seqs), 3000)
    [dev] = store.list_devices()
    assert (dev["seq_missing"], dev["seq_backfilled"], dev["seq_duplicates"]) == (3, 0, 1)
    assert [t["rule"] for t in store.list_tickets()] == ["data_lost"]  # rules see the gap
    # a collector restart reloads the accounting from the store
    seqs = store.sequence_states()
    store.write(prepare([_msg(q) for q in (4, 3, 5, 6, 7)], engine, alerts, seqs), 3001)
    [dev] = store.list_devices()
    assert (dev["seq_missing"], dev["seq_backfilled"], dev["seq_duplicates"]) == (0, 3, 2)
    assert dev["last_seq"] == 7
    with store.engine.connect() as conn:
        stored = [r[0] for r in conn.exec_driver_sql(
            "select seq from messages where kind = 'metrics' order by id")]
    assert stored == [1, 2, 6, 4, 3, 5, 7]  # each number once


def test_devices_list_shows_missing_and_backfilled(db_url_any: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwatch.collector.store.db import open_engine

    s = Store(open_engine(db_url_any))
    try:
        s.write(prepare([_msg(q) for q in (1, 5, 3)], Engine(RuleSet()), EngineState(), {}), 3000)
    finally:
        s.engine.dispose()
    assert main(["devices", "list", "--json", "--db", db_url_any]) == 0
    [dev] = json.loads(capsys.readouterr().out)
    assert (dev["missing"], dev["backfilled"], dev["duplicates"]) == (2, 1, 0)
    assert dev["refused"] is None  # its agent does not report refusals (MQTT 3.1.1)
    assert main(["devices", "list", "--db", db_url_any]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[-3:] == ["MISSING", "BACKFILLED", "REFUSED"]
    assert row.split()[-3:] == ["2", "1", "—"]  # refused: none reported


def test_devices_list_shows_the_refusals_the_newest_metrics_report(
        db_url_any: str, capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwatch.collector.store.db import open_engine

    def refused(seq: int, n: float) -> Received:
        m = Metrics(device="poller", site="hq", seq=seq, ts=1000.0 + seq, agent="t",
                    samples=[Sample("agent.publish_refused_total", n)])
        return Received(m, encode(m), 2000.0 + seq)

    s = Store(open_engine(db_url_any))
    try:  # the newest by sequence number counts, whatever the order of arrival
        s.write(prepare([refused(1, 0), refused(3, 7), refused(2, 4), _msg(1)],
                        Engine(RuleSet()), EngineState(), {}), 3000)
    finally:
        s.engine.dispose()
    assert main(["devices", "list", "--json", "--db", db_url_any]) == 0
    got = {d["device"]: d["refused"] for d in json.loads(capsys.readouterr().out)}
    assert got == {"a": None, "poller": 7}
    assert main(["devices", "list", "--db", db_url_any]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[-1] == "REFUSED" and rows[2].split()[-1] == "7"
