"""The agent's schedule: jobs at fixed intervals, the first run at once, never overlapping
themselves, runs missed while one was late coalesced into one, a failing run logged and retried
at its next interval. One thread runs the jobs in turn: they are short (a poll cycle takes about
2 ms) and serial.

This is a small stdlib loop, not APScheduler: importing APScheduler pulls in asyncio,
importlib.metadata and multiprocessing, 4.3 MB of RSS, a seventh of the agent's 30 MB budget
(issue 3; `bench/agent_footprint.py`). The collector, whose memory is not counted, runs its
periodic work on APScheduler. Intervals are kept on the monotonic clock, so a wall-clock step
(NTP, DST) neither skips nor doubles a run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Job = tuple[str, float, Callable[[], None]]  # name, every (seconds), function


def next_due(due: float, every: float, now: float) -> float:
    """The first time on `due`'s grid (due + k·every) after `now`: a late run is not repeated
    for every interval it missed (coalesced), and the schedule keeps its phase."""
    if now < due:
        return due
    k = math.floor((now - due) / every) + 1
    while due + every * k <= now:  # float rounding can land exactly on `now`
        k += 1
    return due + every * k


@dataclass
class IntervalJob:
    id: str
    every: float
    fn: Callable[[], None]
    due: float  # monotonic time of the next run
    runs: int = 0
    failures: int = 0


class IntervalScheduler:
    def __init__(self, jobs: Iterable[Job], name: str = "fieldwatch-schedule",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        now = clock()
        self.jobs = [IntervalJob(job_id, every, fn, now) for job_id, every, fn in jobs]
        for job in self.jobs:
            if not job.every > 0:
                raise ValueError(f"job {job.id}: interval must be positive, not {job.every}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop; with `wait`, return once the job running now (if any) has finished."""
        self._stop.set()
        if wait and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def run_due(self, now: float) -> None:
        """Run every job due at `now`, earliest first, and move each to its next slot."""
        for job in sorted((j for j in self.jobs if j.due <= now), key=lambda j: j.due):
            if self._stop.is_set():
                return
            try:
                job.fn()
            except Exception:  # noqa: BLE001 - one failing job must not stop the schedule
                job.failures += 1
                log.exception("scheduled job %s failed; next run in %.3gs", job.id, job.every)
            job.runs += 1
            job.due = next_due(job.due, job.every, self.clock())

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due(self.clock())
            self._stop.wait(max(0.0, min(j.due for j in self.jobs) - self.clock())
                            if self.jobs else None)


def build_scheduler(jobs: Iterable[Job]) -> IntervalScheduler:
    return IntervalScheduler(jobs)
