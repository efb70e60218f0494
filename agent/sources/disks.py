"""Disk usage per real mount (`disk.used_percent{mount}`), pseudo filesystems skipped."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample

PSEUDO_FS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "cgroup", "cgroup2", "securityfs", "pstore",
    "debugfs", "tracefs", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs", "binfmt_misc",
    "bpf", "nsfs", "overlay", "squashfs", "rpc_pipefs", "efivarfs", "ramfs", "selinuxfs",
    "fuse.lxcfs", "fuse.portal", "devfs", "",
})


class DisksSource:
    name = "disks"

    def __init__(self, exclude_fstypes: frozenset[str] = PSEUDO_FS,
                 exclude_mounts: tuple[str, ...] = ("/proc", "/sys", "/dev", "/run/credentials"),
                 ps: ModuleType = psutil) -> None:
        self.exclude_fstypes = exclude_fstypes
        self.exclude_mounts = exclude_mounts
        self._ps = ps

    def mounts(self) -> list[str]:
        seen, out = set(), []
        for part in self._ps.disk_partitions(all=False):
            if part.fstype in self.exclude_fstypes or part.mountpoint in seen:
                continue
            if part.mountpoint.startswith(self.exclude_mounts):
                continue
            seen.add(part.mountpoint)
            out.append(part.mountpoint)
        return out

    def collect(self) -> Iterator[Sample]:
        for mount in self.mounts():
            try:
                usage = self._ps.disk_usage(mount)
            except OSError:  # unmounted between listing and reading: not this cycle's fault
                continue
            yield sample("disk.used_percent", usage.percent, mount=mount)
            yield sample("disk.free_bytes", usage.free, mount=mount)
            yield sample("disk.total_bytes", usage.total, mount=mount)
