"""The embedded history's tables (docs/history.md), created beside the store's by db.migrate.

- `history_devices`: each device once; raw rows and rollup marks carry its id.
- `series`: each series once (site, device, metric, labels); rollups carry its id.
  `key_hash` (sha1 of the canonical key) is the unique key, so a long label set never meets a
  database's limit on index entries.
- `series_sets`: the series one message of a device carries, in order (a JSON list of ids).
  A device sends the same list every cycle, so it has one set, or a few.
- `samples`: raw samples, one row per device and timestamp and set: `vals` is the set's values
  as little-endian float64 (NaN: no value). Keyed by (device, ts, set), so a device's range is
  one index range and retention deletes per device without a time index. One row per message
  instead of one per sample makes ingest and disk several times cheaper. A plain (rowid) table
  on SQLite: WITHOUT ROWID suits small rows only, and was five times slower to insert here.
- `rollups_5m`, `rollups_1h`: min/max/sum/count/last per series per bucket (start, epoch s).
- `rollup_queue`: buckets to (re)compute: level 0 (5 min) names a device, level 1 (hour) a
  series. Written with the samples that land in them; `n` counts the marks, so a mark made
  while the job computes is never lost (compute.py).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

history_devices = sa.Table(
    "history_devices", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site", sa.Text, nullable=False),
    sa.Column("device", sa.Text, nullable=False),
    sa.UniqueConstraint("site", "device", name="uq_history_devices"),
)

series = sa.Table(
    "series", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_hash", sa.String(40), nullable=False, unique=True),
    sa.Column("device_id", sa.Integer, nullable=False),
    sa.Column("site", sa.Text, nullable=False),
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),  # canonical JSON: keys sorted, compact
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_series_metric", "metric", "device"),  # a query: a metric, often a device
    sa.Index("ix_series_device", "device"),  # a listing: a device's series
)

series_sets = sa.Table(
    "series_sets", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_hash", sa.String(40), nullable=False, unique=True),
    sa.Column("device_id", sa.Integer, nullable=False),
    sa.Column("series", sa.Text, nullable=False),  # JSON list of series ids, in value order
)

samples = sa.Table(
    "samples", metadata,
    sa.Column("device_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.Float, primary_key=True),
    sa.Column("set_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("vals", sa.LargeBinary, nullable=False),
)


def _rollup(name: str) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("bucket", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last", sa.Float, nullable=False),
        sqlite_with_rowid=False,  # small rows clustered by series: a range is one index range
    )


rollups_5m = _rollup("rollups_5m")
rollups_1h = _rollup("rollups_1h")

rollup_queue = sa.Table(
    "rollup_queue", metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),  # 0: 5m, 1: 1h
    sa.Column("bucket", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ref", sa.Integer, primary_key=True, autoincrement=False),  # device | series id
    sa.Column("n", sa.Integer, nullable=False, server_default="1"),
    sqlite_with_rowid=False,
)
