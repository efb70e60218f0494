"""Deleting what is past its horizon, in short transactions that never hold ingest up for long.

- raw samples: `ts < now - raw_for`, device by device in id order (the table is clustered by
  device, so each device's old rows are one index range), DEVICE_CHUNK devices per transaction;
- rollups: buckets that ended at or before `now - rollup_*_for` (everything in them is older),
  series by series in id order (clustered by series: one index range each, no time index to
  pay for on every insert), SERIES_CHUNK series per transaction;
- messages (`keep_raw_for`): `ts < now - keep_raw_for`, ROWS per transaction through ix_messages_ts;
  on SQLite the newest message always stays (ids must never go back: the remote-write cursor).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.history.rollup import FIVE_MIN, HOUR, Horizons
from fieldwatch.collector.history.schema import (
    history_devices,
    rollups_1h,
    rollups_5m,
    samples,
    series,
)
from fieldwatch.collector.store.schema import messages

DEVICE_CHUNK = 200
SERIES_CHUNK = 1000
ROWS = 5000


def apply_retention(engine: sa.Engine, now: float, h: Horizons, keep_raw_for: float,
                    stop: threading.Event | None = None) -> Counter[str]:
    """Delete everything past its horizon at `now`; returns rows deleted per table."""
    gone: Counter[str] = Counter()

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    gone["samples"] += _by_owner(engine, history_devices.c.id, DEVICE_CHUNK, stopping,
                                 lambda ids: samples.delete().where(
                                     samples.c.device_id.in_(ids),
                                     samples.c.ts < now - h.raw_for))
    for table, width, horizon in ((rollups_5m, FIVE_MIN, h.rollup_5m_for),
                                  (rollups_1h, HOUR, h.rollup_1h_for)):
        gone[table.name] += _by_owner(
            engine, series.c.id, SERIES_CHUNK, stopping,
            lambda ids, t=table, last=now - horizon - width: t.delete().where(
                t.c.series_id.in_(ids), t.c.bucket <= last))
    old_msgs = sa.select(messages.c.id).where(messages.c.ts < now - keep_raw_for).limit(ROWS)
    if engine.dialect.name == "sqlite":
        # SQLite (no AUTOINCREMENT) gives a new row max(id)+1: deleting the newest message
        # would let ids start again below the remote-write cursor, which would then skip them.
        # So the newest one row stays, however old.
        old_msgs = old_msgs.where(
            messages.c.id < sa.select(sa.func.max(messages.c.id)).scalar_subquery())
    gone["messages"] += _in_batches(engine, messages.delete().where(
        messages.c.id.in_(old_msgs)), stopping)
    return gone


def _by_owner(engine: sa.Engine, owner: Any, chunk: int, stopping: Callable[[], bool],
              delete: Callable[[list[int]], sa.Delete]) -> int:
    """`delete(ids)` for the owners (devices, series) in id order, `chunk` per transaction."""
    total, after = 0, -1
    while not stopping():
        with engine.begin() as conn:
            ids = list(conn.execute(sa.select(owner).where(owner > after).order_by(owner)
                                    .limit(chunk)).scalars())
            if not ids:
                break
            total += conn.execute(delete(ids)).rowcount
        after = ids[-1]
    return total


def _in_batches(engine: sa.Engine, delete: sa.Delete, stopping: Callable[[], bool]) -> int:
    total = 0
    while not stopping():
        with engine.begin() as conn:
            n = conn.execute(delete).rowcount
        total += n
        if n < ROWS:
            break
    return total
