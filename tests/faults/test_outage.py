"""A clean stop or a kill -9 of the collector while its store is failing loses nothing (issue
18): with acknowledge-after-commit the queue holds only messages the broker still keeps, so
what the collector could not store before it stopped is redelivered to the next one.

The matrix: {a private PostgreSQL database refusing connections, SQLite on a full tmpfs} ×
{SIGTERM, SIGKILL}, under load. While the store fails, /healthz says so (degraded, the reason,
the queue); the collector is stopped during the fault, started again while it lasts, and the
fault then ends. Every sequence number of every device is then stored exactly once and every
single-sample fault became its one ticket."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.store.db import open_engine

from tests.e2e.procs import wait_for
from tests.faults.disks import outage_of, small_disk
from tests.faults.harness import Collector, Load, settle, stored_count
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e


class Fault:
    """Where the store lives and how it fails: `begin` and `end` the fault."""

    db: str

    def begin(self) -> None: ...

    def end(self) -> None: ...


@contextlib.contextmanager
def fault_of(kind: str, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Fault]:
    fault = Fault()
    if kind == "database_outage":
        fault.db = request.getfixturevalue("pg_url")
        with outage_of(fault.db) as outage:
            fault.begin, fault.end = outage.begin, outage.end  # type: ignore[method-assign]
            yield fault
    else:
        with small_disk(tmp / "disk") as disk:
            fault.db = f"sqlite:///{disk.path / 'fw.db'}"
            fault.begin, fault.end = disk.fill, disk.free  # type: ignore[method-assign]
            yield fault


def store_failing(base: str) -> dict[str, object] | None:
    health = httpx.get(f"{base}/healthz").json()
    return health if health["store_retrying_s"] is not None else None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill9"])
@pytest.mark.parametrize("kind", ["database_outage", "disk_full"])
def test_stopping_while_the_store_fails_loses_nothing(
        kind: str, sig: int, tmp_path: Path, mosquitto: Mosquitto,
        request: pytest.FixtureRequest) -> None:
    with fault_of(kind, tmp_path, request) as fault:
        collector = Collector(tmp_path, mosquitto.port, fault.db, stop_timeout="2s").start()
        base = collector.ready()
        engine = open_engine(fault.db, create=False)
        load = Load(mosquitto.port, devices=40, cycles=60, interval=0.1).start()
        try:
            wait_for(lambda: stored_count(engine) >= 300, 30)
            fault.begin()
            health = wait_for(lambda: store_failing(base), 20)
            assert health["status"] == "degraded"
            assert any("the store has failed" in r for r in health["reasons"])  # type: ignore[attr-defined]
            wait_for(lambda: httpx.get(f"{base}/healthz").json()["queued"] > 0, 10)
            time.sleep(1.0)  # more arrives, unstored
            code = collector.stop(sig, timeout=20)  # SIGTERM: stop_timeout 2 s, then gives up
            assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
            collector.start()  # while the store still fails
            time.sleep(2.0)
            fault.end()
            collector.ready()
            load.wait()
            account = settle(engine, load)
        finally:
            fault.end()
            assert collector.stop(signal.SIGTERM) == 0
            engine.dispose()
    assert account.missing == [] and account.duplicated == []
    assert account.tickets == {d: 1 for d in load.expected_tickets()}
    assert "Traceback" not in collector.logs()
