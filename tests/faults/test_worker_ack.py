"""The worker's side of acknowledge-after-commit (issues 15, 18): an item's `ack` is called
only once it is durably stored — committed, or set aside as a dead letter — and never for what
is unstored at stop. Each ack checks the store at the moment it is called. Real Worker, real
SQLite and PostgreSQL."""

from __future__ import annotations

import queue
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.store.deadletter import DeadLetters
from fieldwatch.collector.store.schema import messages
from fieldwatch.collector.store.store import Store

from fieldwatch.clock import FakeClock
from tests.e2e.procs import wait_for
from tests.store.helpers import T0, metrics, stored, worker


class Acks:
    """Hands out ack callbacks that note, when called, whether the message was in the store
    (a row in messages, or a dead letter) at that moment."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[tuple[str, bool]] = []

    def tag(self, item: Received) -> Received:
        device = item.message.device
        return replace(item, ack=lambda: self.calls.append((device, self._held(device))))

    def _held(self, device: str) -> bool:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(messages).where(
                messages.c.device == device)).scalar_one()
        return rows > 0 or any(d["device"] == device
                               for d in DeadLetters(self.store.engine).list())


def test_each_item_is_acked_once_after_its_batch_committed(store: Store,
                                                           tmp_path: Path) -> None:
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    acks = Acks(store)
    items = [acks.tag(metrics(f"d{i}", 1)) for i in range(5)]
    w.process(items)
    assert sorted(acks.calls) == [(f"d{i}", True) for i in range(5)]


def test_a_dead_letter_is_acked_once_recorded_and_a_duplicate_once_its_batch_is(
        store: Store, tmp_path: Path) -> None:
    w = worker(store, tmp_path / "rules", FakeClock(T0))
    acks = Acks(store)
    w.process([acks.tag(metrics("a", 1))])
    w.process([acks.tag(metrics("a", 1)), acks.tag(metrics("bad", 2**63)),
               acks.tag(metrics("b", 1))])
    assert DeadLetters(store.engine).count() == 1
    assert sorted(acks.calls) == [("a", True), ("a", True), ("b", True), ("bad", True)]


def test_nothing_unstored_at_stop_is_acked(store: Store, tmp_path: Path) -> None:
    source: queue.Queue[Received] = queue.Queue()
    w = worker(store, tmp_path / "rules", FakeClock(T0), source)
    acks = Acks(store)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE messages RENAME TO messages_away")
    w.start()
    source.put(acks.tag(metrics("a", 1)))
    wait_for(lambda: w.stats.get("store_errors_total") >= 2, 20)
    w.stop(0.5)
    assert not w._thread.is_alive()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE messages_away RENAME TO messages")
    assert acks.calls == [] and stored(store) == []
    assert w.stats.get("lost_messages_total") == 1


def test_a_failing_ack_is_counted_and_the_worker_goes_on(store: Store, tmp_path: Path) -> None:
    w = worker(store, tmp_path / "rules", FakeClock(T0))

    def broken() -> None:
        raise ConnectionError("the channel closed")

    w.process([replace(metrics("a", 1), ack=broken), metrics("b", 1)])
    assert w.stats.get("ack_errors_total") == 1
    assert stored(store) == [("a", 1), ("b", 1)]
