"""The collector's own counters, exposed at /metrics and in logs. Thread-safe increments."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[tuple[str, str]] = Counter()

    def inc(self, name: str, label: str = "", n: int = 1) -> None:
        with self._lock:
            self.counters[(name, label)] += n

    def get(self, name: str, label: str = "") -> int:
        return self.counters[(name, label)]

    def total(self, name: str) -> int:
        with self._lock:
            return sum(v for (n, _), v in self.counters.items() if n == name)

    def prometheus(self) -> str:
        """Counters in the Prometheus text format (label `reason` where one is set)."""
        lines = []
        with self._lock:
            items = sorted(self.counters.items())
        for (name, label), value in items:
            metric = "fieldwatch_collector_" + name
            lines.append(f'{metric}{{reason="{label}"}} {value}' if label else f"{metric} {value}")
        return "\n".join(lines) + "\n"
