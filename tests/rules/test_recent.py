"""The compact duplicate window decides exactly as the dict it replaced (seq → ts, 256 entries,
oldest inserted evicted first), in bounded memory."""

from __future__ import annotations

import tracemalloc

from fieldwatch.collector.rules.recent import CAP, Recent
from hypothesis import given, settings
from hypothesis import strategies as st


class Reference:
    """The engine's former window, verbatim."""

    def __init__(self) -> None:
        self.recent: dict[int, float] = {}

    def seen(self, seq: int, ts: float) -> bool:
        recent = self.recent
        if recent.get(seq) == ts:
            return True
        recent[seq] = ts
        if len(recent) > 256:
            del recent[next(iter(recent))]
        return False


SEQ64 = st.integers(-(2**63), 2**63 - 1)
# Few distinct values so repeats, time changes and evictions all happen often.
SMALL = st.integers(0, 300)
EDGES = st.sampled_from([-(2**63), -1, 0, 2**63 - 2, 2**63 - 1])
TS = st.sampled_from([0.0, 1.0, 1.5, 1e9, float("nan"), float("inf")]) | st.floats()
PAIRS = st.lists(st.tuples(SMALL | EDGES | SEQ64, TS), max_size=2000)


def comparable(pairs: list[tuple[int, float]]) -> list[tuple[int, str]]:
    return [(seq, repr(float(ts))) for seq, ts in pairs]


@settings(max_examples=300, deadline=None)
@given(PAIRS, st.booleans())
def test_same_decisions_as_the_dict_with_eviction(pairs: list[tuple[int, float]],
                                                  whole: bool) -> None:
    ring, ref = Recent(whole), Reference()
    for seq, ts in pairs:
        assert ring.seen(seq, ts) == ref.seen(seq, ts), (seq, ts)
    assert len(ring) == len(ref.recent)
    assert comparable(ring.held()) == comparable(list(ref.recent.items()))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.sampled_from([1.0, 2.0])), max_size=1500),
       st.integers(0, 2000))
def test_a_restarted_count_after_a_long_run(pairs: list[tuple[int, float]], start: int) -> None:
    """Rising seqs, then a sender that starts over from a lower one, then repeats."""
    ring, ref = Recent(whole=True), Reference()
    for seq, ts in [(s, 1.0) for s in range(start, start + 400)] + pairs:
        assert ring.seen(seq, ts) == ref.seen(seq, ts), (seq, ts)
    assert comparable(ring.held()) == comparable(list(ref.recent.items()))


@given(st.integers(2**63, 2**80) | st.integers(-(2**80), -(2**63) - 1), st.floats())
def test_seqs_outside_64_bits_are_ignored(seq: int, ts: float) -> None:
    ring = Recent()
    assert ring.seen(5, 1.0) is False
    assert ring.seen(seq, ts) is False
    assert ring.seen(seq, ts) is False  # never remembered, so never a duplicate
    assert len(ring) == 1 and ring.seen(5, 1.0) is True


@given(st.integers(2**63, 2**80) | st.integers(-(2**80), -(2**63) - 1), st.booleans())
def test_a_first_seq_outside_64_bits_is_ignored(seq: int, whole: bool) -> None:
    ring = Recent(whole=whole)  # nothing held yet: it must not reach the typed array
    assert ring.seen(seq, 1.0) is False and ring.seen(seq, 1.0) is False
    assert len(ring) == 0


def traced(fill: int) -> float:
    """Bytes per window of 1,000 windows after `fill` rising pairs each."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        rings = [Recent(whole=True) for _ in range(1000)]
        for ring in rings:
            for seq in range(fill):
                ring.seen(seq, 1.7e9 + seq)
        return (tracemalloc.get_traced_memory()[0] - base) / 1000
    finally:
        tracemalloc.stop()


def test_memory_is_16_bytes_a_slot_and_flat_after_the_first_pair() -> None:
    """Under 5 KB a device (the dict took 15-33 KB), about the same after 1 pair as after 600."""
    one, full, more = traced(1), traced(CAP), traced(600)
    # (the one int object `hi` may differ: up to 32 bytes)
    assert one < 5000 and max(full, more) - one <= 32, (one, full, more)
