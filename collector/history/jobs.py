"""The history's periodic work on its own APScheduler (one thread, runs never overlap, missed
runs coalesced): roll up settled buckets every `rollup_every`, apply retention every
`retention_every`. Collectors sharing a PostgreSQL database take turns through an advisory lock,
so each run's work is done once."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from fieldwatch.collector.history.compute import roll_up
from fieldwatch.collector.history.config import HistoryConfig
from fieldwatch.collector.history.retention import apply_retention
from fieldwatch.collector.history.rollup import Horizons
from fieldwatch.collector.store.failures import log_failure
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch.clock import Clock

log = logging.getLogger(__name__)

LOCK_KEY = 4242013  # pg advisory lock: one collector at a time runs a history job


def horizons(cfg: HistoryConfig) -> Horizons:
    return Horizons(cfg.raw_for, cfg.rollup_5m_for, cfg.rollup_1h_for)


class HistoryJobs:
    def __init__(self, engine: sa.Engine, cfg: HistoryConfig, keep_raw_for: float,
                 clock: Clock, stats: Stats) -> None:
        self.engine, self.cfg, self.keep_raw_for = engine, cfg, keep_raw_for
        self.clock, self.stats = clock, stats
        self.stop_event = threading.Event()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC, daemon=True)
        if cfg.enabled:
            self.scheduler.add_job(self.roll_up, "interval", seconds=cfg.rollup_every,
                                   id="history-rollup", name="history-rollup")
        # messages keep their own retention whether or not history is kept
        self.scheduler.add_job(self.retention, "interval", seconds=cfg.retention_every,
                               id="history-retention", name="history-retention")

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def roll_up(self) -> Counter[str]:
        return self._run("rollup", lambda: roll_up(self.engine, self.clock.now(),
                                                   horizons(self.cfg), stop=self.stop_event),
                         "history_rollups_total")

    def retention(self) -> Counter[str]:
        """Applies the horizons with history off too: what an earlier run stored still ages."""
        return self._run("retention", lambda: apply_retention(
            self.engine, self.clock.now(), horizons(self.cfg), self.keep_raw_for,
            self.stop_event), "history_deleted_total")

    def _run(self, what: str, work: Callable[[], Counter[str]], counter: str) -> Counter[str]:
        try:
            with self._turn() as mine:
                if not mine:
                    return Counter()
                done = work()
        except Exception as exc:  # noqa: BLE001 - a failed run is retried next time, never fatal
            self.stats.inc("history_job_errors_total", what)
            log_failure(log, exc, "history %s failed; retrying next run", what)
            return Counter()
        for name, n in done.items():
            self.stats.inc(counter, name, n=n)
        return done

    @contextmanager
    def _turn(self) -> Iterator[bool]:
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            mine = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                     {"k": LOCK_KEY}).scalar())
            try:
                yield mine
            finally:
                if mine:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
