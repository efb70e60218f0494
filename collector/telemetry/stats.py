"""The collector's own counters, gauges and histograms, exposed at /metrics and in logs.
Thread-safe.

Counters only go up (`inc`); a gauge is a function read when the metrics are exported (queue
depth, the age of the oldest unstored message), so it is never stale and costs nothing between
scrapes; a histogram (`observe`) counts values into the fixed buckets of `HISTOGRAMS`. Each may
carry one label value (its label's name: exposition.py). The Prometheus text is made
by collector/telemetry/exposition.py.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# name → (help, upper bounds); only these names can be observed (a typo fails at once)
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "batch_seconds": ("Time to prepare and store one batch (rules, one transaction).",
                      (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                       5.0, 10.0, 30.0)),
    "batch_queue_depth": ("Messages waiting in the ingest queue when the worker takes a batch.",
                          (0, 1, 10, 100, 1000, 5000, 10_000, 25_000, 50_000, 100_000)),
    "batch_messages": ("Messages in one batch taken from the queue.",
                       (1, 2, 5, 10, 50, 100, 500, 1000, 2000, 5000)),
}


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; +Inf last
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[tuple[str, str]] = Counter()
        self._gauges: dict[tuple[str, str], Callable[[], float]] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def inc(self, name: str, label: str = "", n: int = 1) -> None:
        with self._lock:
            self.counters[(name, label)] += n

    def get(self, name: str, label: str = "") -> int:
        return self.counters[(name, label)]

    def total(self, name: str) -> int:
        with self._lock:
            return sum(v for (n, _), v in self.counters.items() if n == name)

    def counter_values(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(sorted(self.counters.items()))

    def gauge(self, name: str, read: Callable[[], float], label: str = "") -> None:
        """Export `read()` as gauge `name` (registering a name again replaces it)."""
        with self._lock:
            self._gauges[(name, label)] = read

    def gauges(self) -> dict[str, float]:
        """Unlabelled gauges by name; a labelled one as `name{label}`."""
        return {f"{n}{{{lb}}}" if lb else n: v for (n, lb), v in self.gauge_values().items()}

    def gauge_values(self) -> dict[tuple[str, str], float]:
        with self._lock:
            reads = sorted(self._gauges.items())
        return {key: float(read()) for key, read in reads}

    def observe(self, name: str, value: float, label: str = "") -> None:
        """Count `value` into histogram `name` (one of HISTOGRAMS)."""
        with self._lock:
            h = self._histograms.get((name, label))
            if h is None:
                h = self._histograms[(name, label)] = Histogram(HISTOGRAMS[name][1])
            h.observe(value)

    def histograms(self) -> dict[tuple[str, str], Histogram]:
        """A copy of every histogram, consistent with itself."""
        with self._lock:
            return {k: Histogram(h.bounds, list(h.counts), h.total)
                    for k, h in sorted(self._histograms.items())}

    def prometheus(self) -> str:
        """Everything in the Prometheus text format (collector/telemetry/exposition.py)."""
        from fieldwatch.collector.telemetry.exposition import exposition

        return exposition(self).decode()
