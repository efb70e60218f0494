"""What the shipped sources and SNMP profiles emit: metric name → the label key sets seen.

Derived, never hand-kept: every agent source runs for real (on this machine, or on the checked-in
fixture trees and recorded outputs for hardware this VM lacks), the SNMP poller polls a private
snmpd with the shipped profiles, every shipped profile's declarations add what they can emit,
and the collector's own accounting samples come from the pipeline's code.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace

import psutil
from fieldwatch.agent.config import ProcessesOptions, SourcesConfig, TextfileOptions, Watch
from fieldwatch.agent.poll import Poller
from fieldwatch.agent.registry import build_sources
from fieldwatch.agent.snmp.config import SnmpConfig
from fieldwatch.agent.snmp.poller import SnmpPoller
from fieldwatch.agent.snmp.profile import Profile, load_profiles, shipped_profiles_dir
from fieldwatch.agent.sources.base import Source
from fieldwatch.agent.sources.battery import BatterySource
from fieldwatch.agent.sources.cpu import CpuSource
from fieldwatch.agent.sources.diskio import DiskIoSource
from fieldwatch.agent.sources.disks import DisksSource
from fieldwatch.agent.sources.host import HostSource
from fieldwatch.agent.sources.load import LoadSource
from fieldwatch.agent.sources.memory import MemorySource
from fieldwatch.agent.sources.net import NetSource
from fieldwatch.agent.sources.netlink import NetLinkSource
from fieldwatch.agent.sources.processes import Matcher, ProcessesSource
from fieldwatch.agent.sources.sensors import FanSource, TemperatureSource
from fieldwatch.agent.sources.smart import SmartSource
from fieldwatch.agent.sources.snmp import SnmpHealthSource
from fieldwatch.collector.ingest.sequence import SeqState
from fieldwatch.collector.pipeline import _with_accounting

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from fieldwatch.structs import convert

Catalogue = dict[str, set[frozenset[str]]]

FIX = Path(__file__).parent.parent / "fixtures" / "agent"
# sources whose metric names the operator writes (textfile): nothing to check them against
OPERATOR_NAMED = {"textfile"}


def add(cat: Catalogue, samples: Iterable[wire.Sample]) -> Catalogue:
    for s in samples:
        cat.setdefault(s.name, set()).add(frozenset(s.labels))
    return cat


def _smartctl(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
    """smartctl answering from recorded outputs of real disks (an ATA one and an NVMe one)."""
    smart = FIX / "smartctl"
    if "--scan" in argv:
        return 0, (smart / "scan.json").read_bytes()
    name = {"/dev/sda": "failing_ata.json", "/dev/nvme1": "SAMSUNG_MZVL21T0HCLR-00B00.json"}
    doc = json.loads((smart / name[argv[-1]]).read_text())
    return doc["smartctl"]["exit_status"], json.dumps(doc).encode()


def agent_sources(clock: FakeClock) -> dict[str, Source]:
    """Every source the agent has, with inputs this VM lacks injected from fixtures."""
    one_disk = SimpleNamespace(  # the VM's / is an overlay (skipped): a real disk's listing
        disk_partitions=lambda all: [SimpleNamespace(mountpoint="/", fstype="ext4")],
        disk_usage=psutil.disk_usage)
    battery = SimpleNamespace(sensors_battery=lambda: SimpleNamespace(
        percent=80.0, secsleft=3600, power_plugged=False))
    snmp = SimpleNamespace(poller=SimpleNamespace(targets=[SimpleNamespace(up=True, failures=0)]),
                           receiver=SimpleNamespace(received=0, unknown_sources={}, errors=0))
    sources: list[Source] = [
        CpuSource(per_core=True), LoadSource(), MemorySource(), DisksSource(ps=one_disk),  # type: ignore[arg-type]
        DiskIoSource(), NetSource(exclude=()), NetLinkSource(exclude=()),
        TemperatureSource(hwmon=FIX / "hwmon"), FanSource(hwmon=FIX / "hwmon"),
        BatterySource(ps=battery), HostSource(clock),  # type: ignore[arg-type]
        ProcessesSource([Matcher("self", process=psutil.Process().name())]),
        SmartSource(clock, run=_smartctl, which=lambda n: f"/usr/sbin/{n}"),
        SnmpHealthSource(snmp)]  # type: ignore[arg-type]
    return {s.name: s for s in sources}


def registry_names() -> set[str]:
    """Names of every source the agent can build (all enabled), plus the SNMP health source."""
    cfg = SourcesConfig(processes=ProcessesOptions(watch=[Watch(name="x", process="x")]),
                        textfile=TextfileOptions(enabled=True))
    return set(build_sources(cfg, FakeClock())) | {"snmp"}


def agent_catalogue() -> Catalogue:
    clock = FakeClock(1_800_000_000.0)
    batch = Poller(agent_sources(clock), clock).poll()
    assert not batch.errors, batch.errors
    cat = add({}, batch.samples)
    # what the collector adds to every metrics message for the rules (sequence accounting)
    msg = wire.Metrics(device="d", site="s", seq=1, ts=0.0, samples=[])
    return add(cat, _with_accounting(msg, SeqState()).samples)


def profile_catalogue(profiles: Iterable[Profile]) -> Catalogue:
    """What each profile declares it can emit."""
    cat: Catalogue = {}
    for p in profiles:
        for m in p.scalars:
            cat.setdefault(m.name, set()).add(frozenset())
        for t in p.tables:
            keys = frozenset([*(name for name, _ in t.labels),
                              *([t.index_label] if t.index_label else [])])
            for m in t.metrics:
                cat.setdefault(m.name, set()).add(keys)
    return cat


def shipped_profiles() -> dict[str, Profile]:
    return load_profiles(sorted(p.stem for p in shipped_profiles_dir().glob("*.yaml")))


def snmpd_catalogue() -> Catalogue:
    """One real poll of a private snmpd with the shipped profiles it can answer."""
    from tests.snmp.agents import COMMUNITY, Snmpd

    with tempfile.TemporaryDirectory() as d:
        agent = Snmpd(Path(d)).start()
        try:
            cfg = convert(SnmpConfig, {"targets": [
                {"device": "srv", "host": "127.0.0.1", "port": agent.port,
                 "community": COMMUNITY, "profiles": ["system", "if-mib", "host-resources"]}]})
            poller = SnmpPoller(cfg, "lab", lambda *a: None)

            async def run() -> list[wire.Sample]:
                await poller.open()
                try:
                    (r,) = await poller.poll_all()
                finally:
                    poller.close()
                assert r.error is None, r.error
                return r.samples

            return add({}, asyncio.run(run()))
        finally:
            agent.stop()


def merge(*cats: Catalogue) -> Catalogue:
    out: Catalogue = {}
    for c in cats:
        for name, sets in c.items():
            out.setdefault(name, set()).update(sets)
    return out
