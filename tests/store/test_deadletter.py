"""A batch the store refuses as data is split: the good messages are stored, each bad one is
set aside in the dead-letter table (counted, listable). A batch the store cannot take at all is
kept and retried, nothing set aside. Real Worker, real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from fieldwatch.collector.store.deadletter import DeadLetters
from fieldwatch.collector.store.parts import BatchParts
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.tickets.alerts import TicketChange

from fieldwatch import wire
from fieldwatch.cli import main
from fieldwatch.clock import FakeClock
from tests.e2e.procs import wait_for
from tests.store.helpers import T0, metrics, received, stored, worker


def test_a_seq_beyond_64_bits_is_set_aside_and_the_rest_of_the_batch_is_stored(
        store: Store, tmp_path: Path) -> None:
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    bad = metrics("b", 2**63)
    w.process([metrics("a", 1), metrics("b", 1), bad, metrics("c", 1, value=95.0),
               received(wire.Status(device="d", site="s", state="online", ts=T0))])

    assert stored(store) == [("a", 1), ("b", 1), ("c", 1)]
    [letter] = DeadLetters(store.engine).list()
    assert (letter["topic"], letter["site"], letter["device"], letter["kind"]) == (
        "fieldwatch/v1/s/b/metrics", "s", "b", "metrics")
    assert letter["payload"] == bad.payload and letter["received_at"] == T0
    # sqlite3 refuses to bind the int; PostgreSQL says bigint out of range
    assert letter["error"] in ("OverflowError", "DataError")
    assert "too large" in letter["reason"] or "out of range" in letter["reason"]
    assert w.stats.get("dead_letter_total", letter["error"]) == 1
    assert w.stats.get("stored_total") == 4 and w.stats.get("lost_messages_total") == 0
    assert [t["device"] for t in store.list_tickets()] == ["c"]  # its fault still ticketed
    devices = {d["device"]: d for d in store.list_devices()}
    assert devices["b"]["last_seq"] == 1 and devices["d"]["status"] == "online"

    # b's sequence accounting is not left at 2**63: its next message is stored, no gap counted
    w.process([metrics("b", 2, T0 + 10)])
    assert ("b", 2) in stored(store)
    assert store.get_device("s", "b")[0]["seq_missing"] == 0
    assert w.stats.total("dead_letter_total") == 1


def test_every_bad_message_of_a_batch_is_set_aside_alone(store: Store, tmp_path: Path) -> None:
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    bad = {4: metrics("x4", 2**64), 11: metrics("x11", -(2**63) - 1), 12: metrics("x12", 2**70)}
    items = [bad.get(i) or metrics(f"d{i}", 1) for i in range(20)]
    w.process(items)
    assert stored(store) == sorted((f"d{i}", 1) for i in range(20) if i not in bad)
    letters = DeadLetters(store.engine).list()
    assert sorted(r["device"] for r in letters) == ["x11", "x12", "x4"]
    assert w.stats.total("dead_letter_total") == 3 and w.stats.get("stored_total") == 17
    assert w.stats.get("store_batches_split_total") == 1


def test_a_ticket_change_the_store_refuses_is_set_aside(store: Store, tmp_path: Path) -> None:
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    good = TicketChange(kind="fire", fingerprint="f1", rule="hot", site="s", device="x",
                        labels={"m": "/"}, severity="P1", title="x hot", description="",
                        team=None, value=90.0, first_ts=T0, last_ts=T0)
    bad = replace(good, fingerprint="f2", device="y", count=2**63)  # occurrences overflow
    batch = BatchWrite(changes=[good, bad])
    written = w.writer.write(batch, BatchParts(batch, []))
    assert written.dead == [1] and len(written.opened) == 1
    assert [t["device"] for t in store.list_tickets()] == ["x"]
    [letter] = DeadLetters(store.engine).list()
    assert (letter["kind"], letter["device"], letter["topic"]) == ("ticket", "y", "")
    change = json.loads(letter["payload"])
    assert (change["fingerprint"], change["count"], change["labels"]) == ("f2", 2**63,
                                                                          {"m": "/"})


def _rename_messages(store: Store, old: str, new: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")


def test_a_store_that_cannot_write_keeps_the_batch_and_retries(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite: OperationalError (no such table); PostgreSQL: ProgrammingError, whose doubt the
    probe settles — it fails too, so the store is at fault and nothing is set aside."""
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    _rename_messages(store, "messages", "messages_away")
    done = threading.Thread(target=w.process, args=([metrics("a", 1), metrics("b", 1)],))
    done.start()
    try:
        wait_for(lambda: w.stats.get("store_errors_total") >= 5, 20)
        seen = w.snapshot(T0 + 7)
        assert seen.retrying_for == 7 and seen.holding == 2
        assert "messages" in seen.store_error
        assert DeadLetters(store.engine).count() == 0
        if store.pg:
            wait_for(lambda: "store probe failed too" in caplog.text, 10)
    finally:
        _rename_messages(store, "messages_away", "messages")
    done.join(20)
    assert not done.is_alive()
    assert stored(store) == [("a", 1), ("b", 1)]
    assert w.stats.total("dead_letter_total") == 0 and w.stats.get("stored_total") == 2
    assert w.snapshot(T0).retrying_for is None


def test_stopping_while_the_store_is_down_counts_the_batch_lost(store: Store,
                                                                 tmp_path: Path) -> None:
    import queue

    source: queue.Queue = queue.Queue()
    w = worker(store, tmp_path / "rules", FakeClock(T0), source)
    _rename_messages(store, "messages", "messages_away")
    w.start()
    source.put(metrics("a", 1))
    wait_for(lambda: w.stats.get("store_errors_total") >= 2, 20)
    w.stop(0.5)  # the store is retried for that long, then the batch is given up
    assert w.stats.get("lost_messages_total") == 1 and w.stats.get("stored_total") == 0
    assert DeadLetters(store.engine).count() == 0


def test_a_database_refusing_connections_is_waited_out(pg_url: str, tmp_path: Path) -> None:
    from fieldwatch.collector.store.db import open_engine

    from tests.conftest import PG_URL

    store = Store(open_engine(pg_url))
    name = pg_url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 f"WHERE datname = '{name}'")
        done = threading.Thread(target=w.process, args=([metrics("a", 1)],))
        done.start()
        wait_for(lambda: w.stats.get("store_errors_total") >= 3, 20)
        assert "OperationalError" in w.writer.last_error
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        done.join(20)
        assert stored(store) == [("a", 1)] and DeadLetters(store.engine).count() == 0
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()
        store.engine.dispose()


class _BuggyStore(Store):
    """The real store with a bug some rows trip: a failure of no known kind."""

    def write(self, batch: BatchWrite, now: float) -> list[int]:
        if any(r.device == "boom" for r in batch.raw):
            raise RuntimeError("the store code trips over this device")
        return super().write(batch, now)


def test_an_unknown_failure_the_store_probe_survives_is_the_data_s(
        db_url_any: str, tmp_path: Path) -> None:
    from fieldwatch.collector.store.db import open_engine

    store = _BuggyStore(open_engine(db_url_any))
    try:
        w = worker(store, tmp_path / "rules", FakeClock(T0))
        w.process([metrics("a", 1), metrics("boom", 1), metrics("c", 1)])
        assert stored(store) == [("a", 1), ("c", 1)]
        [letter] = DeadLetters(store.engine).list()
        assert (letter["device"], letter["error"]) == ("boom", "RuntimeError")
        assert w.stats.get("store_errors_total") >= 3  # retried before the probe decided
    finally:
        store.engine.dispose()


def test_deadletter_cli_lists_and_shows(db_url_any: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwatch.collector.store.db import open_engine

    store = Store(open_engine(db_url_any))
    try:
        w = worker(store, tmp_path / "rules", FakeClock(T0))
        bad = metrics("b", 2**63)
        w.process([metrics("a", 1), bad])
    finally:
        store.engine.dispose()
    capsys.readouterr()
    assert main(["deadletter", "list", "--db", db_url_any, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["site"], row["device"], row["kind"], row["topic"]) == (
        "s", "b", "metrics", "fieldwatch/v1/s/b/metrics")
    assert row["payload"].encode() == bad.payload and row["payload_bytes"] == len(bad.payload)
    assert row["at"] and row["received_at"] == "2027-01-15T08:00:00.000Z"
    assert main(["deadletter", "list", "--db", db_url_any]) == 0
    out = capsys.readouterr().out
    assert "b" in out and "1 set aside in all" in out
    assert main(["deadletter", "show", str(row["id"]), "--db", db_url_any, "--payload"]) == 0
    assert capsys.readouterr().out.encode() == bad.payload
    assert main(["deadletter", "show", "999", "--db", db_url_any]) == 1
