"""Which devices this collector evaluates now, and taking one over from the shared store.

In cluster mode a device's messages reach whichever collector RabbitMQ gives its partition to,
and that changes when a collector dies or loses its connection. So the worker does not load
every device at start (another collector evaluates most of them: it would judge their silence
and open false "no data" tickets); it takes a device over when its first message of the
current connection arrives, before evaluating it:

- its sequence accounting from the store, so what the previous owner stored and could not
  acknowledge (redelivered now) is dropped as a duplicate — every seq stored once;
- its status, inventory and presence, as a collector start seeds them (`Engine.seed_device`);
- its open tickets' alerts, firing again (`Engine.restore`), so a clear resolves them and a
  repeat updates them instead of opening a second ticket.

When the connection is lost (a new `epoch`), every partition may move: all devices are
released (their state dropped, to be read again from the store), and items still queued from
the old connection are dropped unprocessed — unacknowledged, the broker redelivers them to
the partition's new owner. This module holds the policy; the worker calls `admit` on each batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.ingest.decode import Received
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.sequence import SeqState
from fieldwatch.collector.store.schema import devices, tickets
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES

from fieldwatch.clock import Clock
from fieldwatch.jsonout import device_confirmed

log = logging.getLogger(__name__)

Key = tuple[str, str]


def epoch_of(item: Received) -> int | None:
    """The connection an item came on (None: a transport without epochs)."""
    return getattr(item.ack, "epoch", None)


def split_stale(items: Sequence[Received], epoch: int) -> tuple[list[Received], int]:
    """(items of the current connection, how many came on an older one)."""
    keep = [i for i in items if epoch_of(i) in (None, epoch)]
    return keep, len(items) - len(keep)


def new_devices(items: Iterable[Received], owned: set[Key]) -> list[Key]:
    """Devices of `items` not owned yet, in order of first appearance."""
    seen: dict[Key, None] = {}
    for item in items:
        key = (item.message.site, item.message.device)
        if key not in owned:
            seen.setdefault(key)
    return list(seen)


def release(engine: Engine, state: EngineState, keys: Iterable[Key]) -> int:
    """Forget these devices and their alerts (read again from the store when they return)."""
    gone = set(keys)
    for key in gone:
        state.devices.pop(key, None)
    dropped = [a for a in state.alerts.values() if (a.site, a.device) in gone]
    for a in dropped:
        engine.drop(state, a)
    return len(dropped)


class Handover:
    def __init__(self, store: Store, state: EngineState, sequences: dict[Key, SeqState],
                 engine: Callable[[], Engine], epoch: Callable[[], int], clock: Clock) -> None:
        self.store, self.state, self.sequences = store, state, sequences
        self.engine, self.epoch, self.clock = engine, epoch, clock
        self.owned: set[Key] = set()
        self.current = epoch()
        self.sequences.clear()  # read per device as it is taken over
        self.taken = 0  # devices taken over so far (counted for tests and /metrics)
        self.partitions: dict[str, float] = {}  # partition → its first message, this epoch

    def admit(self, items: Sequence[Received]) -> list[Received]:
        """The items to process, after taking over their devices; the caller acks nothing
        it did not get back (what came on an older connection is redelivered elsewhere)."""
        now_epoch = self.epoch()
        if now_epoch != self.current:
            self.release_all()
            self.current = now_epoch
        keep, stale = split_stale(items, self.current)
        self._note_partitions(keep)
        if stale:
            log.info("dropped %d queued messages of a lost connection (redelivered to the "
                     "partition's new owner)", stale)
        fresh = new_devices(keep, self.owned)
        if fresh:
            self.take(fresh)
        return keep

    def _note_partitions(self, items: Sequence[Received]) -> None:
        for item in items:
            p = getattr(item.ack, "partition", None)
            if p is not None and p not in self.partitions:
                at = self.partitions[p] = self.clock.now()
                log.info("consuming partition %s (first message at=%.3f)", p, at)

    def release_all(self) -> None:
        self.partitions.clear()
        if self.owned:
            n = release(self.engine(), self.state, self.owned)
            log.info("connection lost: released %d devices (%d alerts) to whoever takes "
                     "their partitions", len(self.owned), n)
        for key in self.owned:
            self.sequences.pop(key, None)
        self.owned.clear()

    def take(self, keys: list[Key]) -> None:
        engine, st, now = self.engine(), self.state, self.clock.now()
        seqs = self.store.sequence_states(only=keys)
        rows, open_tickets = self._read(keys)
        for key in keys:
            self.sequences[key] = seqs.get(key, SeqState())
        for d in rows:
            engine.seed_device(st, d["site"], d["device"], now, d["status"], d["status_cause"],
                               d["status_at"], device_confirmed(d), d["inventory"])
        restored = sum(engine.restore(st, t["rule"], t["site"], t["device"], t["labels"] or {},
                                      t["opened_at"], t["last_seen"],
                                      t["last_value"] if t["last_value"] is not None else 0.0)
                       for t in open_tickets)
        self.owned.update(keys)
        self.taken += len(keys)
        log.debug("took over %d devices (%d known, %d firing alerts restored)", len(keys),
                  len(rows), restored)

    def _read(self, keys: list[Key]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        where_dev = sa.tuple_(devices.c.site, devices.c.device).in_(keys)
        where_t = sa.and_(sa.tuple_(tickets.c.site, tickets.c.device).in_(keys),
                          tickets.c.state.in_(OPEN_STATES))
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(devices).where(where_dev))]
            open_t = [dict(r._mapping) for r in conn.execute(
                sa.select(tickets).where(where_t).order_by(tickets.c.id))]
        return rows, open_t
