"""Memory and swap: used percent and bytes available."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample


class MemorySource:
    name = "memory"

    def __init__(self, ps: ModuleType = psutil) -> None:
        self._ps = ps

    def collect(self) -> Iterator[Sample]:
        vm = self._ps.virtual_memory()
        yield sample("mem.used_percent", vm.percent)
        yield sample("mem.available_bytes", vm.available)
        yield sample("mem.total_bytes", vm.total)
        sw = self._ps.swap_memory()
        yield sample("swap.used_percent", sw.percent)
        yield sample("swap.used_bytes", sw.used)
