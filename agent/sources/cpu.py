"""CPU utilisation: `cpu.percent` (since the previous cycle), optionally per core, plus iowait and
steal where the OS reports them."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample


class CpuSource:
    name = "cpu"

    def __init__(self, per_core: bool = False, ps: ModuleType = psutil) -> None:
        self.per_core = per_core
        self._ps = ps
        # psutil measures between calls; prime it so the first cycle is meaningful.
        self._ps.cpu_times_percent(interval=None, percpu=False)
        if per_core:
            self._ps.cpu_percent(interval=None, percpu=True)

    def collect(self) -> Iterator[Sample]:
        times = self._ps.cpu_times_percent(interval=None, percpu=False)
        yield sample("cpu.percent", round(100.0 - times.idle - getattr(times, "iowait", 0.0), 2))
        for field in ("iowait", "steal", "user", "system"):
            if hasattr(times, field):
                yield sample(f"cpu.{field}_percent", getattr(times, field))
        if self.per_core:
            for i, pct in enumerate(self._ps.cpu_percent(interval=None, percpu=True)):
                yield sample("cpu.core_percent", pct, core=str(i))
