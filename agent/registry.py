"""The explicit list of sources: config in, named source objects out. No discovery magic."""

from __future__ import annotations

import re

from fieldwatch.agent.config import SourcesConfig
from fieldwatch.agent.sources.base import Source, unique_names
from fieldwatch.agent.sources.battery import BatterySource
from fieldwatch.agent.sources.cpu import CpuSource
from fieldwatch.agent.sources.diskio import DiskIoSource
from fieldwatch.agent.sources.disks import PSEUDO_FS, DisksSource
from fieldwatch.agent.sources.host import HostSource
from fieldwatch.agent.sources.load import LoadSource
from fieldwatch.agent.sources.memory import MemorySource
from fieldwatch.agent.sources.net import NetSource
from fieldwatch.agent.sources.netlink import NetLinkSource
from fieldwatch.agent.sources.processes import Matcher, ProcessesSource
from fieldwatch.agent.sources.sensors import FanSource, TemperatureSource
from fieldwatch.agent.sources.smart import SmartSource
from fieldwatch.agent.sources.textfile import TextfileSource

from fieldwatch.clock import Clock, SystemClock


def build_sources(cfg: SourcesConfig, clock: Clock | None = None) -> dict[str, Source]:
    clock = clock or SystemClock()
    sources: list[Source] = []
    if cfg.cpu.enabled:
        sources.append(CpuSource(per_core=cfg.cpu.per_core))
    if cfg.load.enabled:
        sources.append(LoadSource())
    if cfg.memory.enabled:
        sources.append(MemorySource())
    if cfg.disks.enabled:
        sources.append(DisksSource(exclude_fstypes=PSEUDO_FS | set(cfg.disks.exclude_fstypes),
                                   exclude_mounts=("/proc", "/sys", "/dev",
                                                   *cfg.disks.exclude_mounts)))
    if cfg.diskio.enabled:
        sources.append(DiskIoSource(exclude=cfg.diskio.exclude))
    if cfg.net.enabled:
        sources.append(NetSource(exclude=tuple(cfg.net.exclude)))
    if cfg.netlink.enabled:
        sources.append(NetLinkSource(exclude=tuple(cfg.netlink.exclude)))
    if cfg.sensors.enabled:
        sources.append(TemperatureSource(hwmon=cfg.sensors.hwmon))
        sources.append(FanSource(hwmon=cfg.sensors.hwmon))
    if cfg.battery.enabled:
        sources.append(BatterySource())
    if cfg.host.enabled:
        sources.append(HostSource(clock))
    if cfg.processes.enabled and cfg.processes.watch:
        sources.append(ProcessesSource([
            Matcher(w.name, process=w.process, service=w.service,
                    cmdline=re.compile(w.cmdline) if w.cmdline else None)
            for w in cfg.processes.watch]))
    if cfg.smart.enabled:
        sources.append(SmartSource(clock, every=cfg.smart.every, smartctl=cfg.smart.smartctl,
                                   devices=cfg.smart.devices, timeout=cfg.smart.timeout,
                                   background=True))
    if cfg.textfile.enabled:
        sources.append(TextfileSource(cfg.textfile.dir))
    return unique_names(sources)
