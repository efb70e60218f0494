"""Load averages `load.1m`, `load.5m`, `load.15m`, and `load.per_core_1m` for thresholds that hold
across machine sizes."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample


class LoadSource:
    name = "load"

    def __init__(self, ps: ModuleType = psutil) -> None:
        self._ps = ps

    def collect(self) -> Iterator[Sample]:
        one, five, fifteen = self._ps.getloadavg()
        cores = self._ps.cpu_count() or 1
        yield sample("load.1m", one)
        yield sample("load.5m", five)
        yield sample("load.15m", fifteen)
        yield sample("load.per_core_1m", one / cores)
