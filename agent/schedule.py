"""The agent's schedule on APScheduler: jobs at fixed intervals, the first run at once, never
overlapping themselves, runs missed while one was late coalesced into one, a failing run
logged and retried at its next interval. One worker thread: the jobs are short and serial."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

Job = tuple[str, float, Callable[[], None]]  # name, every (seconds), function


def build_scheduler(jobs: Iterable[Job]) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC, daemon=True)
    now = datetime.now(UTC)
    for name, every, fn in jobs:
        scheduler.add_job(fn, "interval", seconds=every, id=name, name=name, next_run_time=now)
    return scheduler
