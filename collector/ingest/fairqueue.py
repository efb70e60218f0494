"""The ingest queue, fair across devices: a storm from a few devices cannot delay the rest.

A plain FIFO puts a quiet device's sample behind every storm message queued before it, so its
delay grows with the storm. Here each device has its own FIFO and `get` serves devices in turn:
a quiet device's message goes into the next batch the worker takes. Per-device order (what the
rule engine's sequence and time checks need) is kept; the total is bounded, and a full queue
blocks `put` (backpressure to the broker, as with `queue.Queue`). Drop-in for the
`queue.Queue` methods the worker and the ingest use.

Bounded in items and in bytes (issue 18): `size(item)` is what an item holds while queued, and
`put` waits while the bytes queued would pass `max_bytes` (one item is always let in, however
big, or a lone giant would block forever). `pack` and `unpack` let the collector keep a compact
form while queued and rebuild the full item as the worker takes it (ingest/decode.py: the raw
payload instead of its decoded message, about six times smaller). `oldest()` is when the
oldest queued item was received, for /healthz and the oldest-unstored gauge.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def device_key(item: object) -> Hashable:
    msg = getattr(item, "message", item)  # a Received, or a packed item with site and device
    return (getattr(msg, "site", None), getattr(msg, "device", None))


class FairQueue(Generic[T]):
    def __init__(self, maxsize: int = 0, max_bytes: int = 0,
                 size: Callable[[Any], int] | None = None,
                 pack: Callable[[T], Any] | None = None,
                 unpack: Callable[[Any], T] | None = None) -> None:
        self.maxsize, self.max_bytes = maxsize, max_bytes
        self._size = size or (lambda item: 0)
        self.pack, self.unpack = pack, unpack
        self._lanes: OrderedDict[Hashable, deque[tuple[Any, int]]] = OrderedDict()  # turn order
        self._n = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def qsize(self) -> int:
        return self._n

    def nbytes(self) -> int:
        """What the queued items hold, as `size` counts it."""
        return self._bytes

    def oldest(self) -> float | None:
        """The earliest `received_at` among queued items (None: empty). Each device's lane is
        in arrival order, so it is the earliest of the lanes' heads."""
        with self._lock:
            return min((getattr(lane[0][0], "received_at", 0.0) for lane in
                        self._lanes.values()), default=None)

    def _full(self, size: int) -> bool:
        if self.maxsize > 0 and self._n >= self.maxsize:
            return True
        return self.max_bytes > 0 and self._n > 0 and self._bytes + size > self.max_bytes

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        packed = self.pack(item) if self.pack is not None else item
        size = self._size(packed)
        with self._not_full:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._full(size):
                if not block:
                    raise queue.Full
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue.Full
                self._not_full.wait(left)
            key = device_key(packed)
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = deque()
            lane.append((packed, size))
            self._n += 1
            self._bytes += size
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
            packed, size = lane.popleft()
            if lane:
                self._lanes.move_to_end(key)  # its next message waits for everyone's turn
            else:
                del self._lanes[key]
            self._n -= 1
            self._bytes -= size
            self._not_full.notify_all()  # a byte-bounded put may wait for room, not a slot
        return self.unpack(packed) if self.unpack is not None else packed  # type: ignore[no-any-return]

    def get_nowait(self) -> T:
        return self.get(block=False)
