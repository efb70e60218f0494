"""Deleting what is past its horizon, in short transactions that never hold ingest up for long.

- raw samples: `ts < now - raw_for`, device by device in id order (the table is clustered by
  device, so each device's old rows are one index range), DEVICE_CHUNK devices per transaction;
- rollups: buckets that ended at or before `now - rollup_*_for` (everything in them is older),
  ROWS rows per transaction through the bucket index;
- messages (`keep_raw_for`): `ts < now - keep_raw_for`, ROWS per transaction through ix_messages_ts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import sqlalchemy as sa
from fieldwatch.collector.history.rollup import FIVE_MIN, HOUR, Horizons
from fieldwatch.collector.history.schema import history_devices, rollups_1h, rollups_5m, samples
from fieldwatch.collector.store.schema import messages

DEVICE_CHUNK = 200
ROWS = 5000


def apply_retention(engine: sa.Engine, now: float, h: Horizons, keep_raw_for: float,
                    stop: threading.Event | None = None) -> Counter[str]:
    """Delete everything past its horizon at `now`; returns rows deleted per table."""
    gone: Counter[str] = Counter()

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    cutoff = now - h.raw_for
    after = -1
    while not stopping():
        with engine.begin() as conn:
            d = history_devices.c
            ids = conn.execute(sa.select(d.id).where(d.id > after).order_by(d.id)
                               .limit(DEVICE_CHUNK)).scalars().all()
            if not ids:
                break
            gone["samples"] += conn.execute(samples.delete().where(
                samples.c.device_id.in_(ids), samples.c.ts < cutoff)).rowcount
        after = ids[-1]
    for table, width, horizon in ((rollups_5m, FIVE_MIN, h.rollup_5m_for),
                                  (rollups_1h, HOUR, h.rollup_1h_for)):
        old = sa.select(table.c.series_id, table.c.bucket).where(
            table.c.bucket <= now - horizon - width).limit(ROWS)
        gone[table.name] += _in_batches(engine, table.delete().where(
            sa.tuple_(table.c.series_id, table.c.bucket).in_(old)), stopping)
    old_msgs = sa.select(messages.c.id).where(messages.c.ts < now - keep_raw_for).limit(ROWS)
    gone["messages"] += _in_batches(engine, messages.delete().where(
        messages.c.id.in_(old_msgs)), stopping)
    return gone


def _in_batches(engine: sa.Engine, delete: sa.Delete, stopping: Callable[[], bool]) -> int:
    total = 0
    while not stopping():
        with engine.begin() as conn:
            n = conn.execute(delete).rowcount
        total += n
        if n < ROWS:
            break
    return total
