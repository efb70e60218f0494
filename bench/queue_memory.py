"""Collector RSS per queued message, and whether it is given back after the backlog (issue 18).

`fieldwatch collector run` as a process on SQLite, a private Mosquitto whose inflight window
is opened wide (`--inflight`, so the broker sends everything and the collector's queue is what
holds it). Another process holds the database's write lock, so nothing is stored; N 50-sample
metrics messages (3 KB each, as bench/ingest.py) are published; once the collector holds them
all (received and not stored: the queue and the batch in hand) the RSS growth over the idle
collector's is divided by the messages held. The lock is then released, the backlog stored,
and the RSS measured again after a few seconds idle.

    python bench/queue_memory.py [--messages 20000] [--inflight 30000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import _servers  # noqa: F401 - the repo root on sys.path
import httpx
from _servers import Mosquitto
from ingest import payloads, publish_all
from soak import rss_mb

from tests.e2e.procs import Proc, counter, wait_for, write_yaml


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--inflight", type=int, default=30000)
    args = ap.parse_args()
    devices = 1000
    messages = payloads(devices, max(1, args.messages // devices))
    payload_bytes = sum(len(p) for _, p in messages) / len(messages)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto", persistence=False, inflight=args.inflight).start()
        db = root / "fw.db"
        cfg = write_yaml(root / "collector.yaml", {
            "broker": {"host": "127.0.0.1", "port": broker.port}, "client_id": "queue-mem",
            "rules": [], "db": f"sqlite:///{db}", "queue_max": 10 * len(messages),
            "queue_max_bytes": 1 << 31})
        proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                    root / "collector.log")
        lock = sqlite3.connect(db, isolation_level=None, timeout=30)
        try:
            base = proc.wait_output(r"HTTP API on (http://\S+)/", 60).group(1)
            wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], 30)
            time.sleep(2)
            idle = rss_mb(proc.proc.pid)
            lock.execute("BEGIN EXCLUSIVE")
            publish_all(broker.port, messages)

            def held() -> int:  # received, not stored: the queue and the batch in hand
                return counter(base, "received_total") - counter(base, "stored_total")

            wait_for(lambda: held() >= len(messages), 120, every=0.5)
            time.sleep(2)
            n = held()
            full = rss_mb(proc.proc.pid)
            lock.execute("ROLLBACK")
            wait_for(lambda: httpx.get(f"{base}/healthz").json()["queued"] == 0, 300, every=0.5)
            time.sleep(5)
            after = rss_mb(proc.proc.pid)
        finally:
            lock.close()
            proc.stop()
            broker.stop()
    print(json.dumps({
        "bench": "queue_memory", "messages": len(messages), "held": n,
        "payload_bytes": round(payload_bytes), "rss_mb_idle": round(idle, 1),
        "rss_mb_full": round(full, 1), "rss_mb_after_drain": round(after, 1),
        "rss_kb_per_queued_message": round((full - idle) * 1024 / max(n, 1), 2),
        "given_back_fraction": round((full - after) / (full - idle), 3)
        if full > idle else None}))


if __name__ == "__main__":
    main()
