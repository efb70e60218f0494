"""The ingest queue in bytes (issue 18): bounded by what its items hold, compact while queued
(the payload, decoded again as the worker takes it), and it tells how old its oldest item is."""

from __future__ import annotations

import gc
import queue
import threading
import tracemalloc

import pytest
from fieldwatch.collector.ingest.decode import (
    PACKED_OVERHEAD,
    Received,
    decode_received,
    pack,
    packed_size,
    unpack,
)
from fieldwatch.collector.ingest.fairqueue import FairQueue

from fieldwatch import wire


def received(device: str, seq: int, at: float = 100.0, samples: int = 50) -> Received:
    msg = wire.Metrics(device=device, site="s", seq=seq, ts=1_800_000_000.0,
                       samples=[wire.Sample(f"m{i}", float(i), {"unit": "1"})
                                for i in range(samples)])
    payload = bytes(bytearray(wire.encode(msg)))  # exact size, as read from a socket
    return Received(decode_received(wire.topic("s", device, "metrics"), payload, 1 << 20),
                    payload, at, ack=lambda: None)


def packed_queue(**kw: int) -> FairQueue[Received]:
    return FairQueue(size=packed_size, pack=pack, unpack=unpack, **kw)


def test_an_item_comes_out_as_it_went_in() -> None:
    q = packed_queue()
    item = received("a", 7)
    q.put(item)
    out = q.get_nowait()
    assert out == item  # same message, payload, time of arrival and ack


def test_the_bytes_bound_blocks_and_always_lets_one_in() -> None:
    one = packed_size(pack(received("a", 1)))
    q = packed_queue(max_bytes=2 * one + 10)
    q.put(received("a", 1))
    q.put(received("b", 1))
    assert q.nbytes() == 2 * one
    with pytest.raises(queue.Full):
        q.put(received("c", 1), timeout=0.01)
    put = threading.Thread(target=q.put, args=(received("c", 1),))
    put.start()
    assert q.get(timeout=1).message.device == "a"
    put.join(5)
    assert not put.is_alive() and q.qsize() == 2
    while q.qsize():
        q.get_nowait()
    assert q.nbytes() == 0
    small = packed_queue(max_bytes=10)  # one item bigger than the bound still gets in
    small.put(received("a", 1))
    assert small.qsize() == 1


def test_oldest_is_the_earliest_received_of_all_lanes() -> None:
    q = packed_queue()
    assert q.oldest() is None
    q.put(received("a", 1, at=105.0))
    q.put(received("a", 2, at=106.0))
    q.put(received("b", 1, at=101.0))
    assert q.oldest() == 101.0
    assert q.get_nowait().message.device == "a"
    assert q.oldest() == 101.0
    q.get_nowait()
    assert q.oldest() == 106.0


def test_a_queued_message_holds_about_its_payload() -> None:
    """The figure docs/operations.md gives: a 50-sample metrics message (3 KB) holds about
    19 KB decoded; queued, about its payload plus PACKED_OVERHEAD."""
    payload = len(received("d", 1).payload)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoded = [received(f"d{i % 10}", i) for i in range(300)]  # 10 devices' lanes
        held = (tracemalloc.get_traced_memory()[0] - before) / len(decoded)
        q = packed_queue()
        for item in decoded:
            q.put(item)
        del item
        decoded.clear()  # only the queue holds them now
        gc.collect()
        per_item = (tracemalloc.get_traced_memory()[0] - before) / q.qsize()
    finally:
        tracemalloc.stop()
    assert held > 4 * payload
    assert payload < per_item < payload + PACKED_OVERHEAD


def test_memory_is_given_back_when_a_backlog_has_drained() -> None:
    from fieldwatch.collector.ingest.memory import Trimmer, give_back

    now = [0.0]
    calls: list[float] = []
    trim = Trimmer(after_messages=100, every=60.0, monotonic=lambda: now[0],
                   release=lambda: calls.append(now[0]) or True)
    assert not trim.stored(80, queue_empty=False)  # a backlog still draining
    assert not trim.stored(10, queue_empty=True)  # drained, but small and recent
    assert trim.stored(20, queue_empty=True)  # 110 stored since: give back
    now[0] = 30.0
    assert not trim.stored(5, queue_empty=True)
    now[0] = 61.0
    assert trim.stored(1, queue_empty=True)  # a minute with some stored
    now[0] = 200.0
    assert not trim.stored(0, queue_empty=True)  # nothing stored: nothing to give back
    assert calls == [0.0, 61.0]
    assert give_back() in (True, False)  # the real call works here (glibc) or is a no-op
