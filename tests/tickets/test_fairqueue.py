"""The ingest queue serves devices in turn and keeps each device's order."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import pytest
from fieldwatch.collector.ingest.fairqueue import FairQueue
from hypothesis import given, settings
from hypothesis import strategies as st


@dataclass
class Msg:
    site: str
    device: str
    seq: int


@dataclass
class Item:
    message: Msg


def item(device: str, seq: int) -> Item:
    return Item(Msg("s", device, seq))


def drain(q: FairQueue[Item]) -> list[tuple[str, int]]:
    out = []
    while q.qsize():
        i = q.get_nowait()
        out.append((i.message.device, i.message.seq))
    return out


def test_a_storm_does_not_hold_back_a_quiet_device() -> None:
    q: FairQueue[Item] = FairQueue()
    for s in range(1000):
        q.put(item("storm", s))
    q.put(item("quiet", 1))
    first = drain(q)[:3]
    assert first == [("storm", 0), ("quiet", 1), ("storm", 1)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=60))
def test_each_device_keeps_its_order_and_nothing_is_lost(devices: list[str]) -> None:
    q: FairQueue[Item] = FairQueue()
    for n, d in enumerate(devices):
        q.put(item(d, n))
    got = drain(q)
    assert sorted(got, key=lambda x: x[1]) == [(d, n) for n, d in enumerate(devices)]
    for d in set(devices):
        seqs = [n for dev, n in got if dev == d]
        assert seqs == sorted(seqs)


def test_bounded_put_blocks_and_get_times_out() -> None:
    q: FairQueue[Item] = FairQueue(maxsize=2)
    q.put(item("a", 1))
    q.put(item("b", 1))
    with pytest.raises(queue.Full):
        q.put_nowait(item("a", 2))
    with pytest.raises(queue.Full):
        q.put(item("a", 2), timeout=0.01)
    done = threading.Event()

    def producer() -> None:
        q.put(item("a", 2))  # blocks until the consumer makes room
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert q.get(timeout=1).message.device == "a"
    t.join(5)
    assert done.is_set() and q.qsize() == 2
    drain(q)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get_nowait()
