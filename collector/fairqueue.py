"""The ingest queue, fair across devices: a storm from a few devices cannot delay the rest.

A plain FIFO puts a quiet device's sample behind every storm message queued before it, so its
delay grows with the storm. Here each device has its own FIFO and `get` serves devices in turn:
a quiet device's message goes into the next batch the worker takes. Per-device order (what the
rule engine's sequence and time checks need) is kept; the total is bounded, and a full queue
blocks `put` (backpressure to the broker, as with `queue.Queue`). Drop-in for the two
`queue.Queue` methods the worker uses and the one the ingest uses.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


def device_key(item: object) -> Hashable:
    msg = getattr(item, "message", None)
    return (getattr(msg, "site", None), getattr(msg, "device", None))


class FairQueue(Generic[T]):
    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._lanes: OrderedDict[Hashable, deque[T]] = OrderedDict()  # turn order
        self._n = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def qsize(self) -> int:
        return self._n

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        with self._not_full:
            if self.maxsize > 0:
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._n >= self.maxsize:
                    if not block:
                        raise queue.Full
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise queue.Full
                    self._not_full.wait(left)
            key = device_key(item)
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = deque()
            lane.append(item)
            self._n += 1
            self._not_empty.notify()

    def put_nowait(self, item: T) -> None:
        self.put(item, block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        with self._not_empty:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._n == 0:
                if not block:
                    raise queue.Empty
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue.Empty
                self._not_empty.wait(left)
            key, lane = next(iter(self._lanes.items()))
            item = lane.popleft()
            if lane:
                self._lanes.move_to_end(key)  # its next message waits for everyone's turn
            else:
                del self._lanes[key]
            self._n -= 1
            self._not_full.notify()
            return item

    def get_nowait(self) -> T:
        return self.get(block=False)
