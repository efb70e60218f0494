"""The agent's config (config/agent.yaml): who this device is, where to publish, what to read."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from fieldwatch.config import BrokerConfig, Id, Strict, default_device_id
from fieldwatch.durations import Duration


class Toggle(Strict):
    enabled: bool = True


class CpuOptions(Toggle):
    per_core: bool = False


class DisksOptions(Toggle):
    exclude_fstypes: list[str] = []  # added to the built-in pseudo filesystem list
    exclude_mounts: list[str] = []  # mount point prefixes to skip


class NetOptions(Toggle):
    exclude: list[str] = ["lo"]


class TextfileOptions(Strict):
    enabled: bool = False
    dir: Path = Path("/var/lib/fieldwatch/textfile")


class SourcesConfig(Strict):
    cpu: CpuOptions = CpuOptions()
    load: Toggle = Toggle()
    memory: Toggle = Toggle()
    disks: DisksOptions = DisksOptions()
    net: NetOptions = NetOptions()
    textfile: TextfileOptions = TextfileOptions()


class AgentConfig(Strict):
    device: Id = Field(default_factory=default_device_id)
    site: Id = "default"
    interval: Duration = 10.0
    broker: BrokerConfig = BrokerConfig()
    state_dir: Path = Path("/var/lib/fieldwatch/agent")  # sequence numbers, outage buffer
    sources: SourcesConfig = SourcesConfig()
