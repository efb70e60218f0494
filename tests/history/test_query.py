"""The embedded backend answers a range from raw or rollups as the range asks, with the
unrolled tail from raw (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fieldwatch.collector.history import Query
from fieldwatch.collector.history import query as query_mod
from fieldwatch.collector.history.query import EmbeddedHistory, TooManySeries
from fieldwatch.collector.history.rollup import FIVE_MIN, HOUR, bucket_of
from fieldwatch.collector.history.schema import rollups_1h, rollups_5m, series
from fieldwatch.collector.history.selector import parse_selector
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from tests.history.helpers import DAY, T0, H, feed, message, worker

NOW = T0 + 100 * DAY
FIRST_RAW = NOW - H.raw_for - 2 * HOUR


@pytest.fixture
def history(store: Store) -> EmbeddedHistory:
    """x and y: temp{mount="/"} = 1.0 every 10 min over raw's horizon and two hours more; x
    also has 5 min rows (5.0) and hourly rows (60.0) at a few places further back."""
    clock = FakeClock(FIRST_RAW)
    w = worker(store, clock)
    n = int((NOW - FIRST_RAW) // 600) + 1
    feed(w, clock, [message(d, i + 1, FIRST_RAW + i * 600, {"temp{mount=/}": 1.0})
                    for i in range(n) for d in ("x", "y")])
    inv = wire.Inventory(device="y", site="s", ts=NOW, facts={"type": "ups"})
    w.process([Received(inv, wire.encode(inv), NOW)])
    with store.engine.begin() as conn:
        sid = conn.execute(sa.select(series.c.id).where(series.c.device == "x",
                                                        series.c.metric == "temp")).scalar()
        for table, width, value, at in (
                (rollups_5m, FIVE_MIN, 5.0, (NOW - H.rollup_5m_for, NOW - 7 * DAY,
                                             NOW - H.raw_for - 1)),
                (rollups_1h, HOUR, 60.0, (NOW - H.rollup_5m_for - DAY, NOW - 7 * DAY))):
            conn.execute(table.insert(), [
                {"series_id": sid, "bucket": bucket_of(t, width), "min": value, "max": value,
                 "sum": value, "count": 1, "last": value} for t in at])
    return EmbeddedHistory(store.engine, H, FakeClock(NOW))


def q(text: str, start: float, end: float = NOW, step: float | None = None) -> Query:
    metric, sel = parse_selector(text)
    return Query(metric, sel, start, end, step)


X = 'temp{device="x"}'


def test_the_whole_range_within_raw_reads_raw(history: EmbeddedHistory) -> None:
    [s] = history.query(q(X, NOW - H.raw_for))
    assert s.resolution == "raw" and s.minimum is None
    assert s.points[0][0] >= NOW - H.raw_for and s.points[-1][0] <= NOW
    assert {v for _, v in s.points} == {1.0} and len(s.points) == 2 * 24 * 6 + 1


def test_a_second_beyond_raw_reads_five_minute_rollups_and_the_tail_from_raw(
        history: EmbeddedHistory) -> None:
    [s] = history.query(q(X, NOW - H.raw_for - 1))
    assert s.resolution == "5m"
    # the stored row the range begins in, then every bucket after it computed from raw
    first = bucket_of(NOW - H.raw_for - 1, FIVE_MIN)
    assert s.points[0] == (first, 5.0)
    assert s.points[1][0] == first + FIVE_MIN
    assert {v for _, v in s.points[1:]} == {1.0} and s.minimum and s.maximum


def test_ninety_days_reads_five_minute_rollups_one_second_more_hourly_ones(
        history: EmbeddedHistory) -> None:
    [five] = history.query(q(X, NOW - H.rollup_5m_for))
    assert five.resolution == "5m"
    assert [v for _, v in five.points[:3]] == [5.0, 5.0, 5.0]
    [hour] = history.query(q(X, NOW - H.rollup_5m_for - 1))
    assert hour.resolution == "1h"
    assert hour.points[0] == (bucket_of(NOW - 7 * DAY, HOUR), 60.0)
    # after the last hourly row, hours computed from raw: six samples of 1.0 each
    assert hour.points[1][0] == bucket_of(FIRST_RAW, HOUR) and hour.points[1][1] == 1.0


def test_a_step_picks_the_rollup_and_regroups(history: EmbeddedHistory) -> None:
    [s] = history.query(q(X, NOW - HOUR, step=300))
    assert s.resolution == "5m" and len(s.points) == 7  # a sample every 10 min, both ends
    [h] = history.query(q(X, NOW - 3 * HOUR, step=3600))
    assert h.resolution == "1h" and [v for _, v in h.points] == [1.0] * 4
    [r] = history.query(q(X, NOW - HOUR - 30, step=120))
    assert r.resolution == "raw" and [t % 120 for t, _ in r.points] == [0.0] * 7
    assert r.minimum == [1.0] * 7
    [w] = history.query(q(X, NOW - 10 * DAY, step=DAY))  # hours regrouped by day
    assert w.resolution == "1h" and all(t % DAY == 0 for t, _ in w.points)
    assert w.points[0] == (bucket_of(NOW - 7 * DAY, DAY), 60.0)


def test_selectors_labels_devices_and_types(history: EmbeddedHistory) -> None:
    both = history.query(q('temp{mount="/"}', NOW - HOUR))
    assert [(s.key.device, s.key.labels) for s in both] == [("x", (("mount", "/"),)),
                                                             ("y", (("mount", "/"),))]
    assert history.query(q('temp{mount!="/"}', NOW - HOUR)) == []
    assert [s.key.device for s in history.query(q('temp{type="ups"}', NOW - HOUR))] == ["y"]
    assert [s.key.device for s in history.query(q('temp{device=~"x|z"}', NOW - HOUR))] == ["x"]
    assert history.query(q("nothing", NOW - HOUR)) == []


def test_too_many_series_is_refused(history: EmbeddedHistory,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_mod, "MAX_SERIES", 1)
    with pytest.raises(TooManySeries, match="matches 2 series"):
        history.query(q("temp", NOW - HOUR))


def test_series_lists_what_has_data_in_the_range(history: EmbeddedHistory) -> None:
    every = history.series(Query("", parse_selector('_{device="x"}')[1]))
    assert [k.metric for k in every] == ["agent.duplicates_total",
                                         "agent.samples_backfilled_total",
                                         "agent.samples_missing", "temp"]
    recent = history.series(q("temp", NOW - HOUR))
    assert [k.device for k in recent] == ["x", "y"]
    # long ago only x's hourly rows exist
    old = history.series(q("temp", NOW - 8 * DAY, NOW - 6 * DAY))
    assert [k.device for k in old] == ["x"]
    assert history.series(q("temp", NOW - 30 * DAY, NOW - 20 * DAY)) == []
