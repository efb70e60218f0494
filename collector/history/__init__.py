"""Metric history (docs/history.md): what a device's series did over time.

The contract every backend meets: the embedded store (SQLite/PostgreSQL, raw samples plus
5 min and 1 h rollups) and a remote Prometheus-compatible server (VictoriaMetrics, Prometheus,
Mimir, Thanos) read through `query_range`. Callers (CLI, HTTP route, backtests, the web desk's
charts) hold a `HistoryBackend` and never know which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fieldwatch.collector.rules.selectors import Selector


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """One series: a metric of one device with one label set (labels sorted by name)."""

    site: str
    device: str
    metric: str
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """Series of `metric` matching `selector` (device, site, type and label matchers, the rule
    language's own), over [start, end] in epoch seconds; `step` None lets the backend choose.
    For `series` only: `metric` "" matches every metric, and end <= start every series known
    whatever its data (the embedded store; `fieldwatch metrics series` without --since)."""

    metric: str
    selector: Selector = field(default_factory=Selector)
    start: float = 0.0
    end: float = 0.0
    step: float | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """Points (ts, value) in time order. `resolution`: "raw", "5m", "1h" (rollups: the value is
    the bucket's average; min/max ride along when the backend has them) or "remote"."""

    key: SeriesKey
    points: list[tuple[float, float]]
    resolution: str = "raw"
    minimum: list[float] | None = None
    maximum: list[float] | None = None


class HistoryBackend(Protocol):
    def series(self, query: Query) -> list[SeriesKey]:
        """The series matching the query's metric and selector with data in its range."""
        ...

    def query(self, query: Query) -> list[Series]:
        """Points of every matching series in the range, at the step chosen."""
        ...
