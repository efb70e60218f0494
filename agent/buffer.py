"""The outage buffer: a durable FIFO of MQTT messages, bounded by size and age, kept as an
append-only log of segment files in one directory. This module decides what is written and
dropped; `buffer_log` is the record format, `buffer_journal` the files, `buffer_index` the state
rebuilt from them at start (and kept current by applying each record as it is written).

Every message the agent sends goes through here: it is written first, handed to MQTT, and
forgotten only once the broker acknowledged it (QoS 1 PUBACK). A broker outage, an agent restart
or `kill -9` therefore loses nothing that fitted in the bound; after reconnecting, the backlog
goes out in its original order with its original sequence numbers and timestamps.

Why a log and not SQLite: importing and using sqlite3 costs ~1.5 MB of the agent's 30 MB RSS
budget. A queue that is only appended to, and deleted a whole segment at a time, needs none of
it. In memory: an index of ~40 bytes per queued message; payloads are read from disk to be sent.

Durability: each record goes out in one os.write and is fsynced before the call returns (at one
message per device and interval that costs nothing; a replay acknowledges in batches). A torn
last record (kill -9, power loss) fails its CRC, is ignored, and cut off at the next start.

Bounds: the segment files never total more than `max_bytes`. Space comes back only by deleting a
whole segment (~max_bytes/8), so when a write would not fit, the oldest segment's messages that
are not in MQTT's hands are dropped and the file deleted, or rewritten with the ones that are. A
full disk lowers the bound for that write. `max_age` drops messages older than that. Drops are
counted per device and reason, and reported once the link is back. A message the broker refused
(MQTT 5, e.g. its ACL) stays queued for a later try, but no longer counts as in MQTT's hands
(`released`): the bounds drop it like one never sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from fieldwatch.agent.buffer_index import Segment, Snapshot, snapshot
from fieldwatch.agent.buffer_journal import DiskFull, Journal
from fieldwatch.agent.buffer_log import (
    Ack,
    Drop,
    Message,
    Record,
    RecordError,
    Reported,
    frame,
    runs,
    unframe,
)

from fieldwatch.clock import Clock

__all__ = ["Drops", "Entry", "Outbox", "Snapshot", "snapshot"]

log = logging.getLogger(__name__)

Payload = bytes  # (the name `bytes` is taken in Outbox: payload bytes queued)


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Drops:
    site: str
    device: str
    reason: str  # "size" or "age" ("corrupt": unreadable on disk)
    count: int


class Outbox:
    """Thread-safe: the poll thread adds, the sender thread reads and deletes."""

    def __init__(self, path: Path, clock: Clock, max_bytes: int = 64 << 20,
                 max_age: float = 7 * 86400.0) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path, self.clock, self.max_bytes, self.max_age = path, clock, max_bytes, max_age
        self.protect_upto = 0  # ids up to here are in MQTT's hands: delivered on reconnect
        # ... except these: the broker refused them (publisher.py keeps them for a later try),
        # so the bounds may drop them like any message not yet sent
        self.released: frozenset[int] = frozenset()
        self._lock = threading.Lock()
        self._j = Journal(path, max_bytes, segment_size=max(max_bytes // 8, 4096))
        self._st = self._j.st

    @property
    def count(self) -> int:
        """Messages queued."""
        return self._st.count

    @property
    def bytes(self) -> int:
        """Payload bytes queued."""
        return self._st.bytes

    # -- writing ----------------------------------------------------------------------------

    def add(self, site: str, device: str, topic: str, payload: Payload,
            retain: bool = False) -> None:
        self._write(site, device, topic, lambda _seq: payload, retain, numbered=False)

    def add_numbered(self, site: str, device: str, topic: str, build: Callable[[int], Payload],
                     retain: bool = False) -> int:
        """Take the device's next sequence number and queue `build(seq)` in one record, so a
        crash can neither reuse a number nor leave a hole that was never sent."""
        return self._write(site, device, topic, build, retain, numbered=True)

    def _write(self, site: str, device: str, topic: str, build: Callable[[int], Payload],
               retain: bool, numbered: bool) -> int:
        now = self.clock.now()
        with self._lock:
            self._j.limit = self.max_bytes  # a full disk lowered it for one write only
            self._expire(now)
            seq = self._st.seqs.get((site, device), 0) + 1 if numbered else 0
            msg = Message(self._st.last_id + 1, site, device, topic, retain, now, seq,
                          build(seq))
            if not self._append(msg):
                # Nothing left to drop and it still does not fit: this message is the drop. Its
                # sequence number is spent all the same, so the collector sees the gap.
                spent = [(site, device, seq)] if numbered else []
                self._record(Drop("size", [], [(site, device, 1)], spent))
            return seq

    def _append(self, msg: Message) -> bool:
        data = frame(msg)

        def need() -> int:
            return len(data) + self._j.rotation_cost(len(data)) + self._reserve()

        for _ in range(3):  # a full disk lowers the limit: try again below it
            try:
                if not self._room(need):
                    return False
                if self._j.should_rotate(len(data)) and not self._j.rotate():
                    return False
                return self._j.put(msg, data)
            except DiskFull:
                continue
        return False

    def _record(self, rec: Record) -> None:
        """Append a bookkeeping record, making room as for a message. Failing that (a full
        disk), the change is kept in memory only: a restart may repeat a send or a report."""
        data = frame(rec)
        try:
            if self._room(lambda: len(data)) and self._j.put(rec, data):
                return
        except DiskFull:
            pass
        log.warning("outage buffer: no room to record %s; kept in memory only",
                    type(rec).__name__)
        self._st.apply(rec, None, 0, 0)

    # -- bounds -----------------------------------------------------------------------------

    def _droppable(self, seg: Segment, i: int) -> bool:
        """Not in MQTT's hands: never handed over, or handed back by a refusing broker."""
        return seg.ids[i] > self.protect_upto or seg.ids[i] in self.released

    def _reserve(self) -> int:
        """Room a message leaves free for what dropping may have to write before it frees
        anything: a drop record, a checkpoint, acknowledgements."""
        return 2 * self._j.ckpt_len + 1024 + self._j.segment_size // 16

    def _room(self, need: Callable[[], int]) -> bool:
        """Make `need()` more bytes fit the bound, dropping a segment at a time."""
        for _ in range(2 * len(self._st.segs) + 4):  # each step frees, drops or rotates once
            if self._j.total + need() <= self._j.limit:
                return True
            if not self._free_one():
                return False
        return self._j.total + need() <= self._j.limit

    def _free_one(self) -> bool:
        """One step, oldest first: drop a segment's messages not in MQTT's hands (deleting it,
        or rewriting it with the ones that are), or start a new segment so that the active one
        can be dropped next. False: nothing left to drop."""
        passed: list[Segment] = []  # older segments holding only messages in MQTT's hands
        for seg in self._st.segs[:-1]:
            if self._drop_segment(seg):
                for older in passed:  # rewriting takes room, which there is just now
                    self._j.compact(older)
                return True
            passed.append(seg)
        newest = self._st.segs[-1]
        if any(self._droppable(newest, i) for i in newest.live_at()):
            return self._j.rotate()
        return False

    def _drop_segment(self, seg: Segment) -> bool:
        """Drop the messages of `seg` not in MQTT's hands; delete it if that was all of them."""
        rec = self._drop_record("size", ((seg, i) for i in seg.live_at()), self._droppable)
        if rec is None or not self._j.put(rec, frame(rec)):
            return False
        if seg.nlive == 0:
            self._j.reap()
        else:
            self._j.compact(seg)
        return True

    def _drop_record(self, reason: str, live: Iterable[tuple[Segment, int]],
                     pick: Callable[[Segment, int], bool]) -> Drop | None:
        """A drop of the picked messages among `live` (queued ones, in id order): each run
        spans picked messages only, so it removes exactly those."""
        ranges: list[list[int]] = []
        per: dict[int, int] = {}
        extend = False
        for seg, i in live:
            if not pick(seg, i):
                extend = False
                continue
            if extend:
                ranges[-1][1] = seg.ids[i]
            else:
                ranges.append([seg.ids[i], seg.ids[i]])
            extend = True
            per[seg.keys[i]] = per.get(seg.keys[i], 0) + 1
        if not ranges:
            return None
        keys = self._st.keys
        return Drop(reason, [(lo, hi) for lo, hi in ranges],
                    [(keys[k][0], keys[k][1], n) for k, n in per.items()])

    def _expire(self, now: float) -> None:
        cutoff = now - self.max_age
        start = min(self.protect_upto, min(self.released) - 1) if self.released \
            else self.protect_upto
        first = next((x for x in self._st.live_after(start) if self._droppable(*x)), None)
        if first is None or first[0].created[first[1]] >= cutoff:
            return
        rec = self._drop_record("age", self._st.live_after(start),
                                lambda s, i: self._droppable(s, i) and s.created[i] < cutoff)
        try:
            if rec is not None and self._j.put(rec, frame(rec)):
                self._j.reap()
        except DiskFull:
            pass  # the size bound drops them instead

    # -- reading, acknowledging -------------------------------------------------------------

    def peek(self, after: int, limit: int) -> list[Entry]:
        """The next `limit` messages after id `after`, oldest first."""
        out: list[Entry] = []
        with self._lock:
            bad = []
            for seg, i in islice(self._st.live_after(after), limit):
                try:
                    msg = unframe(seg.read(i))
                except RecordError:
                    msg = None
                if not isinstance(msg, Message) or msg.id != seg.ids[i]:
                    bad.append(seg.ids[i])
                    continue
                out.append(Entry(msg.id, msg.topic, msg.payload, msg.retain))
            if bad:
                self._drop_unreadable(bad)
        return out

    def _drop_unreadable(self, ids: list[int]) -> None:
        log.error("outage buffer: %d queued messages unreadable on disk; dropped", len(ids))
        unreadable = set(ids)
        rec = self._drop_record("corrupt", self._st.live_after(ids[0] - 1),
                                lambda s, i: s.ids[i] in unreadable)
        if rec is not None:
            self._record(rec)
            self._j.reap()

    def delete(self, ids: list[int]) -> None:
        """Forget messages the broker acknowledged."""
        if not ids:
            return
        with self._lock:
            self._record(Ack(runs(sorted(set(ids)))))
            self._j.reap()

    def drops_total(self) -> dict[str, int]:
        """Messages dropped since the buffer was created, by reason (for agent.* samples)."""
        out: dict[str, int] = {}
        with self._lock:
            for (_site, _device, reason), (total, _unreported) in self._st.drops.items():
                out[reason] = out.get(reason, 0) + total
        return out

    def report_drops(self, report: Callable[[Drops], tuple[str, Payload]]) -> list[Drops]:
        """Queue one report per device and reason with unreported drops (`report` gives the
        topic and payload) and mark them reported; a crash in between can repeat a report,
        never lose one."""
        with self._lock:
            rows = [Drops(site, device, reason, unreported)
                    for (site, device, reason), (_total, unreported) in self._st.drops.items()
                    if unreported > 0]
        for d in rows:
            topic, payload = report(d)
            self.add(d.site, d.device, topic, payload)
            with self._lock:
                self._record(Reported(d.site, d.device, d.reason, d.count))
        return rows

    def close(self) -> None:
        with self._lock:
            self._j.close()

