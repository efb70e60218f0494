"""Messages lost when the collector is killed or stopped while its store fails (issue 18).

Each run: a private Mosquitto, a fresh store, `fieldwatch collector run` as a process, and a
load of D devices × C cycles (one metrics message per device per cycle, numbered; every third
device reports one single-sample fault, which must become exactly one ticket). The loss is
counted afterwards from the stored raw messages (missing and duplicated (device, seq)) and the
tickets table — never from the counters of a process that was killed.

Runs (`--runs`, default all), on SQLite and PostgreSQL (a private database):
- `kill9_load`: kill -9 the collector three times at normal load, restarting it each time;
- `sigterm_outage`, `kill9_outage`: the store fails for `--outage` seconds (PostgreSQL: the
  database refuses connections; SQLite: another process holds its write lock), and the
  collector is stopped (SIGTERM, stop_timeout 2 s) or killed 5 s into it, then started again
  while the fault lasts;
- `sigterm_diskfull`, `kill9_diskfull` (SQLite only): the same with the database's file
  system full (a tmpfs, mounted as root);
- `outage_only`: the same outage with the collector running throughout.
`resume_s` is the time from the store's return to the first message stored after it.

    python bench/faults.py [--devices 500] [--cycles 60] [--interval 1] [--outage 30]
        [--stores sqlite,postgresql] [--runs kill9_load,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import _servers  # noqa: F401 - the repo root on sys.path
import sqlalchemy as sa
from _servers import Mosquitto, pg_database
from fieldwatch.collector.store.db import open_engine

from tests.faults.disks import Outage, small_disk
from tests.faults.harness import Account, Collector, Load, settle, stored_count

RUNS = ("kill9_load", "sigterm_outage", "kill9_outage", "sigterm_diskfull", "kill9_diskfull",
        "outage_only")


class SqliteLock:
    """An SQLite outage: another process holds the database's write lock."""

    def __init__(self, path: Path) -> None:
        self.path, self.conn = path, None  # type: ignore[var-annotated]

    def begin(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.conn.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self.conn is not None:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None


@contextlib.contextmanager
def store_for(store: str, run: str, root: Path
              ) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """(db URL, begin fault, end fault)."""
    if store == "postgresql":
        with pg_database() as url:
            outage = Outage(url)
            try:
                yield url, outage.begin, outage.end
            finally:
                outage.close()
    elif run.endswith("diskfull"):
        with small_disk(root / "disk", size="64m") as disk:
            yield f"sqlite:///{disk.path / 'fw.db'}", disk.fill, disk.free
    else:
        lock = SqliteLock(root / "fw.db")
        try:
            yield f"sqlite:///{root / 'fw.db'}", lock.begin, lock.end
        finally:
            lock.end()


def resumed(engine: sa.Engine, since: float, limit: float = 120.0) -> float | None:
    """Seconds from `since` to the stored count growing past what it is now."""
    n = stored_count(engine)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if stored_count(engine) > n >= 0:
            return time.monotonic() - since
        if n < 0:
            n = stored_count(engine)
        time.sleep(0.02)
    return None


def one_run(store: str, run: str, args: argparse.Namespace, root: Path) -> dict[str, object]:
    root.mkdir(parents=True)
    broker = Mosquitto(root / "mosquitto").start()
    out: dict[str, object] = {"store": store, "run": run}
    try:
        with store_for(store, run, root) as (db, begin, end):
            collector = Collector(root, broker.port, db, stop_timeout="2s").start()
            collector.ready(60)
            engine = open_engine(db, create=False)
            load = Load(broker.port, args.devices, args.cycles, args.interval).start()
            try:
                if run == "kill9_load":
                    for _ in range(3):
                        time.sleep(args.cycles * args.interval / 5)
                        collector.stop(signal.SIGKILL)
                        collector.start().ready(60)
                else:
                    time.sleep(args.cycles * args.interval / 6)
                    begin()
                    if run != "outage_only":
                        time.sleep(5.0)
                        collector.stop(signal.SIGTERM if run.startswith("sigterm")
                                       else signal.SIGKILL, 60)
                        collector.start()
                        time.sleep(max(0.0, args.outage - 5.0))
                    else:
                        time.sleep(args.outage)
                    ended = time.monotonic()
                    end()
                    out["resume_s"] = resumed(engine, ended)
                    collector.ready(60)
                load.wait(args.cycles * args.interval + 120)
                account: Account = settle(engine, load, timeout=120)
            finally:
                end()
                collector.stop(signal.SIGTERM, 60)
                engine.dispose()
    finally:
        broker.stop()
    missing_tickets = [d for d in load.expected_tickets() if account.tickets.get(d, 0) == 0]
    out.update(messages=load.expected, lost=len(account.missing),
               duplicated=len(account.duplicated), tickets_expected=len(load.faults),
               tickets_missing=len(missing_tickets),
               tickets_duplicated=sum(1 for n in account.tickets.values() if n > 1),
               collector_runs=collector.runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--cycles", type=int, default=60)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--outage", type=float, default=30.0)
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--runs", default=",".join(RUNS))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for store in args.stores.split(","):
            for run in args.runs.split(","):
                if store == "postgresql" and run.endswith("diskfull"):
                    continue  # the server's disk is shared: not failed here
                root = Path(tmp) / f"{store}-{run}"
                try:
                    r = one_run(store, run, args, root)
                except Exception as exc:  # one failed run must not hide the others' figures
                    logs = sorted(root.glob("collector-*.log"))
                    r = {"store": store, "run": run, "error": repr(exc), "lost": None,
                         "tickets_missing": None,
                         "log_tail": logs[-1].read_text().splitlines()[-15:] if logs else []}
                print(json.dumps(r), file=sys.stderr, flush=True)
                results.append(r)
    print(json.dumps({
        "bench": "faults", "devices": args.devices, "cycles": args.cycles,
        "interval_s": args.interval, "outage_s": args.outage,
        "lost_total": sum(int(r["lost"]) for r in results  # type: ignore[call-overload]
                          if r["lost"] is not None),
        "tickets_missing_total": sum(int(r["tickets_missing"])  # type: ignore[call-overload]
                                     for r in results if r["tickets_missing"] is not None),
        "failed_runs": [f"{r['store']}/{r['run']}" for r in results if "error" in r],
        "resume_s_max": max((r["resume_s"] for r in results  # type: ignore[type-var]
                             if r.get("resume_s") is not None), default=None),
        "runs": results}))


if __name__ == "__main__":
    main()
