"""The embedded metric history: ingest cost, disk per sample and per rollup point, query time.

1. Collector ingest with history on and off, in the same run (alternating, `--rounds` each):
   the backlog of bench/ingest.py (N devices × C cycles of one 50-sample message) drained from
   a private Mosquitto by the real collector on SQLite, wall time and the process's CPU time
   (the backlog includes meeting every device and series for the first time: that one-off
   cost per series is measured apart). Goal: on ≥ 0.8 × off.
2. Disk: the raw rows and the rollups of that run (rolled up once the buckets settled),
   measured with SQLite's dbstat (tables and their indexes), per sample and per rollup point,
   and what one device at a 10 s interval costs per day.
3. Query: `--query-devices` × 50 series in the series table with 7 days of 5 min rollups for
   `--rollup-devices` of them and the last 10 minutes raw for all, generated directly in the
   database; then `--queries` 7-day queries of one series (the range reads 5 min rollups and
   the unrolled tail from raw) through EmbeddedHistory.query, p50/p95/p99 of wall time and of
   CPU time (which other load on a shared machine blurs less). A second, ten times smaller
   store shows how the time scales with the rows stored.

    python bench/history.py [--devices 1000] [--cycles 60] [--rounds 2]
                            [--query-devices 10000] [--rollup-devices 200] [--queries 200]
                            [--pg postgresql+psycopg://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _servers  # noqa: F401 - the repo root on sys.path
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.history import Query
from fieldwatch.collector.history.compute import roll_up
from fieldwatch.collector.history.config import HistoryConfig
from fieldwatch.collector.history.ingest import labels_json, pack
from fieldwatch.collector.history.query import EmbeddedHistory
from fieldwatch.collector.history.rollup import FIVE_MIN, SETTLE, Horizons
from fieldwatch.collector.history.selector import parse_selector
from fieldwatch.collector.service import Collector
from fieldwatch.collector.store.db import open_engine
from ingest import SAMPLES, payloads, publish_all, synthetic_rules

from fieldwatch.cli.up import default_rules_dir
from fieldwatch.clock import FakeClock
from fieldwatch.config import BrokerConfig
from tests.servers import Mosquitto

DAY = 86400.0
H = Horizons(2 * DAY, 90 * DAY, 730 * DAY)


def ingest_rate(root: Path, port: int, messages: list[tuple[str, bytes]], history: bool,
                name: str) -> dict[str, Any]:
    """bench/ingest.py's collector run, with history on or off; the database is kept."""
    synthetic_rules(root / "synthetic.yaml")
    cfg = CollectorConfig(broker=BrokerConfig(port=port), client_id=f"bench-{name}",
                          rules=[default_rules_dir(), root / "synthetic.yaml"],
                          db=f"sqlite:///{root / name}.db",
                          history=HistoryConfig(enabled=history))
    first = Collector(cfg)  # create the persistent session, then go offline
    first.start()
    deadline = time.monotonic() + 10
    while not first.ingest.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop()
    publish_all(port, messages)
    collector = Collector(cfg)
    t0, cpu0 = time.perf_counter(), time.process_time()
    collector.start()
    limit = time.monotonic() + 600
    while collector.stats.get("stored_total") < len(messages) and time.monotonic() < limit:
        time.sleep(0.005)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    stats = collector.stats
    collector.stop()
    return {"samples_per_s": stats.get("samples_total") / elapsed,
            "cpu_us_per_sample": cpu / stats.get("samples_total") * 1e6,
            "history_samples": stats.get("history_samples_total"),
            "stored": stats.get("stored_total"), "db": root / f"{name}.db"}


def first_sight(root: Path, messages: list[tuple[str, bytes]]) -> dict[str, float]:
    """CPU a collector spends once per series it meets (new, and again after a restart):
    the history rows of one message per device, their series resolved in a fresh store."""
    from fieldwatch.collector.history.ingest import Recorder, SampleRows
    from fieldwatch.collector.history.store import resolve

    from fieldwatch import wire

    engine = open_engine(f"sqlite:///{root / 'first.db'}")
    decoded = [wire.decode(p) for _, p in messages]
    out = {}
    for label in ("new", "restart"):
        rows, recorder = SampleRows(), Recorder(H.raw_for)
        c = time.process_time()
        for i, msg in enumerate(decoded):
            recorder.add(rows, i, msg, msg.ts)  # type: ignore[arg-type]
        resolve(engine, rows, time.time())
        out[f"{label}_series_us"] = round((time.process_time() - c) / rows.samples * 1e6, 1)
    engine.dispose()
    return out


def sizes(db: Path) -> dict[str, int]:
    """Bytes per table, its indexes included (dbstat)."""
    conn = sqlite3.connect(db)
    try:
        names = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema "
                                  "WHERE type IN ('table', 'index')").fetchall())
        out: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = names.get(name, name)
            out[table] = out.get(table, 0) + int(size)
        return out
    finally:
        conn.close()


def count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


def disk(db: Path, samples_stored: int, newest: float) -> dict[str, Any]:
    engine = open_engine(f"sqlite:///{db}")
    roll_up(engine, newest + 2 * 3600 + SETTLE, H)  # every bucket settled: roll all up
    engine.dispose()
    size = sizes(db)
    raw_rows = count(db, "samples")
    points = count(db, "rollups_5m") + count(db, "rollups_1h")
    kept = samples_stored / raw_rows  # per message: its 50 samples and the 3 agent.* ones
    per_row = size["samples"] / raw_rows
    per_point = (size["rollups_5m"] + size["rollups_1h"]) / points
    per_message = size["messages"] / count(db, "messages")
    rows_day = 86400 / 10  # one message per device every 10 s
    return {
        "raw_bytes_per_sample": round(per_row / kept, 2), "raw_bytes_per_row": round(per_row),
        "raw_rows": raw_rows, "raw_samples": samples_stored,
        "rollup_bytes_per_point": round(per_point, 1), "rollup_points": points,
        "messages_bytes_per_sample": round(per_message / SAMPLES, 1),
        "per_device_day_bytes": {
            "raw": round(per_row * rows_day),
            "rollups_5m": round(per_point * kept * 288),
            "rollups_1h": round(per_point * kept * 24),
            "messages": round(per_message * rows_day)},
        "per_device_kept_bytes": {  # at the default horizons
            "raw_2d": round(per_row * rows_day * 2),
            "rollups_5m_90d": round(per_point * kept * 288 * 90),
            "rollups_1h_730d": round(per_point * kept * 24 * 730)},
    }


def pg_disk(url: str, messages: list[tuple[str, bytes]], newest: float) -> dict[str, Any]:
    """The same messages through the collector's worker into PostgreSQL: bytes per raw sample
    and per rollup point there (pg_total_relation_size: table, TOAST and indexes)."""
    import queue

    import sqlalchemy as sa
    from fieldwatch.collector.ingest import Received
    from fieldwatch.collector.pipeline import Worker
    from fieldwatch.collector.rules.engine import Engine
    from fieldwatch.collector.rules.model import RuleSet
    from fieldwatch.collector.store.store import Store
    from fieldwatch.collector.telemetry.stats import Stats

    from fieldwatch import wire

    name = f"fw_bench_history_{int(time.time())}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        store = Store(open_engine(url.rsplit("/", 1)[0] + f"/{name}"))
        clock = FakeClock(newest)
        w = Worker(queue.Queue(), store, Engine(RuleSet()), clock, Stats())
        items = [Received(wire.decode(p), p, newest) for _, p in messages]
        for i in range(0, len(items), 2000):
            w.process(items[i:i + 2000])
        roll_up(store.engine, newest + 2 * 3600 + SETTLE, H)
        with store.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            size = {t: int(conn.execute(sa.text(f"SELECT pg_total_relation_size('{t}')"))
                           .scalar_one()) for t in ("samples", "rollups_5m", "rollups_1h",
                                                    "messages")}
            points = sum(int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                         for t in ("rollups_5m", "rollups_1h"))
        n = w.stats.get("history_samples_total")
        store.engine.dispose()
        return {"raw_bytes_per_sample": round(size["samples"] / n, 2),
                "rollup_bytes_per_point": round((size["rollups_5m"] + size["rollups_1h"])
                                                / points, 1),
                "messages_bytes_per_sample": round(size["messages"] / len(messages) / SAMPLES,
                                                   1)}
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def generate(db: Path, devices: int, rolled: int, now: float, rng: random.Random) -> None:
    """`devices` × 50 series; 7 days of 5 min rollups for the first `rolled` devices, the last
    10 minutes raw (a row every 10 s) for all. Written directly with sqlite3, in key order."""
    open_engine(f"sqlite:///{db}").dispose()  # the schema
    first5 = int((now - 7 * DAY) // FIVE_MIN) * FIVE_MIN
    raw_start = now - 600
    labels = labels_json({"unit": "1"})
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    for d0 in range(0, devices, 500):
        part = range(d0, min(d0 + 500, devices))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO history_devices (id, site, device) VALUES (?, ?, ?)",
                         [(d + 1, "bench", f"dev-{d}") for d in part])
        conn.executemany(
            "INSERT INTO series (id, key_hash, device_id, site, device, metric, labels, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(d * SAMPLES + i + 1, f"{d:08x}{i:032x}", d + 1, "bench", f"dev-{d}",
              f"synthetic.m{i}", labels, now) for d in part for i in range(SAMPLES)])
        conn.executemany(
            "INSERT INTO series_sets (id, key_hash, device_id, series) VALUES (?, ?, ?, ?)",
            [(d + 1, f"{d:040x}", d + 1,
              json.dumps(list(range(d * SAMPLES + 1, (d + 1) * SAMPLES + 1)))) for d in part])
        conn.executemany(
            "INSERT INTO samples (device_id, ts, set_id, vals) VALUES (?, ?, ?, ?)",
            [(d + 1, raw_start + k * 10, d + 1, pack([rng.random() * 100] * SAMPLES))
             for d in part for k in range(60)])
        conn.execute("COMMIT")
    buckets = [first5 + k * FIVE_MIN for k in range(int((raw_start - first5) // FIVE_MIN))]
    for s0 in range(1, rolled * SAMPLES + 1, 200):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO rollups_5m (series_id, bucket, min, max, sum, count, last) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(sid, b, v - 1, v + 1, v * 30, 30, v)
             for sid in range(s0, min(s0 + 200, rolled * SAMPLES + 1)) for b in buckets
             for v in (rng.random() * 100,)])
        conn.execute("COMMIT")
    conn.close()


def query_times(db: Path, devices: int, rolled: int, n: int, now: float,
                rng: random.Random) -> dict[str, Any]:
    engine = open_engine(f"sqlite:///{db}", create=False)
    backend = EmbeddedHistory(engine, H, FakeClock(now))
    times, cpus, points = [], [], []
    for _ in range(n):
        d, i = rng.randrange(rolled), rng.randrange(SAMPLES)
        metric, sel = parse_selector(f'synthetic.m{i}{{device="dev-{d}"}}')
        t, c = time.perf_counter(), time.process_time()
        [s] = backend.query(Query(metric, sel, now - 7 * DAY, now))
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        points.append(len(s.points))
    engine.dispose()
    q = statistics.quantiles(times, n=100)
    qc = statistics.quantiles(cpus, n=100)  # CPU time: what other load on the machine blurs less
    return {"p50_ms": round(q[49] * 1000, 2), "p95_ms": round(q[94] * 1000, 2),
            "p99_ms": round(q[98] * 1000, 2), "cpu_p50_ms": round(qc[49] * 1000, 2),
            "cpu_p95_ms": round(qc[94] * 1000, 2), "points": points[0],
            "rollup_rows": count(db, "rollups_5m"), "raw_rows": count(db, "samples"),
            "series": count(db, "series"), "db_bytes": db.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--query-devices", type=int, default=10_000)
    ap.add_argument("--rollup-devices", type=int, default=200)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pg", default=None, help="also measure disk on this PostgreSQL "
                    "(postgresql+psycopg://user@host/db; a scratch database is made and dropped)")
    args = ap.parse_args()
    rng = random.Random(13)
    messages = payloads(args.devices, args.cycles)
    newest = time.time()
    out: dict[str, Any] = {"bench": "history", "devices": args.devices, "cycles": args.cycles,
                           "samples_per_message": SAMPLES}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto", persistence=False).start()
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        try:
            for r in range(args.rounds):
                for mode in ("off", "on"):
                    runs[mode].append(ingest_rate(root, broker.port, messages, mode == "on",
                                                  f"{mode}{r}"))
        finally:
            broker.stop()
        def ratio(key: str, invert: bool = False) -> float:
            on = statistics.median(x[key] for x in runs["on"])
            off = statistics.median(x[key] for x in runs["off"])
            return round(off / on if invert else on / off, 3)

        out["ingest"] = {
            **{f"{mode}_{key}": [round(x[key], 2) for x in runs[mode]]
               for mode in ("off", "on") for key in ("samples_per_s", "cpu_us_per_sample")},
            "on_vs_off": ratio("samples_per_s"),
            # throughput if CPU were the only limit: off's CPU per sample over on's
            "on_vs_off_by_cpu": ratio("cpu_us_per_sample", invert=True),
            **first_sight(root, messages[:args.devices])}
        last = runs["on"][-1]
        out["disk"] = disk(last["db"], last["history_samples"], newest)
        if args.pg:
            out["disk_postgresql"] = pg_disk(args.pg, messages, newest)
        now = float(int(time.time()) // FIVE_MIN * FIVE_MIN)
        q: dict[str, Any] = {}
        for label, devices, rolled in (("small", args.query_devices // 10,
                                        max(1, args.rollup_devices // 10)),
                                       ("large", args.query_devices, args.rollup_devices)):
            db = root / f"query-{label}.db"
            t = time.perf_counter()
            generate(db, devices, rolled, now, rng)
            q[label] = {"devices": devices, "devices_with_7d_rollups": rolled,
                        "generate_s": round(time.perf_counter() - t, 1),
                        **query_times(db, devices, rolled, args.queries, now, rng)}
            db.unlink()
        out["query_7d_one_series"] = q
    print(json.dumps(out))


if __name__ == "__main__":
    main()
