"""A watch list of processes and services from config: is it running, how many instances, and
their CPU time and memory. `proc.running{watch}` is 1/0 every cycle, so "service down" is a plain
threshold rule and never an absence.

CPU goes out as a raw counter (`proc.cpu_seconds_total`); rates are the rules' job. Matching
uses fixed fields (process name, a regex over the command line, a systemd unit's cgroup),
never a shell.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample


@dataclass(frozen=True)
class Matcher:
    name: str
    process: str | None = None
    cmdline: re.Pattern[str] | None = None
    service: str | None = None


def _cgroup_pids(cgroup_root: Path, unit: str) -> set[int]:
    """PIDs in a systemd unit's cgroup (v2 unified layout); empty when it is not running."""
    for sub in ("system.slice", "user.slice"):
        procs = cgroup_root / sub / unit / "cgroup.procs"
        try:
            return {int(x) for x in procs.read_text().split()}
        except (OSError, ValueError):
            continue
    return set()


class ProcessesSource:
    name = "processes"

    def __init__(self, watch: Sequence[Matcher], ps: ModuleType = psutil,
                 cgroup_root: Path = Path("/sys/fs/cgroup")) -> None:
        self.watch = list(watch)
        self._ps = ps
        self.cgroup_root = cgroup_root

    def _members(self) -> dict[str, list[object]]:
        found: dict[str, list[object]] = {w.name: [] for w in self.watch}
        service_pids = {w.name: _cgroup_pids(self.cgroup_root, w.service)
                        for w in self.watch if w.service}
        need_cmdline = any(w.cmdline for w in self.watch)
        attrs = ["name", "cmdline"] if need_cmdline else ["name"]
        for p in self._ps.process_iter(attrs):
            info = p.info
            for w in self.watch:
                if w.process is not None:
                    hit = info.get("name") == w.process
                elif w.cmdline is not None:
                    hit = bool(w.cmdline.search(" ".join(info.get("cmdline") or ())))
                else:
                    hit = p.pid in service_pids[w.name]
                if hit:
                    found[w.name].append(p)
        return found

    def collect(self) -> Iterator[Sample]:
        if not self.watch:
            return
        for name, procs in self._members().items():
            cpu = rss = 0.0
            alive = 0
            for p in procs:
                try:
                    with p.oneshot():  # type: ignore[attr-defined]
                        t = p.cpu_times()  # type: ignore[attr-defined]
                        cpu += t.user + t.system
                        rss += p.memory_info().rss  # type: ignore[attr-defined]
                    alive += 1
                except (self._ps.NoSuchProcess, self._ps.ZombieProcess):
                    continue  # ended between listing and reading
                except self._ps.AccessDenied:
                    alive += 1  # running, but another user's: count it, no usage figures
            yield sample("proc.running", 1 if alive else 0, watch=name)
            yield sample("proc.instances", alive, watch=name)
            if alive:
                yield sample("proc.cpu_seconds_total", round(cpu, 2), watch=name)
                yield sample("proc.rss_bytes", rss, watch=name)
