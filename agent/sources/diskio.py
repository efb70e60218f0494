"""Disk I/O counters per block device, raw (`disk.read_bytes_total{device}`...)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample

_COUNTERS = (
    ("read_count", "disk.reads_total"), ("write_count", "disk.writes_total"),
    ("read_bytes", "disk.read_bytes_total"), ("write_bytes", "disk.written_bytes_total"),
    ("read_time", "disk.read_time_ms_total"), ("write_time", "disk.write_time_ms_total"),
    ("busy_time", "disk.busy_time_ms_total"),  # Linux and FreeBSD only
)


class DiskIoSource:
    name = "diskio"

    def __init__(self, exclude: Sequence[str] = (), ps: ModuleType = psutil) -> None:
        self.exclude = re.compile("|".join(f"(?:{p})" for p in exclude)) if exclude else None
        self._ps = ps

    def collect(self) -> Iterator[Sample]:
        counters = self._ps.disk_io_counters(perdisk=True) or {}  # None: no disks visible
        for dev, c in sorted(counters.items()):
            if self.exclude is not None and self.exclude.fullmatch(dev):
                continue
            for attr, metric in _COUNTERS:
                if hasattr(c, attr):
                    yield sample(metric, getattr(c, attr), device=dev)
