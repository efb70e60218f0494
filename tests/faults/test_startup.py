"""A database that is down when things start (issue 18): `collector run` waits for it with one
log line per attempt, no traceback, and starts once it answers; a CLI command says in one line
what it could not reach, where and why, and exits 1. Real processes, a private PostgreSQL
database refusing connections."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.store.db import open_engine

from tests.e2e.procs import FIELDWATCH, Proc, wait_for, write_yaml
from tests.faults.disks import outage_of
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e


def test_a_command_facing_an_unreachable_database_says_so_in_one_line(pg_url: str) -> None:
    with outage_of(pg_url) as outage:
        outage.begin()
        done = subprocess.run([*FIELDWATCH, "tickets", "list", "--db", pg_url],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    [line] = lines
    assert "cannot reach the store" in line and "(from --db)" in line  # what
    assert "127.0.0.1:5432/" + pg_url.rsplit("/", 1)[1] in line  # where
    assert "not currently accepting connections" in line  # why


def test_collector_run_waits_for_its_database(pg_url: str, tmp_path: Path,
                                              mosquitto: Mosquitto) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    cfg = write_yaml(tmp_path / "collector.yaml", {
        "broker": {"host": "127.0.0.1", "port": mosquitto.port}, "client_id": "fw-wait",
        "rules": [str(rules)], "db": pg_url})
    with outage_of(pg_url) as outage:
        outage.begin()
        proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                    tmp_path / "collector.log")
        try:
            wait_for(lambda: proc.log.read_text().count("cannot be reached") >= 2, 30)
            assert proc.proc.poll() is None  # still waiting, not dead
            outage.end()
            base = proc.wait_output(r"HTTP API on (http://\S+)/", 30).group(1)
            wait_for(lambda: httpx.get(f"{base}/healthz").json()["status"] == "ok", 20)
        finally:
            assert proc.stop() == 0
    log = proc.log.read_text()
    assert "Traceback" not in log
    waits = [line for line in log.splitlines() if "cannot be reached" in line]
    assert all("not currently accepting connections" in line for line in waits)


def test_collector_run_stopped_while_waiting_exits_cleanly(pg_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    cfg = write_yaml(tmp_path / "collector.yaml", {"rules": [str(rules)], "db": pg_url})
    with outage_of(pg_url) as outage:
        outage.begin()
        proc = Proc(["collector", "run", "--config", str(cfg)], tmp_path / "collector.log")
        wait_for(lambda: "cannot be reached" in proc.log.read_text(), 30)
        assert proc.stop(signal.SIGTERM) == 0
    assert "Traceback" not in proc.log.read_text()


def test_collector_run_waits_for_an_sqlite_database_another_process_holds(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """SQLite reads while another process holds its write lock; start-up writes would fail
    after the busy timeout and end the run (found by bench/faults.py, kill9_outage)."""
    db = tmp_path / "fw.db"
    open_engine(f"sqlite:///{db}").dispose()  # an existing database, schema in place
    rules = tmp_path / "rules"
    rules.mkdir()
    cfg = write_yaml(tmp_path / "collector.yaml", {
        "broker": {"host": "127.0.0.1", "port": mosquitto.port}, "client_id": "fw-wait-lite",
        "rules": [str(rules)], "db": f"sqlite:///{db}"})
    lock = sqlite3.connect(db, isolation_level=None, timeout=30)
    lock.execute("BEGIN EXCLUSIVE")
    proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                tmp_path / "collector.log")
    try:
        wait_for(lambda: proc.log.read_text().count("cannot be reached") >= 2, 30)
        assert proc.proc.poll() is None  # still waiting, not dead
        lock.execute("ROLLBACK")
        base = proc.wait_output(r"HTTP API on (http://\S+)/", 30).group(1)
        wait_for(lambda: httpx.get(f"{base}/healthz").json()["status"] == "ok", 20)
    finally:
        lock.close()
        assert proc.stop() == 0
    log = proc.log.read_text()
    assert "Traceback" not in log
    waits = [line for line in log.splitlines() if "cannot be reached" in line]
    assert waits and all("holds its write lock" in line for line in waits)
