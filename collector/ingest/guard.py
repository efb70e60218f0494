"""The last resort on paho's network thread: no exception in a callback may stop consumption.

paho re-raises what a callback raises (unless `suppress_exceptions`), and that ends its network
loop: the collector silently stops consuming, and the message that did it is never
acknowledged, so the broker hands it to the next collector, which dies the same way. Every
callback the collector gives paho is wrapped: an exception is counted
(`callback_errors_total{reason=<callback>}`), logged at most every few seconds, and swallowed,
so paho acknowledges the message and reads the next one. Decoding problems never get here
(they are rejections, counted by reason); this catches the bugs nobody foresaw.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fieldwatch.collector.telemetry.stats import Stats

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class LogEvery:
    """Says when to log again: at most once per `every` seconds, telling how many were not."""

    def __init__(self, every: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.every, self.monotonic = every, monotonic
        self._last = -float("inf")
        self._quiet = 0
        self._lock = threading.Lock()

    def due(self) -> int | None:
        """None: stay quiet. Otherwise log now; the number is how many went unlogged since."""
        with self._lock:
            now = self.monotonic()
            if now - self._last < self.every:
                self._quiet += 1
                return None
            self._last, quiet, self._quiet = now, self._quiet, 0
            return quiet


class CallbackGuard:
    def __init__(self, stats: Stats, every: float = 5.0) -> None:
        self.stats = stats
        self._log = LogEvery(every)

    def wrap(self, name: str, callback: F) -> F:
        """`callback`, but an exception from it is counted and logged instead of raised."""

        @functools.wraps(callback)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Exception:  # noqa: BLE001 - the last resort: counted, logged, consumption goes on
                self.stats.inc("callback_errors_total", name)
                quiet = self._log.due()
                if quiet is not None:
                    log.exception("MQTT callback %s failed; the message is dropped and counted "
                                  "in callback_errors_total (%d more failures not logged)",
                                  name, quiet)
                return None

        return guarded  # type: ignore[return-value]
