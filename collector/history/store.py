"""Writing a batch's history rows: ids first (own transaction), then the raw rows and rollup
marks in the batch's transaction (Store.write), so a sample is stored exactly when its message
is.

Devices, series and series sets are resolved INSERT ... ON CONFLICT DO NOTHING, then SELECT by
their unique key: collectors sharing a PostgreSQL database that meet a new one together both get
the one row. Resolved in a short transaction of its own, a row exists before any sample names
its id, and an id is cached only once committed (an id without samples is harmless).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.history.ingest import (
    DeviceMemo,
    SampleRows,
    SeriesMemo,
    Shape,
)
from fieldwatch.collector.history.rollup import FIVE_MIN, SETTLE
from fieldwatch.collector.history.schema import (
    history_devices,
    rollup_queue,
    samples,
    series,
    series_sets,
)
from sqlalchemy.dialects import postgresql, sqlite

_CHUNK = 500


def dialect_insert(conn: sa.Connection | sa.Engine) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def resolve(engine: sa.Engine, rows: SampleRows, now: float) -> None:
    """Give every device, series and series set of `rows` still without one its id."""
    devs = {id(d): d for _, d, _, _, _, _ in rows.rows if d.id is None}
    shapes = {id(s): (d, s) for _, d, s, _, _, _ in rows.rows if s.id is None}
    if not devs and not shapes:
        return
    with engine.begin() as conn:
        if devs:
            ids = _ids(conn, history_devices, ("site", "device"), {
                (d.site, d.device): {"site": d.site, "device": d.device}
                for d in devs.values()})
            for d in devs.values():
                d.id = ids[(d.site, d.device)]
        # one series may have several memos (the same labels in another order)
        memos: dict[tuple[str], list[tuple[DeviceMemo, SeriesMemo]]] = {}
        for d, s in shapes.values():
            for m in s.series:
                if m.id is None:
                    memos.setdefault((m.hash,), []).append((d, m))
        if memos:
            ids = _ids(conn, series, ("key_hash",), {
                k: _series_row(*dm[0], now) for k, dm in memos.items()})
            for k, dm in memos.items():
                for _, m in dm:
                    m.id = ids[k]
        if shapes:  # again, two shapes may hold one set
            sets: dict[tuple[str], list[tuple[DeviceMemo, Shape]]] = {}
            for d, s in shapes.values():
                sets.setdefault((_set_hash(d, s),), []).append((d, s))
            ids = _ids(conn, series_sets, ("key_hash",), {
                k: {"key_hash": k[0], "device_id": ds[0][0].id,
                    "series": json.dumps([m.id for m in ds[0][1].series])}
                for k, ds in sets.items()})
            for k, ds in sets.items():
                for _, s in ds:
                    s.id = ids[k]


def _ids(conn: sa.Connection, table: sa.Table, unique: tuple[str, ...],
         rows: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], int]:
    """Every row's id by its unique key: read, insert what is missing (a collector restarting
    finds all of them), read those."""
    ins = dialect_insert(conn)(table).on_conflict_do_nothing(index_elements=list(unique))
    cols = [table.c[n] for n in unique]
    keys = sorted(rows)  # one lock order for every collector
    out: dict[tuple[Any, ...], int] = {}

    def read(part: list[tuple[Any, ...]]) -> None:
        cond = (cols[0].in_([k[0] for k in part]) if len(cols) == 1
                else sa.tuple_(*cols).in_(part))
        for r in conn.execute(sa.select(table.c.id, *cols).where(cond)).all():
            out[tuple(r[1:])] = int(r[0])

    for i in range(0, len(keys), _CHUNK):
        part = keys[i:i + _CHUNK]
        read(part)
        missing = [k for k in part if k not in out]
        if missing:
            conn.execute(ins, [rows[k] for k in missing])
            read(missing)
    return out


def _series_row(d: DeviceMemo, m: SeriesMemo, now: float) -> dict[str, Any]:
    k = m.key
    return {"key_hash": m.hash, "device_id": d.id, "site": k.site, "device": k.device,
            "metric": k.metric, "labels": m.labels, "created_at": now}


def _set_hash(d: DeviceMemo, s: Shape) -> str:
    return hashlib.sha1(json.dumps([d.id, [m.id for m in s.series]]).encode()).hexdigest()


def write_samples(conn: sa.Connection, rows: SampleRows, now: float) -> int:
    """Insert the raw rows (a repeated (device, ts, set) keeps the first) and queue the buckets
    they mark for rollup; returns the rows written. Rows whose bucket closed more than SETTLE/2
    ago are marked whatever the worker's memory says (compute.py: the job may be done with
    it)."""
    late = int((now - SETTLE / 2) // FIVE_MIN) * FIVE_MIN
    data: list[tuple[int, float, int, bytes]] = []
    marks: set[tuple[int, int]] = set()
    for _, d, s, ts, vals, mark in rows.rows:
        data.append((d.id, ts, s.id, vals))  # type: ignore[arg-type]
        if mark or ts < late:
            marks.add((int(ts // FIVE_MIN) * FIVE_MIN, d.id))  # type: ignore[arg-type]
    if not data:
        return 0
    data.sort(key=lambda r: (r[0], r[1]))  # B-tree order
    if conn.dialect.name == "sqlite":  # the driver straight: no per-row work in SQLAlchemy
        conn.exec_driver_sql("INSERT OR IGNORE INTO samples (device_id, ts, set_id, vals) "
                             "VALUES (?, ?, ?, ?)", data)
    else:
        conn.execute(dialect_insert(conn)(samples).on_conflict_do_nothing(), [
            {"device_id": d, "ts": ts, "set_id": s, "vals": v} for d, ts, s, v in data])
    mark_buckets(conn, 0, sorted(marks))
    return len(data)


def mark_buckets(conn: sa.Connection, level: int, marks: Sequence[tuple[int, int]]) -> None:
    """Queue (bucket, ref) pairs for rollup at `level`; a pair already queued counts up."""
    if not marks:
        return
    ins = dialect_insert(conn)(rollup_queue)
    stmt = ins.on_conflict_do_update(
        index_elements=[rollup_queue.c.level, rollup_queue.c.bucket, rollup_queue.c.ref],
        set_={"n": rollup_queue.c.n + 1})
    conn.execute(stmt, [{"level": level, "bucket": b, "ref": r, "n": 1} for b, r in marks])


def probe(conn: sa.Connection) -> None:
    """What write_samples writes, for Store.probe (rolled back by the caller)."""
    conn.execute(samples.insert(), [{"device_id": -1, "ts": 0.0, "set_id": -1, "vals": b""}])
    mark_buckets(conn, 0, [(0, -1)])
