"""The duplicate window of one device: the last 256 (seq, ts) pairs it sent, in 16 bytes each.

A QoS 1 redelivery or a replayed backlog repeats a message the rules already judged; the same
seq with the same time is such a repeat (a restarted sender reusing seqs sends other times).
This used to be a dict seq → ts capped at 256 entries (a dict slot, an int and a float object
each): every device grew to some 15 KB by its 256th message, and up to 33 KB as the dict
resized after evictions — the soak's slow creep (issue 18). Here the pairs sit in two typed
arrays used as a ring, with the same decisions as that dict: a pair is a duplicate iff the
dict would have held it, and a seq seen again with another time keeps its place, as a dict
key does.

A metrics window (`whole=True`) takes its 256 slots (4 KB) at the device's first message, so
a device's memory is flat from then on; an event window grows as events come.

Lookup is O(1) for the usual seq above every seq held (`hi`); below it (a redelivery, a sender
that restarted its count) one scan of at most 256 machine words. A seq outside 64 bits (the
wire refuses them; `rules test` may not) is never remembered and never a duplicate.
"""

from __future__ import annotations

from array import array

CAP = 256
_LO, _HI = -(2**63), 2**63 - 1
_ZEROS_Q = array("q", bytes(8 * CAP))
_ZEROS_D = array("d", bytes(8 * CAP))


class Recent:
    __slots__ = ("seqs", "ts", "n", "next", "hi", "whole")

    def __init__(self, whole: bool = False) -> None:
        self.seqs = array("q")
        self.ts = array("d")
        self.n = 0  # pairs held: the first n slots
        self.next = 0  # the oldest slot once the ring is full
        self.hi: int | None = None  # the highest seq held (None: empty)
        self.whole = whole  # take all CAP slots at the first pair: flat memory from then on

    def __len__(self) -> int:
        return self.n

    def held(self) -> list[tuple[int, float]]:
        """The pairs held, oldest first."""
        n, k = self.n, self.next
        order = list(range(k, n)) + list(range(k))
        return [(self.seqs[i], self.ts[i]) for i in order]

    def seen(self, seq: int, ts: float) -> bool:
        """True if (seq, ts) is held (a duplicate); otherwise remember it and return False."""
        if seq < _LO or seq > _HI:  # outside 64 bits: never held, never remembered
            return False
        hi = self.hi
        n = self.n
        if hi is not None and seq <= hi:
            try:
                i = self.seqs.index(seq, 0, n)
            except ValueError:
                pass
            else:
                if self.ts[i] == ts:
                    return True
                self.ts[i] = ts  # the dict's `recent[seq] = ts`: same place, new time
                return False
        seqs = self.seqs
        if n < CAP:
            if n == len(seqs):
                if self.whole:
                    seqs.extend(_ZEROS_Q)
                    self.ts.extend(_ZEROS_D)
                else:
                    seqs.append(0)
                    self.ts.append(0.0)
            seqs[n] = seq
            self.ts[n] = ts
            self.n = n + 1
        else:
            k = self.next
            gone = seqs[k]
            seqs[k] = seq
            self.ts[k] = ts
            self.next = (k + 1) % CAP
            if gone == hi and seq < gone:  # the highest left: find the next (rare: restarts)
                self.hi = max(seqs)
                return False
        if hi is None or seq > hi:
            self.hi = seq
        return False
