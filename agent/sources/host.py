"""Uptime, boot time and process count. `host.boot_time` changes on every reboot, so a rule can
detect one (`change`) even when the agent missed the outage."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.clock import Clock
from fieldwatch.wire import Sample


class HostSource:
    name = "host"

    def __init__(self, clock: Clock, ps: ModuleType = psutil) -> None:
        self.clock = clock
        self._ps = ps

    def collect(self) -> Iterator[Sample]:
        boot = self._ps.boot_time()
        yield sample("host.boot_time", round(boot))  # psutil's value jitters by < 1 s
        yield sample("host.uptime_seconds", max(0.0, round(self.clock.now() - boot, 1)))
        yield sample("proc.count", len(self._ps.pids()))
