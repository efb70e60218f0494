"""Metric history for the desk's charts on the real embedded store: samples written the way
the collector's worker writes them (its `Recorder` turns metrics messages into rows,
`Store.write` stores them in the history tables of the desk's own database) and read back
through `EmbeddedHistory`, the backend `fieldwatch up` hands the pages.

Shared by the pages' tests and bench/desk.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fieldwatch.collector.history import SeriesKey
from fieldwatch.collector.history.compute import roll_up
from fieldwatch.collector.history.config import HistoryConfig
from fieldwatch.collector.history.ingest import Recorder, SampleRows
from fieldwatch.collector.history.jobs import horizons
from fieldwatch.collector.history.query import EmbeddedHistory
from fieldwatch.collector.history.retention import apply_retention
from fieldwatch.collector.store.store import BatchWrite, Store

from fieldwatch import wire
from fieldwatch.clock import Clock

KEEP_RAW_MESSAGES = 7 * 86400.0  # the collector's default keep_raw_for


class StoredHistory:
    """Writes samples into `store`'s history tables; `backend` reads them (at `clock`'s now,
    with the default horizons: raw for 2 days, then 5 min and 1 h rollups)."""

    def __init__(self, store: Store, clock: Clock, cfg: HistoryConfig | None = None) -> None:
        cfg = cfg or HistoryConfig()
        self.store, self.clock = store, clock
        self.horizons = horizons(cfg)
        self.recorder = Recorder(cfg.raw_for)  # one per writer, as the worker keeps one
        self.backend = EmbeddedHistory(store.engine, self.horizons, clock)
        self._seq = 0

    def write(self, messages: Iterable[wire.Metrics]) -> int:
        """Store the samples of `messages` in one batch, each message received at its own
        timestamp (as if the collector had been listening); returns the samples stored."""
        rows = SampleRows()
        for i, msg in enumerate(messages):
            self.recorder.add(rows, i, msg, msg.ts)
        if rows.dropped:
            raise ValueError(f"samples the history refused: {dict(rows.dropped)}")
        self.store.write(BatchWrite(samples=rows), self.clock.now())
        return rows.samples

    def add(self, site: str, device: str, metric: str, points: Iterable[tuple[float, float]],
            **labels: str) -> SeriesKey:
        """One series: a message a point, carrying that one sample."""
        self.write(self.message(site, device, ts, [wire.Sample(metric, v, labels)])
                   for ts, v in points)
        return SeriesKey(site, device, metric, tuple(sorted(labels.items())))

    def roll_up(self, at: float | None = None) -> int:
        """The collector's rollup job at `at` (None: the clock's now): the settled buckets'
        5 min and 1 h rollups; returns the rows written."""
        done = roll_up(self.store.engine, self.clock.now() if at is None else at,
                       self.horizons, max_rows=10**9)
        return done["5m"] + done["1h"]

    def retention(self, at: float | None = None) -> Counter[str]:
        """The collector's retention job at `at` (None: the clock's now): raw samples beyond
        2 days and rollups beyond theirs deleted; rows deleted per table."""
        return apply_retention(self.store.engine, self.clock.now() if at is None else at,
                               self.horizons, KEEP_RAW_MESSAGES)

    def message(self, site: str, device: str, ts: float, samples: list[wire.Sample]
                ) -> wire.Metrics:
        self._seq += 1
        return wire.Metrics(device=device, site=site, seq=self._seq, ts=ts, samples=samples)
