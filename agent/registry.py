"""The explicit list of sources: config in, named source objects out. No discovery magic."""

from __future__ import annotations

from fieldwatch.agent.config import SourcesConfig
from fieldwatch.agent.sources.base import Source, unique_names
from fieldwatch.agent.sources.cpu import CpuSource
from fieldwatch.agent.sources.disks import PSEUDO_FS, DisksSource
from fieldwatch.agent.sources.load import LoadSource
from fieldwatch.agent.sources.memory import MemorySource
from fieldwatch.agent.sources.net import NetSource
from fieldwatch.agent.sources.textfile import TextfileSource


def build_sources(cfg: SourcesConfig) -> dict[str, Source]:
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
    if cfg.net.enabled:
        sources.append(NetSource(exclude=tuple(cfg.net.exclude)))
    if cfg.textfile.enabled:
        sources.append(TextfileSource(cfg.textfile.dir))
    return unique_names(sources)
