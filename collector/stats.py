"""The collector's own counters and gauges, exposed at /metrics and in logs. Thread-safe.

Counters only go up (`inc`); a gauge is a function read when the metrics are exported (queue
depth, the age of the oldest unstored message), so it is never stale and costs nothing between
scrapes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[tuple[str, str]] = Counter()
        self._gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, label: str = "", n: int = 1) -> None:
        with self._lock:
            self.counters[(name, label)] += n

    def get(self, name: str, label: str = "") -> int:
        return self.counters[(name, label)]

    def total(self, name: str) -> int:
        with self._lock:
            return sum(v for (n, _), v in self.counters.items() if n == name)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Export `read()` as gauge `name` (registering a name again replaces it)."""
        with self._lock:
            self._gauges[name] = read

    def gauges(self) -> dict[str, float]:
        with self._lock:
            reads = sorted(self._gauges.items())
        return {name: float(read()) for name, read in reads}

    def prometheus(self) -> str:
        """Counters and gauges in the Prometheus text format (label `reason` where one is set)."""
        lines = []
        with self._lock:
            items = sorted(self.counters.items())
        for (name, label), value in items:
            metric = "fieldwatch_collector_" + name
            lines.append(f'{metric}{{reason="{label}"}} {value}' if label else f"{metric} {value}")
        for name, value in self.gauges().items():
            metric = "fieldwatch_collector_" + name
            lines += [f"# TYPE {metric} gauge", f"{metric} {value!r}"]
        return "\n".join(lines) + "\n"
