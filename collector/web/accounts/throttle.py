"""Failed logins, counted per client address: after too many in a window that address waits.

Per address rather than per user name, so nobody can lock a colleague out by typing wrong
passwords under their name. Behind a reverse proxy the address is the client's only when
uvicorn trusts the proxy's X-Forwarded-For (docs/desk.md, "TLS and proxies").
"""

from __future__ import annotations

import threading
from collections import deque

from fieldwatch.clock import Clock

MAX_FAILURES = 10
WINDOW = 600.0  # seconds
MAX_ADDRESSES = 10_000  # memory bound: the oldest address is forgotten first


class Throttle:
    def __init__(self, clock: Clock, max_failures: int = MAX_FAILURES,
                 window: float = WINDOW) -> None:
        self.clock, self.max_failures, self.window = clock, max_failures, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # login routes run in a thread pool

    def _recent(self, address: str) -> deque[float]:
        now = self.clock.now()
        times = self._failures.get(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, address: str) -> float:
        """Seconds until `address` may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(address)
            if len(times) < self.max_failures:
                return 0.0
            return max(0.0, times[0] + self.window - self.clock.now())

    def failed(self, address: str) -> None:
        with self._lock:
            times = self._recent(address)
            times.append(self.clock.now())
            self._failures.pop(address, None)
            self._failures[address] = times  # most recent last: eviction takes the oldest
            while len(self._failures) > MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
