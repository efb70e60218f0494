"""Rollups as pure functions: buckets, aggregates, which resolution answers a range, steps.

A bucket is named by its start (epoch seconds, a multiple of its width). Its aggregate keeps
min, max, sum, count and `last` (the value at the greatest timestamp), so buckets combine into
coarser ones exactly: 1 h from its twelve 5 min buckets, a query step from either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FIVE_MIN = 300
HOUR = 3600
WIDTHS = {"5m": FIVE_MIN, "1h": HOUR}
LEVELS = {0: FIVE_MIN, 1: HOUR}  # rollup_queue.level → width

# A bucket is rolled up once it has been closed this long (late samples of a closed bucket
# are marked and roll it up again). Ingest marks every sample whose bucket closed more than
# SETTLE/2 before the write, so a write would have to take SETTLE/2 to slip past the job.
SETTLE = 300.0


@dataclass(frozen=True, slots=True)
class Agg:
    min: float
    max: float
    sum: float
    count: int
    last: float

    @property
    def avg(self) -> float:
        return self.sum / self.count

    @staticmethod
    def of(value: float) -> Agg:
        return Agg(value, value, value, 1, value)


def bucket_of(ts: float, width: int) -> int:
    return int(ts // width) * width


def rollup(points: Iterable[tuple[float, float]], width: int) -> dict[int, Agg]:
    """(ts, value) points in any order → the aggregate of each bucket they fall in; `last` is
    the value at the greatest ts (of equal ts, the later point)."""
    acc: dict[int, list[float]] = {}  # bucket → [min, max, sum, count, last_ts, last]
    for ts, v in points:
        b = bucket_of(ts, width)
        a = acc.get(b)
        if a is None:
            acc[b] = [v, v, v, 1, ts, v]
            continue
        a[0] = min(a[0], v)
        a[1] = max(a[1], v)
        a[2] += v
        a[3] += 1
        if ts >= a[4]:
            a[4], a[5] = ts, v
    return {b: Agg(a[0], a[1], a[2], int(a[3]), a[5]) for b, a in acc.items()}


def combine(parts: Iterable[tuple[float, Agg]]) -> Agg:
    """Aggregates of (start, agg) buckets as one; `last` is the latest bucket's."""
    items = sorted(parts, key=lambda p: p[0])
    if not items:
        raise ValueError("nothing to combine")
    aggs = [a for _, a in items]
    return Agg(min(a.min for a in aggs), max(a.max for a in aggs), sum(a.sum for a in aggs),
               sum(a.count for a in aggs), aggs[-1].last)


def by_step(points: Iterable[tuple[float, Agg]], step: float) -> list[tuple[float, Agg]]:
    """Points (ts, agg) regrouped into buckets of `step` seconds aligned on the epoch."""
    groups: dict[float, list[tuple[float, Agg]]] = {}
    for ts, a in points:
        groups.setdefault((ts // step) * step, []).append((ts, a))
    return [(t, combine(groups[t])) for t in sorted(groups)]


@dataclass(frozen=True, slots=True)
class Horizons:
    raw_for: float
    rollup_5m_for: float
    rollup_1h_for: float


def resolution(start: float, now: float, step: float | None, h: Horizons) -> str:
    """Which data answers a range starting at `start`: the finest whose horizon holds all of
    it (raw for the last `raw_for`, then 5 min rollups, then hourly), never finer than a step
    asks for (a 5 min step reads 5 min rollups even over raw's range)."""
    if (step is None or step < FIVE_MIN) and start >= now - h.raw_for:
        return "raw"
    if (step is None or step < HOUR) and start >= now - h.rollup_5m_for:
        return "5m"
    return "1h"
