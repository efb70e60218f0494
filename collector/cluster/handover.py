"""Which devices this collector evaluates now, and taking one over from the shared store.

In cluster mode a device's messages reach whichever collector RabbitMQ gives its partition to,
and that changes when a collector dies or loses its connection. So the worker does not load
every device at start (another collector evaluates most of them: it would judge their silence
and open false "no data" tickets); it takes a device over when its first message arrives
on the channel now consuming its partition, before evaluating it:

- its sequence accounting from the store, so what the previous owner stored and could not
  acknowledge (redelivered now) is dropped as a duplicate — every seq stored once;
- its status, inventory and presence, as a collector start seeds them (`Engine.seed_device`);
- its open tickets' alerts, firing again (`Engine.restore`), so a clear resolves them and a
  repeat updates them instead of opening a second ticket.

When that channel closes (the partition given away to balance the collectors, or the
connection lost), the partition may move: its devices are released (their state dropped, to be
read again from the store if they come back), and items still queued from that channel are
dropped unprocessed — unacknowledged, the broker redelivers them to the partition's new owner.
This module holds the policy; the worker calls `admit` on each batch and on idle turns.

What is left: a collector cut off from RabbitMQ while its batch commits can have that batch
redelivered to the new owner before the commit lands; the new owner then stores it again. A
kill or a clean stop has no such window (the channel closes after, or without, the commit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.ingest.decode import Received
from fieldwatch.collector.ingest.sequence import SeqState
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.store.schema import devices, tickets
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES

from fieldwatch.clock import Clock
from fieldwatch.jsonout import device_confirmed

log = logging.getLogger(__name__)

Key = tuple[str, str]


Owner = tuple[str, int]  # (partition, token of the channel that delivered it)


def owner_of(item: Received) -> Owner | None:
    """Which partition and channel delivered an item (None: a transport without partitions)."""
    partition = getattr(item.ack, "partition", None)
    return None if partition is None else (partition, item.ack.token)  # type: ignore[union-attr]


def split_stale(items: Sequence[Received], tokens: Mapping[str, int]
                ) -> tuple[list[Received], int]:
    """(items of a channel still consuming their partition, how many came on one since
    closed: given away or lost, so redelivered to the partition's new owner)."""
    keep = []
    for item in items:
        owner = owner_of(item)
        if owner is None or tokens.get(owner[0]) == owner[1]:
            keep.append(item)
    return keep, len(items) - len(keep)


def new_devices(items: Iterable[Received], owned: Mapping[Key, Owner | None]
                ) -> dict[Key, Owner | None]:
    """Devices of `items` not owned yet, with the channel that brought them."""
    seen: dict[Key, Owner | None] = {}
    for item in items:
        key = (item.message.site, item.message.device)
        if key not in owned and key not in seen:
            seen[key] = owner_of(item)
    return seen


def lapsed(owned: Mapping[Key, Owner | None], tokens: Mapping[str, int]) -> list[Key]:
    """Owned devices whose partition's channel has closed since (given away, or lost)."""
    return [k for k, o in owned.items() if o is not None and tokens.get(o[0]) != o[1]]


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
                 engine: Callable[[], Engine], tokens: Callable[[], Mapping[str, int]],
                 clock: Clock) -> None:
        self.store, self.state, self.sequences = store, state, sequences
        self.engine, self.tokens, self.clock = engine, tokens, clock
        self.owned: dict[Key, Owner | None] = {}
        self.sequences.clear()  # read per device as it is taken over
        self.taken = 0  # devices taken over so far
        self.partitions: dict[Owner, float] = {}  # (partition, token) → its first message

    def admit(self, items: Sequence[Received]) -> list[Received]:
        """The items to process, after taking over their devices; the caller acks nothing
        it did not get back. Called with no items too, to let go of devices in time."""
        tokens = self.tokens()
        gone = lapsed(self.owned, tokens)
        if gone:
            self.release(gone)
        keep, stale = split_stale(items, tokens)
        if stale:
            log.info("dropped %d queued messages of a closed channel (redelivered to the "
                     "partition's new owner)", stale)
        self._note_partitions(keep)
        fresh = new_devices(keep, self.owned)
        if fresh:
            self.take(fresh)
        return keep

    def fenced(self, items: Sequence[Received]) -> set[str]:
        """A batch the store refused because another collector stored its devices meanwhile:
        forget every device of it (its state has seen the batch) and return the partitions to
        let go of, so the broker redelivers the batch to whoever holds them now."""
        keys = sorted({(i.message.site, i.message.device) for i in items})
        self.release([k for k in keys if k in self.owned])
        return {o[0] for i in items if (o := owner_of(i)) is not None}

    def _note_partitions(self, items: Sequence[Received]) -> None:
        for item in items:
            owner = owner_of(item)
            if owner is not None and owner not in self.partitions:
                at = self.partitions[owner] = self.clock.now()
                log.info("consuming partition %s (first message at=%.3f)", owner[0], at)

    def release(self, keys: list[Key]) -> None:
        n = release(self.engine(), self.state, keys)
        for key in keys:
            self.sequences.pop(key, None)
            self.owned.pop(key, None)
        log.info("released %d devices (%d alerts): their partition went to another "
                 "collector", len(keys), n)

    def take(self, fresh: Mapping[Key, Owner | None]) -> None:
        keys = list(fresh)
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
        self.owned.update(fresh)
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
