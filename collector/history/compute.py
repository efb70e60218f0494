"""The rollup job: queued buckets that have settled are computed again from their source.

A 5 min bucket is computed for every series of a device from the device's raw rows in it, an
hourly one from the series' twelve 5 min rows, and the row is replaced whole, so computing a
bucket twice changes nothing: a restarted collector marking buckets again, or two collectors
marking the same one, cannot count a sample twice.
Ingest queues a bucket with its first sample (per collector run) and with any sample that
arrives after the bucket closed (store.write_samples), in the samples' own transaction.

A queued row is deleted only if its mark count `n` is still what the job read before reading
the source: a bucket marked again meanwhile stays queued and is computed again next time.
Buckets whose source is partly past its horizon (raw older than raw_for) are dropped from the
queue unrolled, since a recomputation would lose what retention already took.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.history.ingest import unpack
from fieldwatch.collector.history.rollup import (
    FIVE_MIN,
    HOUR,
    LEVELS,
    SETTLE,
    Agg,
    Horizons,
    combine,
    rollup,
)
from fieldwatch.collector.history.schema import (
    rollup_queue,
    rollups_1h,
    rollups_5m,
    samples,
    series_sets,
)
from fieldwatch.collector.history.store import dialect_insert, mark_buckets

CHUNK = 500  # queued buckets per transaction


def roll_up(engine: sa.Engine, now: float, h: Horizons, max_rows: int = 200_000,
            stop: threading.Event | None = None) -> Counter[str]:
    """Compute the queued buckets due at `now` (closed SETTLE ago): 5 min ones first, so the
    hours after them see them. At most `max_rows` queued rows per call."""
    done: Counter[str] = Counter()
    for level, horizon, name in ((0, h.raw_for, "5m"), (1, h.rollup_5m_for, "1h")):
        width = LEVELS[level]
        while done.total() < max_rows and not (stop is not None and stop.is_set()):
            with engine.begin() as conn:
                q = rollup_queue.c
                queued = conn.execute(
                    sa.select(q.bucket, q.ref, q.n)
                    .where(q.level == level, q.bucket <= now - SETTLE - width)
                    .order_by(q.bucket, q.ref).limit(CHUNK)).all()
                if not queued:
                    break
                _compute(conn, level, queued, now - horizon, done, name)
    return done


def _compute(conn: sa.Connection, level: int, queued: list[Any], oldest: float,
             done: Counter[str], name: str) -> None:
    by_bucket: dict[int, list[int]] = {}
    for b, ref, _ in queued:
        by_bucket.setdefault(int(b), []).append(int(ref))
    rows: list[dict[str, Any]] = []
    for b, refs in by_bucket.items():
        if b < oldest:  # the source is (partly) past its horizon: leave the bucket as it is
            done[f"{name}_stale"] += len(refs)
            continue
        aggs = _from_raw(conn, b, refs) if level == 0 else _from_5m(conn, b, refs)
        rows += [{"series_id": sid, "bucket": b, "min": a.min, "max": a.max, "sum": a.sum,
                  "count": a.count, "last": a.last} for sid, a in sorted(aggs.items())]
    if rows:
        target = rollups_5m if level == 0 else rollups_1h
        ins = dialect_insert(conn)(target)
        conn.execute(ins.on_conflict_do_update(
            index_elements=[target.c.series_id, target.c.bucket],
            set_={c: getattr(ins.excluded, c) for c in ("min", "max", "sum", "count", "last")}),
            rows)
        done[name] += len(rows)
        if level == 0:
            mark_buckets(conn, 1, sorted({(r["bucket"] // HOUR * HOUR, r["series_id"])
                                          for r in rows}))
    q = rollup_queue.c
    conn.execute(rollup_queue.delete().where(
        q.level == level, q.bucket == sa.bindparam("b"), q.ref == sa.bindparam("r"),
        q.n == sa.bindparam("seen")), [{"b": b, "r": r, "seen": n} for b, r, n in queued])


def _from_raw(conn: sa.Connection, bucket: int, devices: list[int]) -> dict[int, Agg]:
    """Every series of these devices in one 5 min bucket, from their raw rows."""
    points = series_points(conn, devices, bucket, bucket + FIVE_MIN, end_inclusive=False)
    return {sid: rollup(pts, FIVE_MIN)[bucket] for sid, pts in points.items() if pts}


def series_points(conn: sa.Connection, devices: list[int], start: float, end: float,
                  wanted: Collection[int] | None = None, end_inclusive: bool = True
                  ) -> dict[int, list[tuple[float, float]]]:
    """(ts, value) per series of these devices' raw rows with start <= ts <= end (< end if not
    `end_inclusive`), in time order (`wanted`: only these series). A series twice at one ts (in
    two sets) counts once."""
    out: dict[int, list[tuple[float, float]]] = {}
    rows = conn.execute(sa.select(samples.c.ts, samples.c.set_id, samples.c.vals).where(
        samples.c.device_id.in_(devices), samples.c.ts >= start,
        samples.c.ts <= end if end_inclusive else samples.c.ts < end)
        .order_by(samples.c.ts, samples.c.set_id)).all()  # all(): fetchall, not row by row
    sets = {int(i): json.loads(ids) for i, ids in conn.execute(
        sa.select(series_sets.c.id, series_sets.c.series).where(
            series_sets.c.id.in_({r[1] for r in rows})))} if rows else {}
    for ts, set_id, vals in rows:
        for sid, v in zip(sets[set_id], unpack(vals), strict=False):
            if v - v != 0.0 or (wanted is not None and sid not in wanted):  # not `present`
                continue
            pts = out.get(sid)
            if pts is None:
                out[sid] = [(ts, v)]
            elif pts[-1][0] != ts:
                pts.append((ts, v))
    return out


def _from_5m(conn: sa.Connection, hour: int, sids: list[int]) -> dict[int, Agg]:
    """Hours from their 5 min rows."""
    t = rollups_5m.c
    parts: dict[int, list[tuple[float, Agg]]] = {}
    for sid, b, mn, mx, sm, n, last in conn.execute(
            sa.select(t.series_id, t.bucket, t.min, t.max, t.sum, t.count, t.last).where(
                t.series_id.in_(sids), t.bucket >= hour, t.bucket < hour + HOUR)):
        parts.setdefault(int(sid), []).append((float(b), Agg(mn, mx, sm, int(n), last)))
    return {sid: combine(p) for sid, p in parts.items()}


def queued(engine: sa.Engine) -> dict[str, int]:
    """Buckets waiting in the rollup queue, per level name (for tests and operators)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(rollup_queue.c.level, sa.func.count())
                            .group_by(rollup_queue.c.level)).all()
    return {{0: "5m", 1: "1h"}[int(level)]: int(n) for level, n in rows}
