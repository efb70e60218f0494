"""Off the network thread: batches of received messages → rules → one store transaction.

`prepare` is pure (messages and alert state in, a BatchWrite out) and is what tests and
benchmarks drive; `Worker` is the thread that feeds it from the ingest queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from fieldwatch.collector.alerts import plan
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.rules.engine import AlertState, Engine
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.store import BatchWrite, DeviceSeen, RawMessage, Store

from fieldwatch import wire
from fieldwatch.clock import Clock

log = logging.getLogger(__name__)


def prepare(items: Sequence[Received], engine: Engine,
            alerts: dict[str, AlertState]) -> BatchWrite:
    batch = BatchWrite()
    metrics: list[wire.Metrics] = []
    for item in items:
        msg = item.message
        key = (msg.site, msg.device)
        seen = batch.devices.get(key)
        if seen is None:
            seen = batch.devices[key] = DeviceSeen(msg.site, msg.device, item.received_at,
                                                  item.received_at)
        seen.last = max(seen.last, item.received_at)
        seen.count += 1
        if isinstance(msg, wire.Metrics):
            metrics.append(msg)
            seen.last_seq = msg.seq if seen.last_seq is None else max(seen.last_seq, msg.seq)
            seen.agent = msg.agent
            batch.raw.append(RawMessage(msg.site, msg.device, "metrics", msg.seq, msg.ts,
                                        item.received_at, item.payload))
        elif isinstance(msg, wire.Status):
            seen.status, seen.status_cause = msg.state, msg.cause
            seen.status_at = msg.ts if msg.ts is not None else item.received_at
        elif isinstance(msg, wire.Inventory):
            seen.inventory = dict(msg.facts)
        elif isinstance(msg, wire.Event):
            batch.raw.append(RawMessage(msg.site, msg.device, "event", msg.seq, msg.ts,
                                        item.received_at, item.payload))
    batch.changes = plan(engine.evaluate(alerts, metrics))
    return batch


class Worker:
    """Drains the queue in batches of up to `batch_max`; `batch_wait` optionally lingers for
    more messages when the queue runs dry (0: write at once)."""

    def __init__(self, source: queue.Queue[Received], store: Store, engine: Engine,
                 clock: Clock, stats: Stats, batch_max: int = 2000,
                 batch_wait: float = 0.0,
                 on_opened: Callable[[list[int]], None] | None = None) -> None:
        self.source, self.store, self.engine = source, store, engine
        self.clock, self.stats = clock, stats
        self.batch_max, self.batch_wait = batch_max, batch_wait
        self.alerts: dict[str, AlertState] = {}
        self.on_opened = on_opened  # e.g. run the rule's diagnostics on the new tickets
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fieldwatch-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is queued, then stop."""
        self._stop.set()
        self._thread.join(timeout)

    def _take(self) -> list[Received]:
        """Group commit: whatever queued while the last batch was written goes in the next one,
        so an idle collector writes at once and a busy one writes big batches by itself."""
        try:
            items = [self.source.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_wait
        while len(items) < self.batch_max:
            try:
                items.append(self.source.get_nowait())
            except queue.Empty:
                if time.monotonic() >= deadline or self._stop.is_set():
                    break
                time.sleep(0.001)
        return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if not items:
                if self._stop.is_set():
                    return
                continue
            self.process(items)

    def process(self, items: Sequence[Received]) -> None:
        batch = prepare(items, self.engine, self.alerts)
        delay = 0.5
        while True:
            try:
                opened = self.store.write(batch, self.clock.now())
                break
            except Exception:  # noqa: BLE001 - any store failure: keep the batch, retry
                # Holding the batch stops the queue draining, which backs up to the broker
                # (QoS 1): data waits instead of being dropped.
                self.stats.inc("store_errors_total")
                log.exception("could not store a batch of %d messages; retrying in %.1fs",
                              len(items), delay)
                if self._stop.wait(delay):
                    self.stats.inc("lost_messages_total", n=len(items))
                    log.error("stopping with %d messages unstored", len(items))
                    return
                delay = min(delay * 2, 30.0)
        self.stats.inc("stored_total", n=len(items))
        self.stats.inc("samples_total", n=sum(len(i.message.samples) for i in items
                                              if isinstance(i.message, wire.Metrics)))
        if opened:
            self.stats.inc("tickets_opened_total", n=len(opened))
            log.info("opened tickets %s", opened)
            if self.on_opened is not None:
                self.on_opened(opened)
