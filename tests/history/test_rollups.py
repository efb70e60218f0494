"""Rollups in a real store (SQLite and PostgreSQL): equal to a hand computation over random
series, recomputed when late samples come, and resumed by a restarted collector without
counting anything twice."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from fieldwatch.collector.history import compute
from fieldwatch.collector.history.compute import queued, roll_up
from fieldwatch.collector.history.rollup import FIVE_MIN, HOUR, SETTLE
from fieldwatch.collector.history.schema import rollup_queue
from fieldwatch.collector.history.store import mark_buckets
from fieldwatch.collector.store.store import Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldwatch.clock import FakeClock
from tests.history.helpers import T0, H, feed, labels, message, rolled, worker
from tests.history.test_rollup import by_hand

_devices = itertools.count()
vals = st.none() | st.floats(-1e6, 1e6, allow_nan=False)
cycles = st.lists(st.tuples(st.integers(0, 2 * 360 - 1), vals, vals), min_size=1, max_size=25,
                  unique_by=lambda c: c[0])


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(cycles, st.randoms(use_true_random=False))
def test_rollups_equal_a_hand_computation_over_random_series(store: Store, cycle: list,
                                                             rnd: object) -> None:
    """Two series of one device over two hours at 10 s steps, each present or not in each
    message (so a device has several series sets), arriving in any time order (numbered in
    arrival order, as an agent replaying its buffer does)."""
    device = f"d{next(_devices)}"
    cycle = list(cycle)
    rnd.shuffle(cycle)  # type: ignore[attr-defined]
    msgs = [message(device, i + 1, T0 + k * 10, {"a": a, "b{x=1}": b})
            for i, (k, a, b) in enumerate(cycle)]
    clock = FakeClock(T0)
    end = T0 + 2 * HOUR
    feed(worker(store, clock), clock, msgs, at=end, batch=7)
    assert roll_up(store.engine, end + HOUR + SETTLE, H)["5m"] > 0
    for level, width in (("5m", FIVE_MIN), ("1h", HOUR)):
        got = {k: v for k, v in rolled(store, level).items() if k[0] == device
               and not k[1].startswith("agent.")}
        want = {}
        for metric, lab, pos in (("a", labels(), 1), ("b", labels(x="1"), 2)):
            pts = [(T0 + c[0] * 10, c[pos]) for c in cycle if c[pos] is not None]
            want.update({(device, metric, lab, b): agg for b, agg in by_hand(pts, width).items()})
        assert got.keys() == want.keys()
        for k, (mn, mx, s, n, last) in want.items():
            assert got[k][:2] == (mn, mx) and got[k][3:] == (n, last)
            assert got[k][2] == pytest.approx(s)


def _temps(device: str, seqs: range, start: float = T0, value: float = 1.0) -> list:
    return [message(device, s, start + (s - 1) * 10, {"temp": value + s}) for s in seqs]


def test_a_restarted_collector_resumes_rollups_without_counting_twice(store: Store) -> None:
    clock = FakeClock(T0)
    first = worker(store, clock)
    feed(first, clock, _temps("x", range(1, 14)), batch=1)  # 0 s .. 120 s of bucket T0
    assert roll_up(store.engine, clock.now(), H) == {}  # still open: nothing due
    second = worker(store, clock)  # a restart: the new worker remembers nothing
    feed(second, clock, _temps("x", range(14, 41)), batch=3)  # the rest, and the next bucket
    done = roll_up(store.engine, T0 + 2 * FIVE_MIN + SETTLE, H)
    assert done["5m"] == 2 * 4  # two buckets of temp and the three agent.* series
    want = by_hand([(T0 + (s - 1) * 10, 1.0 + s) for s in range(1, 41)], FIVE_MIN)
    got = {k[3]: v for k, v in rolled(store).items() if k[1] == "temp"}
    assert got == {b: pytest.approx(v) for b, v in want.items() if b < T0 + 2 * FIVE_MIN}
    # a third run marks the same bucket again with a late sample: recomputed, not added to
    third = worker(store, clock)
    feed(third, clock, [message("x", 1000, T0 + 5, {"temp": 100.0})], at=T0 + HOUR)
    roll_up(store.engine, T0 + HOUR + SETTLE, H)
    five = rolled(store)[("x", "temp", labels(), int(T0))]
    assert five[3] == 31 and five[1] == 100.0
    assert queued(store.engine) == {}  # hours are not due yet: they were queued, then...
    hour_due = T0 + HOUR + HOUR + SETTLE
    roll_up(store.engine, hour_due, H)
    assert rolled(store, "1h")[("x", "temp", labels(), int(T0))][3] == 41
    assert roll_up(store.engine, hour_due, H) == {}  # nothing left to do


def test_a_sample_landing_while_the_job_computes_its_bucket_is_not_lost(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(T0)
    w = worker(store, clock)
    feed(w, clock, _temps("x", range(1, 4)))
    real = compute._from_raw
    calls = []

    def concurrently(conn, bucket, devices):  # type: ignore[no-untyped-def]
        out = real(conn, bucket, devices)
        if not calls:  # another collector stores a late sample and marks the bucket again
            calls.append(1)
            feed(worker(store, clock), clock, [message("x", 99, T0 + 100, {"temp": 7.0})],
                 at=T0 + HOUR)
        return out

    monkeypatch.setattr(compute, "_from_raw", concurrently)
    # marked again meanwhile, the bucket stayed queued and was computed once more: a job
    # deleting its queue row regardless would have left the rollup at 3 samples
    assert roll_up(store.engine, T0 + HOUR, H)["5m"] == 2 * 4
    assert calls == [1] and rolled(store)[("x", "temp", labels(), int(T0))][3] == 4
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(rollup_queue.c.n).where(
            rollup_queue.c.level == 0)).all() == []


def test_buckets_whose_raw_retention_took_are_left_as_they_are(store: Store) -> None:
    clock = FakeClock(T0)
    feed(worker(store, clock), clock, _temps("x", range(1, 4)))
    roll_up(store.engine, T0 + HOUR, H)
    before = rolled(store)
    with store.engine.begin() as conn:  # a mark that waited past raw's horizon
        mark_buckets(conn, 0, [(int(T0), 1)])
    done = roll_up(store.engine, T0 + H.raw_for + HOUR, H)
    assert done["5m_stale"] == 1 and rolled(store) == before
    assert queued(store.engine) == {}


def test_values_that_are_not_finite_are_no_values(store: Store) -> None:
    clock = FakeClock(T0)
    msgs = [message("x", 1, T0, {"temp": 1.0, "hum": float("nan")}),
            message("x", 2, T0 + 10, {"temp": float("inf"), "hum": 2.0}),
            message("x", 3, T0 + 20, {"temp": 3.0, "hum": float("-inf")})]
    feed(worker(store, clock), clock, msgs)
    roll_up(store.engine, T0 + HOUR, H)
    got = rolled(store)
    assert got[("x", "temp", labels(), int(T0))] == (1.0, 3.0, 4.0, 2, 3.0)
    assert got[("x", "hum", labels(), int(T0))] == (2.0, 2.0, 2.0, 1, 2.0)
