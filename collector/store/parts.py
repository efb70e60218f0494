"""A prepared batch as units the writer can split: each received message, each ticket change.

Units 0..n-1 are the batch's messages, n.. its ticket changes (in the batch's order, which
keeps each ticket's changes in order). `build(units)` is the store write of just those units:
their raw rows, their ticket changes, and a device row per device they touch. A device whose
messages are all in the part gets the batch's own row (with its sequence accounting); one
whose messages are split gets a row rebuilt from the part's messages as `prepare_all` builds
it, without the accounting (None keeps the stored value; the next batch writes it whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fieldwatch.collector.ingest import Received
from fieldwatch.collector.store.deadletter import change_letter, message_letter
from fieldwatch.collector.store.store import BatchWrite, DeviceSeen, RawMessage

from fieldwatch import wire


class BatchParts:
    def __init__(self, batch: BatchWrite, items: Sequence[Received]) -> None:
        if len(batch.raw_items) != len(batch.raw):
            raise ValueError("a batch to split needs raw_items (pipeline.prepare_all sets them)")
        self.batch, self.items = batch, items

    def __len__(self) -> int:
        return len(self.items) + len(self.batch.changes)

    def is_message(self, unit: int) -> bool:
        return unit < len(self.items)

    def build(self, units: Sequence[int]) -> BatchWrite:
        n = len(self.items)
        chosen = sorted(u for u in units if u < n)
        wanted = set(chosen)
        raw = {i: r for r, i in zip(self.batch.raw, self.batch.raw_items, strict=True)
               if i in wanted}
        out = BatchWrite(raw=list(raw.values()), raw_items=list(raw),
                         changes=[self.batch.changes[u - n] for u in units if u >= n],
                         samples=None if self.batch.samples is None
                         else self.batch.samples.select(wanted))
        shares: dict[tuple[str, str], list[int]] = {}
        for i in chosen:
            msg = self.items[i].message
            shares.setdefault((msg.site, msg.device), []).append(i)
        for key, share in shares.items():
            whole = self.batch.devices[key]
            out.devices[key] = whole if len(share) == whole.count else self._share(share, raw)
        return out

    def _share(self, share: list[int], raw: dict[int, RawMessage]) -> DeviceSeen:
        first = self.items[share[0]]
        seen = DeviceSeen(first.message.site, first.message.device, first.received_at,
                          first.received_at)
        for i in share:
            item, msg = self.items[i], self.items[i].message
            seen.last = max(seen.last, item.received_at)
            seen.count += 1
            if isinstance(msg, wire.Metrics):
                row = raw.get(i)
                if row is not None and row.seq is not None:  # None: a duplicate, not stored
                    seen.last_seq = max(row.seq, seen.last_seq or row.seq)
                    seen.agent = msg.agent
            elif isinstance(msg, wire.Status):
                seen.status, seen.status_cause = msg.state, msg.cause
                seen.status_at = msg.ts if msg.ts is not None else item.received_at
            elif isinstance(msg, wire.Inventory):
                seen.inventory = dict(msg.facts)
        return seen

    def letter(self, unit: int, exc: BaseException, now: float) -> dict[str, Any]:
        n = len(self.items)
        if unit < n:
            return message_letter(self.items[unit], exc, now)
        return change_letter(self.batch.changes[unit - n], exc, now)
