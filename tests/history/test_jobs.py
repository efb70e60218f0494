"""The periodic jobs: counted, never fatal, one collector at a time on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.history.compute import queued
from fieldwatch.collector.history.config import HistoryConfig
from fieldwatch.collector.history.jobs import LOCK_KEY, HistoryJobs
from fieldwatch.collector.history.query import EmbeddedHistory, stored_horizons
from fieldwatch.collector.history.rollup import HOUR
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch.clock import FakeClock
from tests.history.helpers import DAY, T0, feed, message, worker


def _jobs(store: Store, clock: FakeClock) -> HistoryJobs:
    return HistoryJobs(store.engine, HistoryConfig(), 7 * DAY, clock, Stats())


def test_jobs_count_what_they_did_and_survive_failures(store: Store) -> None:
    clock = FakeClock(T0)
    feed(worker(store, clock), clock, [message("x", i + 1, T0 + i * 60, {"t": 1.0})
                                       for i in range(10)])
    jobs = _jobs(store, clock)
    clock.t = T0 + 3 * HOUR
    assert jobs.roll_up() == {"5m": 2 * 4, "1h": 4}
    assert jobs.stats.get("history_rollups_total", "5m") == 8
    clock.t = T0 + 8 * DAY
    kept = 1 if store.engine.dialect.name == "sqlite" else 0  # SQLite keeps the newest id
    assert jobs.retention()["messages"] == 10 - kept
    assert jobs.stats.get("history_deleted_total", "samples") == 10
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE rollups_5m"))
    clock.t += DAY
    assert jobs.retention() == {}
    assert jobs.stats.get("history_job_errors_total", "retention") == 1


def test_collectors_sharing_postgresql_take_turns(pg_url: str) -> None:
    store = Store(open_engine(pg_url))
    clock = FakeClock(T0)
    feed(worker(store, clock), clock, [message("x", 1, T0, {"t": 1.0})])
    jobs = _jobs(store, clock)
    clock.t = T0 + HOUR
    other = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        assert other.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}
                             ).scalar() is True
        assert jobs.roll_up() == {} and queued(store.engine) == {"5m": 1}  # not our turn
        other.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
        assert jobs.roll_up()["5m"] == 4
    finally:
        other.close()
        store.engine.dispose()


def test_the_collector_wires_history_in(tmp_path: Path) -> None:
    from fieldwatch.collector.service import Collector

    cfg = CollectorConfig(db=f"sqlite:///{tmp_path / 'fw.db'}", rules=[],
                          history=HistoryConfig(raw_for=3 * DAY, rollup_every=30))
    c = Collector(cfg)
    try:
        jobs = {j.id: j.trigger.interval.total_seconds()
                for j in c.history_jobs.scheduler.get_jobs()}
        assert jobs == {"history-rollup": 30.0, "history-retention": 600.0}
        assert c.worker.recorder is not None
        backend = c.history_backend()
        assert isinstance(backend, EmbeddedHistory) and backend.horizons.raw_for == 3 * DAY
        from fieldwatch.collector.history.query import record_horizons

        record_horizons(c.store.engine, cfg.history)  # what start() does, for the CLI
        assert stored_horizons(c.store.engine).raw_for == 3 * DAY
        off = Collector(cfg.model_copy(update={"history": HistoryConfig(enabled=False)}))
        assert off.worker.recorder is None
        assert [j.id for j in off.history_jobs.scheduler.get_jobs()] == ["history-retention"]
        off.store.engine.dispose()
        off.http.close()
    finally:
        c.store.engine.dispose()
        c.http.close()
