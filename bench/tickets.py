"""Ticket store under an alert storm: 10,000 alerts for 100 fingerprints, SQLite and PostgreSQL.

1. Throughput: the storm through the collector's own path (rule engine → ticket plan → one
   store transaction per batch of 2,000, as the worker batches), fresh database per run,
   3 runs, median. Target: >= 5,000 alert updates/s on SQLite.
2. Isolation: the real Worker thread drains a queue fed by 20 quiet devices (one message each
   every 20 ms, below every threshold) for 3 s, once alone (the peer) and once with the whole
   storm dumped into the queue at t = 0.5 s, through the collector's FairQueue, and once more
   through a plain FIFO queue (the skeleton's) for comparison. Reported: the quiet devices'
   latency from enqueue to commit (p50 / p99 / max), and how long the storm took to drain.

Usage: python bench/tickets.py [--pg URL] [--runs 3]  (prints one JSON document)
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from fieldwatch.collector.ingest import Received  # noqa: E402
from fieldwatch.collector.ingest.fairqueue import FairQueue  # noqa: E402
from fieldwatch.collector.pipeline import Worker, prepare  # noqa: E402
from fieldwatch.collector.rules.engine import Engine, EngineState  # noqa: E402
from fieldwatch.collector.rules.loader import rules_from_text  # noqa: E402
from fieldwatch.collector.rules.model import RuleSet  # noqa: E402
from fieldwatch.collector.store.db import open_engine  # noqa: E402
from fieldwatch.collector.store.store import BatchWrite, Store  # noqa: E402
from fieldwatch.collector.telemetry.stats import Stats  # noqa: E402

from fieldwatch.clock import SystemClock  # noqa: E402
from fieldwatch.wire import Metrics, Sample, encode  # noqa: E402
from tests.tickets.storm import RULES, storm  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_SQLITE = 5000.0
BATCH = 2000


class Databases:
    """A fresh database per run: a SQLite file, or a private PostgreSQL database."""

    def __init__(self, pg_admin: str) -> None:
        self.pg_admin = pg_admin
        self.tmp = tempfile.TemporaryDirectory(prefix="fw-bench-")
        self.created: list[str] = []

    def url(self, kind: str) -> str:
        name = f"fw_bench_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            return f"sqlite:///{self.tmp.name}/{name}.db"
        admin = sa.create_engine(self.pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        return self.pg_admin.rsplit("/", 1)[0] + f"/{name}"

    def close(self) -> None:
        if self.created:
            admin = sa.create_engine(self.pg_admin, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for name in self.created:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        self.tmp.cleanup()


def throughput(url: str) -> dict[str, float]:
    store = Store(open_engine(url))
    items = storm(t0=time.time())
    engine, state = Engine(RuleSet(tuple(rules_from_text(RULES)))), EngineState()
    in_store = 0.0
    started = time.perf_counter()
    for i in range(0, len(items), BATCH):
        chunk = items[i:i + BATCH]
        batch = prepare(chunk, engine, state)
        t = time.perf_counter()
        store.write(batch, chunk[-1].received_at)
        in_store += time.perf_counter() - t
    total = time.perf_counter() - started
    with store.engine.connect() as conn:
        n, occ = conn.execute(sa.text("select count(*), sum(occurrences) from tickets")).one()
    store.engine.dispose()
    assert (n, occ) == (100, len(items)), (n, occ)
    return {"alerts_per_s": len(items) / total, "store_only_alerts_per_s": len(items) / in_store,
            "seconds": total}


class TimedStore(Store):
    """Records, per committed batch, how long each quiet device's message waited."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        self.sent: dict[tuple[str, int], float] = {}
        self.latency: list[float] = []
        self.storm_left = 0
        self.storm_done: float | None = None

    def write(self, batch: BatchWrite, now: float) -> list[int]:
        opened = super().write(batch, now)
        t = time.perf_counter()
        for r in batch.raw:
            if r.device.startswith("quiet"):
                self.latency.append(t - self.sent.pop((r.device, r.seq)))
            else:
                self.storm_left -= 1
        if self.storm_left == 0 and self.storm_done is None:
            self.storm_done = t
        return opened


def isolation(url: str, with_storm: bool, fair: bool = True,
              seconds: float = 3.0) -> dict[str, Any]:
    store = TimedStore(open_engine(url))
    q: queue.Queue[Received] = (FairQueue(maxsize=50_000) if fair  # type: ignore[assignment]
                                else queue.Queue(maxsize=50_000))
    worker = Worker(q, store, Engine(RuleSet(tuple(rules_from_text(RULES)))), SystemClock(),
                    Stats(), batch_max=BATCH)
    worker.start()
    burst = storm(t0=time.time()) if with_storm else []
    store.storm_left = len(burst) if with_storm else -1
    start = time.perf_counter()
    storm_at = start + 0.5
    seq = 0
    next_tick = start
    while time.perf_counter() - start < seconds:
        if burst and time.perf_counter() >= storm_at:
            for item in burst:
                q.put(item)
            storm_at_real, burst = time.perf_counter(), []
        seq += 1
        for d in range(20):
            now = time.time()
            msg = Metrics(device=f"quiet-{d:02d}", site="plant", seq=seq, ts=now, agent="b",
                          samples=[Sample("temp.celsius", 40.0, {"sensor": "s0"})])
            store.sent[(msg.device, seq)] = time.perf_counter()
            q.put(Received(msg, encode(msg), now))
        next_tick += 0.02
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    deadline = time.perf_counter() + 60
    while (store.sent or (with_storm and store.storm_done is None)) \
            and time.perf_counter() < deadline:
        time.sleep(0.01)
    worker.stop()
    store.engine.dispose()
    lat = sorted(store.latency)
    out: dict[str, Any] = {
        "quiet_messages": len(lat), "unstored": len(store.sent),
        "quiet_latency_ms": {"p50": 1000 * lat[len(lat) // 2],
                             "p99": 1000 * lat[int(len(lat) * 0.99)], "max": 1000 * lat[-1]}}
    if with_storm:
        out["storm_drain_s"] = (store.storm_done - storm_at_real) if store.storm_done else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default=PG_ADMIN, help="admin URL of a PostgreSQL to create DBs in")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    dbs = Databases(args.pg)
    result: dict[str, Any] = {"alerts": 10_000, "fingerprints": 100, "batch": BATCH,
                              "target_sqlite_alerts_per_s": TARGET_SQLITE}
    try:
        for kind in ("sqlite", "postgresql"):
            runs = [throughput(dbs.url(kind)) for _ in range(args.runs)]
            med = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
            result[kind] = {**med, "runs_alerts_per_s": [round(r["alerts_per_s"]) for r in runs],
                            "isolation": {
                                "peer_without_storm": isolation(dbs.url(kind), False),
                                "with_storm": isolation(dbs.url(kind), True),
                                "with_storm_plain_fifo": isolation(dbs.url(kind), True,
                                                                   fair=False)}}
    finally:
        dbs.close()
    result["sqlite_meets_target"] = result["sqlite"]["alerts_per_s"] >= TARGET_SQLITE
    for kind in ("sqlite", "postgresql"):
        iso = result[kind]["isolation"]
        result[kind]["isolation"]["p99_added_ms"] = round(
            iso["with_storm"]["quiet_latency_ms"]["p99"]
            - iso["peer_without_storm"]["quiet_latency_ms"]["p99"], 1)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if result["sqlite_meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
