"""What the worker stores as history: rows per message through the batch's own write path
(split and set aside with it), series ids shared across collectors, samples left out counted."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from fieldwatch.collector.history.ingest import KEY_MAX, Recorder, SampleRows
from fieldwatch.collector.history.query import EmbeddedHistory
from fieldwatch.collector.history.schema import history_devices, samples, series, series_sets
from fieldwatch.collector.history.store import resolve
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from tests.history.helpers import DAY, T0, H, feed, message, worker
from tests.history.test_query import q


def _count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_device_sending_several_kinds_of_message_gets_a_set_for_each(store: Store) -> None:
    clock = FakeClock(T0)
    msgs = [message("x", i + 1, T0 + i * 10, {"temp": float(i), "fan": 1.0} if i % 2 else
                    {"temp": float(i), "disk{mount=/}": 2.0}) for i in range(6)]
    feed(worker(store, clock), clock, msgs)
    assert _count(store, series_sets) == 2 and _count(store, samples) == 6
    [s] = EmbeddedHistory(store.engine, H, clock).query(q('temp{device="x"}', T0))
    assert s.points == [(T0 + i * 10, float(i)) for i in range(6)]


def test_samples_history_does_not_keep_are_counted(store: Store) -> None:
    clock = FakeClock(T0)
    w = worker(store, clock)
    long_label = "v" * KEY_MAX
    msgs = [message("x", 1, T0 - 2 * DAY, {"old": 1.0}),  # older than raw_for allows
            message("x", 2, T0 + 2 * 3600, {"future": 1.0}),
            wire.Metrics(device="x", site="s", seq=3, ts=T0, samples=[
                wire.Sample("ok", 1.0), wire.Sample("nul", 1.0, {"a": "b\x00"}),
                wire.Sample("long", 1.0, {"a": long_label}), wire.Sample("ok", 2.0)])]
    feed(w, clock, msgs, at=T0)
    assert w.stats.get("history_samples_dropped_total", "out_of_range") == 2 + 2 * 3
    assert w.stats.get("history_samples_dropped_total", "bad_series") == 3
    assert w.stats.get("history_samples_total") == 1 + 3  # ok, and the agent.* three
    [ok] = EmbeddedHistory(store.engine, H, clock).query(q("ok", T0 - 60, T0 + 60))
    assert ok.points == [(T0, 1.0)]  # the repeat of the series in one message is left out


def test_a_message_set_aside_takes_its_history_rows_with_it(store: Store) -> None:
    clock = FakeClock(T0)
    w = worker(store, clock)
    good = [message("a", 1, T0, {"temp": 1.0}), message("c", 1, T0, {"temp": 3.0})]
    bad = message("b", 2**63, T0, {"temp": 2.0})  # the messages table refuses its seq
    feed(w, clock, [good[0], bad, good[1]])
    assert w.stats.total("dead_letter_total") == 1
    found = EmbeddedHistory(store.engine, H, clock).query(q("temp", T0 - 1, T0 + 1))
    assert [(s.key.device, s.points) for s in found] == [("a", [(T0, 1.0)]), ("c", [(T0, 3.0)])]
    assert w.stats.get("history_samples_total") == 2 * 4
    # the split forgot the bucket marks, so the next rows mark their bucket again
    assert w.recorder is not None and all(
        d.bucket == -1 for d in w.recorder._devices.values())


def test_collectors_meeting_a_new_series_together_share_its_row(pg_url: str) -> None:
    """PostgreSQL: two collectors resolve the same new device, series and set at once."""
    engines = [open_engine(pg_url) for _ in range(2)]
    rows = []
    for _ in engines:
        out = SampleRows()
        Recorder(H.raw_for).add(out, 0, message("x", 1, T0, {f"m{i}": 1.0 for i in range(300)}),
                                T0)
        rows.append(out)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            resolve(engines[i], rows[i], T0)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    (_, d0, s0, *_), (_, d1, s1, *_) = rows[0].rows[0], rows[1].rows[0]
    assert (d0.id, s0.id) == (d1.id, s1.id)
    assert [m.id for m in s0.series] == [m.id for m in s1.series]
    with engines[0].connect() as conn:
        counts = [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in (history_devices, series, series_sets)]
    assert counts == [1, 300, 1]
    for e in engines:
        e.dispose()


def test_one_series_met_with_its_labels_in_another_order_is_one_series(store: Store) -> None:
    """Two kinds of message in one batch, the labels of `m` written in either order: one
    series, every row stored under a set the store knows."""
    clock = FakeClock(T0)
    ab, ba = {"a": "1", "b": "2"}, {"b": "2", "a": "1"}
    msgs = [wire.Metrics(device="x", site="s", seq=1, ts=T0, samples=[
                wire.Sample("m", 1.0, ab), wire.Sample("x", 0.0)]),
            wire.Metrics(device="x", site="s", seq=2, ts=T0 + 10, samples=[
                wire.Sample("m", 2.0, ba), wire.Sample("y", 0.0)])]
    feed(worker(store, clock), clock, msgs)
    [m] = EmbeddedHistory(store.engine, H, clock).query(q("m", T0 - 1, T0 + 60))
    assert m.points == [(T0, 1.0), (T0 + 10, 2.0)] and dict(m.key.labels) == ab
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(series).where(
            series.c.metric == "m")).scalar_one() == 1
