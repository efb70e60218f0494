"""A store back from an outage gets its batch at once, not after the backoff (issue 18: a 30 s
outage must not stop ingest for 60 s). The backoff here is set to a minute: the batch can only
be stored within the test's wait because the writer saw the store answer again. Real
PostgreSQL (a private database refusing connections) and SQLite on a full tmpfs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.store import liveness
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from tests.e2e.procs import wait_for
from tests.faults.disks import outage_of, small_disk
from tests.store.helpers import T0, received, stored, worker


def bulky(n: int) -> list[Received]:
    """n metrics messages of ~20 KB each: more than an SQLite WAL already has room for."""
    return [received(wire.Metrics(device=f"d{i}", site="s", seq=1, ts=T0, samples=[
        wire.Sample(f"m{j}", float(j), {"pad": "x" * 300}) for j in range(50)])) for i in range(n)]


def slow_backoff(store: Store, tmp_path: Path):  # type: ignore[no-untyped-def]
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    w.writer.first_delay = w.writer.max_delay = 60.0  # only the liveness poll can cut it short
    w.writer.ping_every = 0.2
    return w


def test_a_database_back_from_an_outage_gets_its_batch_at_once(
        pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", "fieldwatch.collector.store.writer")
    store = Store(open_engine(pg_url))
    w = slow_backoff(store, tmp_path)
    try:
        with outage_of(pg_url) as outage:
            outage.begin()
            assert not liveness.answers(store.engine)
            done = threading.Thread(target=w.process, args=([received(wire.Metrics(
                device="a", site="s", seq=1, ts=T0, samples=[]))],))
            done.start()
            wait_for(lambda: w.stats.get("store_errors_total") >= 1, 20)
            wait_for(lambda: w.writer._seen_down, 10)
            outage.end()
            done.join(20)
        assert not done.is_alive()
        assert stored(store) == [("a", 1)]
        assert "the store answers again" in caplog.text
    finally:
        w.stop(0.1)
        store.engine.dispose()


def test_a_disk_with_room_again_gets_its_batch_at_once(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        store = Store(open_engine(f"sqlite:///{disk.path / 'fw.db'}"))
        w = slow_backoff(store, tmp_path)
        try:
            disk.fill()
            assert not liveness.answers(store.engine)
            done = threading.Thread(target=w.process, args=(bulky(200),))
            done.start()
            wait_for(lambda: w.stats.get("store_errors_total") >= 1, 20)
            assert "full" in w.writer.last_error
            wait_for(lambda: w.writer._seen_down, 10)
            disk.free()
            done.join(20)
            assert not done.is_alive()
            assert len(stored(store)) == 200
        finally:
            w.stop(0.1)
            store.engine.dispose()


def test_sqlite_locked_by_another_process_does_not_answer(tmp_path: Path) -> None:
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"))
    assert liveness.answers(store.engine)
    other = sqlite3.connect(tmp_path / "fw.db", isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        assert not liveness.answers(store.engine)
        other.execute("ROLLBACK")
        assert liveness.answers(store.engine)
    finally:
        other.close()
        store.engine.dispose()
