"""Rollups as pure functions: bucket aggregates against a hand computation, combining 5 min
buckets into hours, regrouping by step, and which resolution answers a range."""

from __future__ import annotations

import pytest
from fieldwatch.collector.history.rollup import (
    FIVE_MIN,
    HOUR,
    Agg,
    Horizons,
    by_step,
    combine,
    resolution,
    rollup,
)
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = 1_800_000_000.0
values = st.floats(-1e6, 1e6, allow_nan=False)
points = st.lists(st.tuples(st.floats(T0, T0 + 3 * HOUR), values), max_size=60)


def by_hand(pts: list[tuple[float, float]], width: int) -> dict[int, tuple[float, ...]]:
    """The textbook way: group, then min/max/sum/count, last = value at the latest ts (the later
    point of equal ts)."""
    groups: dict[int, list[tuple[int, float, float]]] = {}
    for i, (ts, v) in enumerate(pts):
        groups.setdefault(int(ts // width) * width, []).append((i, ts, v))
    out = {}
    for b, g in groups.items():
        vs = [v for _, _, v in g]
        last = max(g, key=lambda x: (x[1], x[0]))[2]
        out[b] = (min(vs), max(vs), sum(vs), len(vs), last)
    return out


def close(a: Agg, want: tuple[float, ...]) -> bool:
    mn, mx, sm, n, last = want
    return (a.min, a.max, a.count, a.last) == (mn, mx, n, last) and a.sum == pytest.approx(sm)


@settings(max_examples=200, deadline=None)
@given(points)
def test_bucket_aggregates_equal_a_hand_computation(pts: list[tuple[float, float]]) -> None:
    for width in (FIVE_MIN, HOUR):
        got, want = rollup(pts, width), by_hand(pts, width)
        assert got.keys() == want.keys()
        assert all(close(got[b], want[b]) for b in want)


@settings(max_examples=100, deadline=None)
@given(points)
def test_hours_from_their_five_minute_buckets_equal_hours_from_the_points(
        pts: list[tuple[float, float]]) -> None:
    fives = rollup(pts, FIVE_MIN)
    hours = rollup(pts, HOUR)
    for h, want in hours.items():
        got = combine((b, a) for b, a in fives.items() if h <= b < h + HOUR)
        assert (got.min, got.max, got.count, got.last) == (want.min, want.max, want.count,
                                                            want.last)
        assert got.sum == pytest.approx(want.sum)


def test_by_step_regroups_on_epoch_aligned_steps() -> None:
    pts = [(T0 + 0, Agg.of(1.0)), (T0 + 300, Agg.of(3.0)), (T0 + 900, Agg(0.0, 9.0, 9.0, 3, 2.0))]
    [(t1, a), (t2, b)] = by_step(pts, 600)
    assert (t1, a) == (T0, Agg(1.0, 3.0, 4.0, 2, 3.0)) and a.avg == 2.0
    assert (t2, b) == (T0 + 600, Agg(0.0, 9.0, 9.0, 3, 2.0))
    with pytest.raises(ValueError):
        combine([])


H = Horizons(raw_for=2 * 86400, rollup_5m_for=90 * 86400, rollup_1h_for=730 * 86400)
NOW = T0 + 1000 * 86400


@pytest.mark.parametrize(("start", "step", "want"), [
    (NOW - 3600, None, "raw"),
    (NOW - H.raw_for, None, "raw"),  # all of it still raw: the boundary is raw's
    (NOW - H.raw_for - 1, None, "5m"),
    (NOW - 7 * 86400, None, "5m"),
    (NOW - H.rollup_5m_for, None, "5m"),
    (NOW - H.rollup_5m_for - 1, None, "1h"),
    (NOW - 3600, 299, "raw"),
    (NOW - 3600, 300, "5m"),  # a 5 min step reads 5 min rollups even over raw's range
    (NOW - 3600, 3599, "5m"),
    (NOW - 3600, 3600, "1h"),
    (NOW - H.raw_for - 1, 10, "5m"),  # a fine step cannot bring back raw that is gone
])
def test_resolution_by_range_and_step(start: float, step: float | None, want: str) -> None:
    assert resolution(start, NOW, step, H) == want
