"""Giving memory back to the system after a backlog (issue 18).

A backlog passes through the collector as payloads, then as batches of decoded messages and
SQL parameters; once it is stored, CPython frees the objects, but glibc keeps the freed
memory in its arenas (one per thread that allocated: paho's, the worker's) for reuse, so RSS
stayed at the backlog's peak. `malloc_trim(0)` hands free pages of every arena back (a few
milliseconds; 27 ms measured for a 300 MB heap). The worker calls `give_back` when its queue
runs empty after enough was stored since the last time (`Trimmer`). Where libc has no
`malloc_trim` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)  # type: ignore[no-any-return]
    except OSError:
        return None


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Release free heap memory to the system; True if libc did release some."""
    return bool(_TRIM(0)) if _TRIM is not None else False


class Trimmer:
    """When to give memory back: the queue is empty and, since the last time, at least
    `after_messages` were stored or `every` seconds passed with some stored."""

    def __init__(self, after_messages: int = 20_000, every: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 release: Callable[[], bool] = give_back) -> None:
        self.after_messages, self.every = after_messages, every
        self.monotonic, self.release = monotonic, release
        self._stored = 0
        self._last = monotonic()

    def stored(self, n: int, queue_empty: bool) -> bool:
        """Note `n` messages stored; returns True when memory was handed back now."""
        self._stored += n
        if not queue_empty or self._stored == 0:
            return False
        now = self.monotonic()
        if self._stored < self.after_messages and now - self._last < self.every:
            return False
        self._stored, self._last = 0, now
        released = self.release()
        log.debug("gave free memory back to the system: %s", released)
        return True
