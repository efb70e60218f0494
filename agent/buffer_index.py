"""The outage buffer's state in memory, rebuilt from the log at start and kept by applying each
record the buffer appends: which messages are queued and where (an index of a few dozen bytes
per message: payloads stay on disk), sequence numbers and drop counters.

Reading is side-effect free, so `State.load` also serves `snapshot` (tests, diagnostics) on a
directory another process is writing.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from fieldwatch.agent.buffer_log import (
    Ack,
    Checkpoint,
    Drop,
    Message,
    Record,
    Reported,
    Run,
    runs,
    scan,
)

Key = tuple[str, str]  # site, device


@dataclass(frozen=True, slots=True)
class Snapshot:
    count: int  # messages queued
    seqs: dict[Key, int]  # last sequence number per device


def snapshot(path: Path) -> Snapshot:
    """What a buffer directory holds, read without writing anything, so also while an agent
    uses it (a segment deleted meanwhile: read again). For tests and diagnostics."""
    for _ in range(20):
        try:
            st = State.load(path)
        except FileNotFoundError:
            continue
        st.close()
        return Snapshot(st.count, dict(st.seqs))
    raise RuntimeError(f"{path} kept changing while being read")


class Segment:
    """One log file `<first id>.log` and the index of the messages in it, in id order."""

    def __init__(self, name: int, path: Path) -> None:
        self.name, self.path = name, path
        self.file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.size = os.fstat(self.file.fileno()).st_size
        self.head_len = 0  # the checkpoint frame at its start
        self.ids, self.offs, self.lens = array("q"), array("q"), array("I")
        self.plens, self.created, self.keys = array("I"), array("d"), array("I")
        self.live = bytearray()
        self.nlive = 0
        self._first = 0  # no live entry before this index

    def index(self, msg: Message, off: int, length: int, key: int) -> None:
        self.ids.append(msg.id)
        self.offs.append(off)
        self.lens.append(length)
        self.plens.append(len(msg.payload))
        self.created.append(msg.created)
        self.keys.append(key)
        self.live.append(1)
        self.nlive += 1

    def live_at(self, start: int = 0) -> Iterator[int]:
        for i in range(max(start, self._first), len(self.ids)):
            if self.live[i]:
                yield i

    def span(self, lo: int, hi: int) -> range:
        return range(bisect_left(self.ids, lo), bisect_right(self.ids, hi))

    def kill(self, i: int) -> None:
        self.live[i] = 0
        self.nlive -= 1
        while self._first < len(self.live) and not self.live[self._first]:
            self._first += 1

    def read(self, i: int) -> bytes:
        self.file.seek(self.offs[i])
        return self.file.read(self.lens[i])

    def scan(self) -> Generator[tuple[int, int, Record], None, None]:
        with open(self.path, "rb", buffering=1 << 16) as f:
            yield from scan(f, self.size)

    def reopen(self, keep: list[int]) -> None:
        """The file was rewritten with its checkpoint and the entries `keep` alone."""
        self.file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.size, self._first = os.fstat(self.file.fileno()).st_size, 0
        off = self.head_len
        offs = []
        for i in keep:
            offs.append(off)
            off += self.lens[i]
        for name in ("ids", "lens", "plens", "created", "keys"):
            old = getattr(self, name)
            setattr(self, name, array(old.typecode, (old[i] for i in keep)))
        self.offs, self.live, self.nlive = array("q", offs), bytearray(b"\1" * len(keep)), len(keep)

    def close(self) -> None:
        self.file.close()


class State:
    """What is queued, and the durable counters. Callers hold the buffer's lock."""

    def __init__(self) -> None:
        self.segs: list[Segment] = []
        self.names: list[int] = []  # segs' names, for bisect
        self.last_id = 0
        self.seqs: dict[Key, int] = {}
        self.drops: dict[tuple[str, str, str], list[int]] = {}  # -> [total, unreported]
        self.keys: list[Key] = []
        self._key_no: dict[Key, int] = {}
        self.count = self.bytes = 0
        self.bad: list[Path] = []  # newest files without a checkpoint (corrupt)
        self.torn = 0  # bytes after the newest segment's last intact record

    # -- replay ------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path) -> State:
        st = cls()
        found = sorted((int(p.stem), p) for p in directory.glob("*.log") if p.stem.isdigit())
        segs: list[Segment] = []
        try:
            for name, path in found:
                segs.append(Segment(name, path))
            st._replay(segs)
        except BaseException:
            for seg in segs:
                seg.close()
            raise
        return st

    def _replay(self, segs: list[Segment]) -> None:
        ckpt = None
        while segs and (ckpt := self._checkpoint_of(segs[-1])) is None:
            self.bad.append(segs.pop().path)  # only corruption can leave one without
        if ckpt is None:
            return
        self._restore(ckpt)
        queued = _Runs(ckpt.live)
        for seg in segs[:-1]:  # only their queued messages matter
            self.add_segment(seg)
            for off, length, rec in seg.scan():
                if off == 0 and isinstance(rec, Checkpoint):
                    seg.head_len = length
                elif isinstance(rec, Message) and rec.id in queued:
                    self.index(rec, seg, off, length)
        newest = segs[-1]
        self.add_segment(newest)
        end = newest.head_len
        for off, length, rec in newest.scan():
            if off:
                self.apply(rec, newest, off, length)
            end = off + length
        self.torn = newest.size - end

    def _checkpoint_of(self, seg: Segment) -> Checkpoint | None:
        records = seg.scan()
        first = next(records, None)
        records.close()
        if first is None or not isinstance(first[2], Checkpoint):
            seg.close()
            return None
        seg.head_len = first[1]
        return first[2]

    def _restore(self, ckpt: Checkpoint) -> None:
        self.last_id = ckpt.last_id
        self.seqs = {(s, d): n for s, d, n in ckpt.seqs}
        self.drops = {(s, d, r): [t, u] for s, d, r, t, u in ckpt.drops}

    def checkpoint(self) -> Checkpoint:
        live = [seg.ids[i] for seg in self.segs for i in seg.live_at()]
        return Checkpoint(self.last_id, [(s, d, n) for (s, d), n in self.seqs.items()],
                          [(s, d, r, t, u) for (s, d, r), (t, u) in self.drops.items()],
                          runs(live))

    # -- changes: one per record -------------------------------------------------------------

    def apply(self, rec: Record, seg: Segment | None, off: int, length: int) -> None:
        """`rec` was appended to `seg` at `off` (seg None: kept in memory only)."""
        if isinstance(rec, Message) and seg is not None and rec.id > self.last_id:
            self.last_id = rec.id
            if rec.seq:
                key = (rec.site, rec.device)
                self.seqs[key] = max(rec.seq, self.seqs.get(key, 0))
            self.index(rec, seg, off, length)
        elif isinstance(rec, Ack):
            self.kill(rec.runs)
        elif isinstance(rec, Drop):
            self.kill(rec.runs)
            for site, device, n in rec.counts:
                counter = self.drops.setdefault((site, device, rec.reason), [0, 0])
                counter[0] += n
                counter[1] += n
            for site, device, seq in rec.spent:
                self.seqs[(site, device)] = max(seq, self.seqs.get((site, device), 0))
        elif isinstance(rec, Reported):
            reported = self.drops.get((rec.site, rec.device, rec.reason))
            if reported is not None:
                reported[1] = max(0, reported[1] - rec.count)

    def index(self, msg: Message, seg: Segment, off: int, length: int) -> None:
        if seg.ids and msg.id <= seg.ids[-1]:
            return  # out of order: never written so; not ours
        seg.index(msg, off, length, self.key(msg.site, msg.device))
        self.count += 1
        self.bytes += len(msg.payload)

    def kill(self, ranges: list[Run]) -> None:
        for lo, hi in ranges:
            first = max(0, bisect_right(self.names, lo) - 1)
            for seg in self.segs[first:bisect_right(self.names, hi)]:
                for i in seg.span(lo, hi):
                    if seg.live[i]:
                        seg.kill(i)
                        self.count -= 1
                        self.bytes -= seg.plens[i]

    # -- lookups -----------------------------------------------------------------------------

    def key(self, site: str, device: str) -> int:
        no = self._key_no.get((site, device))
        if no is None:
            no = self._key_no[(site, device)] = len(self.keys)
            self.keys.append((site, device))
        return no

    def live_after(self, after: int) -> Iterator[tuple[Segment, int]]:
        """Queued messages with ids above `after`, oldest first."""
        for seg in self.segs[max(0, bisect_right(self.names, after) - 1):]:
            for i in seg.live_at(bisect_right(seg.ids, after)):
                yield seg, i

    def add_segment(self, seg: Segment) -> None:
        self.segs.append(seg)
        self.names.append(seg.name)

    def remove_segment(self, seg: Segment) -> None:
        k = self.segs.index(seg)
        del self.segs[k], self.names[k]
        seg.close()

    def close(self) -> None:
        for seg in self.segs:
            seg.close()
        self.segs, self.names = [], []


class _Runs:
    """Membership in sorted runs."""

    def __init__(self, ranges: list[Run]) -> None:
        self.los, self.his = [lo for lo, _ in ranges], [hi for _, hi in ranges]

    def __contains__(self, i: int) -> bool:
        k = bisect_right(self.los, i) - 1
        return k >= 0 and i <= self.his[k]
