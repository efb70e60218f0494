"""The agent's config (config/agent.yaml): who this device is, where to publish, what to read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import msgspec
from fieldwatch.agent.diag.config import DiagConfig
from fieldwatch.agent.snmp.config import SnmpConfig

from fieldwatch.config import BrokerConfig, default_device_id
from fieldwatch.durations import Duration
from fieldwatch.structs import Id, Strict


def _check_regexes(key: str, patterns: list[str]) -> None:
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{key}: {p!r} is not a valid regular expression: {exc}") from None


class Toggle(Strict):
    enabled: bool = True


class CpuOptions(Toggle):
    per_core: bool = False


class DisksOptions(Toggle):
    exclude_fstypes: list[str] = []  # added to the built-in pseudo filesystem list
    exclude_mounts: list[str] = []  # mount point prefixes to skip


class DiskIoOptions(Toggle):
    # regular expressions matched against the whole device name; partitions are kept
    exclude: list[str] = msgspec.field(default_factory=lambda: [
        r"loop\d+", r"ram\d+", r"zram\d+", r"sr\d+", r"fd\d+"])

    def __post_init__(self) -> None:
        _check_regexes("exclude", self.exclude)


class NetOptions(Toggle):
    exclude: list[str] = msgspec.field(default_factory=lambda: ["lo"])


class SensorsOptions(Toggle):
    # Linux: read this hwmon tree directly; elsewhere (or when absent) psutil's sensors
    hwmon: Path = Path("/sys/class/hwmon")


class SmartOptions(Toggle):
    smartctl: str = "smartctl"  # command name or absolute path; never run through a shell
    every: Duration = 3600.0  # SMART data changes slowly and reading it wakes disks
    devices: list[str] = []  # default: what `smartctl --scan` finds
    timeout: Duration = 30.0

    def __post_init__(self) -> None:
        for d in self.devices:
            if not re.fullmatch(r"/dev/[A-Za-z0-9_./-]+", d) or ".." in d:
                raise ValueError(f"devices: {d!r} is not a /dev path")


class Watch(Strict):
    """One watched process or service: exactly one of `process`, `cmdline`, `service`."""

    name: Id  # the `watch` label
    process: str | None = None  # exact process name (comm), e.g. nginx
    cmdline: str | None = None  # regular expression searched in the joined command line
    service: str | None = None  # systemd unit; its cgroup's processes (Linux)

    def __post_init__(self) -> None:
        given = [k for k in ("process", "cmdline", "service") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of process, cmdline or service")
        if self.cmdline:
            _check_regexes("cmdline", [self.cmdline])
        if self.service and not re.fullmatch(r"[A-Za-z0-9:_.@-]+", self.service):
            raise ValueError(f"service: {self.service!r} is not a systemd unit name")


class ProcessesOptions(Toggle):
    watch: list[Watch] = []

    def __post_init__(self) -> None:
        names = [w.name for w in self.watch]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"watch: names must be unique; repeated: {', '.join(sorted(dup))}")


class TextfileOptions(Strict):
    enabled: bool = False
    dir: Path = Path("/var/lib/fieldwatch/textfile")


class SourcesConfig(Strict):
    cpu: CpuOptions = CpuOptions()
    load: Toggle = Toggle()
    memory: Toggle = Toggle()
    disks: DisksOptions = DisksOptions()
    diskio: DiskIoOptions = DiskIoOptions()
    net: NetOptions = NetOptions()
    netlink: NetOptions = NetOptions()
    sensors: SensorsOptions = SensorsOptions()
    battery: Toggle = Toggle()
    host: Toggle = Toggle()
    processes: ProcessesOptions = ProcessesOptions()
    smart: SmartOptions = SmartOptions()
    textfile: TextfileOptions = TextfileOptions()


class BufferConfig(Strict):
    """The on-disk outage buffer: bounded by size and age, oldest dropped first."""

    max_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024)] = 64 * 1024 * 1024
    max_age: Duration = 7 * 86400.0
    # unacknowledged messages handed to MQTT at once
    inflight: Annotated[int, msgspec.Meta(ge=1, le=65000)] = 100


class InventoryConfig(Strict):
    enabled: bool = True
    every: Duration = 86400.0


class AgentConfig(Strict):
    device: Id = msgspec.field(default_factory=default_device_id)
    site: Id = "default"
    interval: Duration = 10.0
    broker: BrokerConfig = BrokerConfig()
    state_dir: Path = Path("/var/lib/fieldwatch/agent")  # sequence numbers, outage buffer
    sources: SourcesConfig = SourcesConfig()
    buffer: BufferConfig = BufferConfig()
    inventory: InventoryConfig = InventoryConfig()
    diag: DiagConfig = DiagConfig()  # remote diagnostics (docs/diagnostics.md)
    snmp: SnmpConfig = SnmpConfig()  # SNMP targets (each its own device), traps (docs/snmp.md)

    def __post_init__(self) -> None:
        if self.interval < 0.1:
            raise ValueError("interval: must be at least 100ms")
