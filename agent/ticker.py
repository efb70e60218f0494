"""Run a few jobs at fixed intervals on one thread.

The agent's schedule is two jobs (poll every `interval`, inventory daily); this replaces
APScheduler there, which cost ~2.5 MB of resident memory, a thread pool and a dozen modules in
a process whose footprint is a feature. Semantics kept: the first run is immediate, a job never
overlaps itself, and runs missed while one was late are coalesced into one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class _Job:
    name: str
    every: float
    fn: Callable[[], None]
    due: float = 0.0


class Ticker:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._jobs: list[_Job] = []
        self._now = monotonic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fieldwatch-ticker", daemon=True)

    def every(self, seconds: float, fn: Callable[[], None], name: str) -> None:
        self._jobs.append(_Job(name, seconds, fn))

    def start(self) -> None:
        now = self._now()
        for job in self._jobs:
            job.due = now
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the job running now, if any, has finished."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_due(self) -> float:
        """Run every job that is due; returns the seconds until the next one is."""
        for job in self._jobs:
            now = self._now()
            if now < job.due:
                continue
            try:
                job.fn()
            except Exception:  # noqa: BLE001 - one failed run must not end the schedule
                log.exception("job %s failed; it runs again at its next interval", job.name)
            job.due += job.every
            if job.due <= self._now():  # late: coalesce the missed runs into this one
                job.due = self._now() + job.every
        return max(0.0, min(j.due for j in self._jobs) - self._now())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.run_due())
