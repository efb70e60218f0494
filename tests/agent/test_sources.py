"""Every source on this machine, and the hardware this VM lacks through recorded real outputs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import namedtuple
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from fieldwatch.agent.config import SourcesConfig, Watch
from fieldwatch.agent.inventory import collect_inventory
from fieldwatch.agent.poll import Poller, poll_once
from fieldwatch.agent.registry import build_sources
from fieldwatch.agent.sources.base import unique_names
from fieldwatch.agent.sources.battery import BatterySource
from fieldwatch.agent.sources.diskio import DiskIoSource
from fieldwatch.agent.sources.host import HostSource
from fieldwatch.agent.sources.netlink import NetLinkSource
from fieldwatch.agent.sources.processes import Matcher, ProcessesSource
from fieldwatch.agent.sources.sensors import FanSource, TemperatureSource
from fieldwatch.agent.sources.smart import SmartSource, parse_scan, parse_smart
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldwatch.clock import FakeClock
from fieldwatch.errors import SourceError
from fieldwatch.wire import Sample

# psutil's result shapes (their module moved between psutil versions; the fields did not)
snicstats = namedtuple("snicstats", "isup duplex speed mtu flags")
shwtemp = namedtuple("shwtemp", "label current high critical")
sfan = namedtuple("sfan", "label current")
sbattery = namedtuple("sbattery", "percent secsleft power_plugged")

FIX = Path(__file__).parent.parent / "fixtures" / "agent"
SMART = FIX / "smartctl"


def by_name(samples: Sequence[Sample]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}


def test_every_default_source_produces_well_formed_samples_on_this_machine() -> None:
    sources = build_sources(SourcesConfig(), FakeClock())
    assert {"cpu", "load", "memory", "disks", "diskio", "net", "netlink", "temperatures",
            "fans", "battery", "host", "smart"} <= set(sources)
    batch = poll_once(sources, FakeClock())
    assert batch.errors == {}
    for s in batch.samples:
        assert s.name and "." in s.name and math.isfinite(s.value)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in s.labels.items())
    names = {s.name for s in batch.samples}
    assert {"disk.read_bytes_total", "net.up", "host.boot_time", "host.uptime_seconds",
            "proc.count", "mem.used_percent", "swap.used_percent"} <= names


def test_diskio_counts_real_devices_and_skips_loop_and_ram_disks() -> None:
    real = psutil.disk_io_counters(perdisk=True)
    one = next(iter(real.values()))
    fake = SimpleNamespace(disk_io_counters=lambda perdisk: {
        **real, "loop3": one, "ram0": one, "loop3p1x": one})
    out = list(DiskIoSource(exclude=[r"loop\d+", r"ram\d+"], ps=fake).collect())  # type: ignore
    devices = {s.labels["device"] for s in out}
    assert devices == {d for d in real if not d.startswith(("loop", "ram"))} | {"loop3p1x"}
    assert "vda" in devices or "sda" in devices or "nvme0n1" in devices
    assert all(s.value >= 0 for s in out)
    none = SimpleNamespace(disk_io_counters=lambda perdisk: None)  # psutil: no disks visible
    assert list(DiskIoSource(ps=none).collect()) == []  # type: ignore[arg-type]


def test_netlink_reports_up_speed_and_duplex() -> None:
    st = snicstats
    fake = SimpleNamespace(
        NIC_DUPLEX_FULL=psutil.NIC_DUPLEX_FULL, NIC_DUPLEX_UNKNOWN=psutil.NIC_DUPLEX_UNKNOWN,
        net_if_stats=lambda: {
            "eth0": st(True, psutil.NIC_DUPLEX_FULL, 1000, 1500, ""),
            "eth1": st(False, psutil.NIC_DUPLEX_UNKNOWN, 0, 1500, ""),
            "lo": st(True, psutil.NIC_DUPLEX_UNKNOWN, 0, 65536, "")})
    got = by_name(list(NetLinkSource(ps=fake).collect()))  # type: ignore[arg-type]
    assert got[("net.up", (("nic", "eth0"),))] == 1
    assert got[("net.up", (("nic", "eth1"),))] == 0
    assert got[("net.speed_mbps", (("nic", "eth0"),))] == 1000
    assert got[("net.full_duplex", (("nic", "eth0"),))] == 1
    assert ("net.speed_mbps", (("nic", "eth1"),)) not in got  # unknown speed: no sample
    assert not any(k[1] == (("nic", "lo"),) for k in got)
    here = list(NetLinkSource().collect())
    assert {s.labels["nic"] for s in here} == set(psutil.net_if_stats()) - {"lo"}


def test_hwmon_tree_gives_temperatures_with_limits_and_fans() -> None:
    temps = by_name(list(TemperatureSource(hwmon=FIX / "hwmon").collect()))
    assert temps[("temp.celsius", (("sensor", "coretemp/Package id 0"),))] == 52.0
    assert temps[("temp.high_celsius", (("sensor", "coretemp/Package id 0"),))] == 84.0
    assert temps[("temp.crit_celsius", (("sensor", "coretemp/Core 0"),))] == 100.0
    assert temps[("temp.celsius", (("sensor", "nct6775/SYSTIN"),))] == 38.5
    assert temps[("temp.celsius", (("sensor", "acpitz/temp1"),))] == 27.8
    assert ("temp.high_celsius", (("sensor", "acpitz/temp1"),)) not in temps
    assert not any("temp7" in dict(k[1])["sensor"] for k in temps)  # unreadable: skipped
    fans = by_name(list(FanSource(hwmon=FIX / "hwmon").collect()))
    assert fans == {("fan.rpm", (("sensor", "nct6775/fan1"),)): 1250.0,
                    ("fan.rpm", (("sensor", "nct6775/CPU fan"),)): 0.0,
                    ("fan.rpm", (("sensor", "it8728/fan3"),)): 2045.0}


def test_without_hwmon_the_psutil_sensors_answer(tmp_path: Path) -> None:
    fake = SimpleNamespace(
        sensors_temperatures=lambda: {"acpitz": [shwtemp("", 41.0, None, 95.0)]},
        sensors_fans=lambda: {"thinkpad": [sfan("", 2900)]})
    temps = list(TemperatureSource(hwmon=tmp_path / "absent", ps=fake).collect())  # type: ignore
    assert by_name(temps) == {("temp.celsius", (("sensor", "acpitz/1"),)): 41.0,
                              ("temp.crit_celsius", (("sensor", "acpitz/1"),)): 95.0}
    fans = list(FanSource(hwmon=None, ps=fake).collect())  # type: ignore[arg-type]
    assert by_name(fans) == {("fan.rpm", (("sensor", "thinkpad/1"),)): 2900.0}
    # an OS where psutil has no fans at all (Windows, macOS): a counted source error
    poller = Poller(unique_names([FanSource(hwmon=None, ps=SimpleNamespace())]),  # type: ignore
                    FakeClock())
    batch = poller.poll()
    assert "AttributeError" in batch.errors["fans"]


@pytest.mark.parametrize(("secsleft", "plugged", "expect"), [
    (5400, False, {"battery.percent": 63.0, "battery.plugged": 0.0,
                   "battery.seconds_left": 5400.0}),
    (psutil.POWER_TIME_UNLIMITED, True, {"battery.percent": 63.0, "battery.plugged": 1.0}),
    (psutil.POWER_TIME_UNKNOWN, None, {"battery.percent": 63.0}),
])
def test_battery(secsleft: int, plugged: bool | None, expect: dict[str, float]) -> None:
    bat = sbattery(63.0, secsleft, plugged)
    fake = SimpleNamespace(sensors_battery=lambda: bat)
    got = {s.name: s.value for s in BatterySource(ps=fake).collect()}  # type: ignore[arg-type]
    assert got == expect
    nobat = SimpleNamespace(sensors_battery=lambda: None)
    assert list(BatterySource(ps=nobat).collect()) == []  # type: ignore[arg-type]


def test_host_boot_time_and_uptime_make_a_reboot_visible() -> None:
    clock = FakeClock(1_800_000_000.0)
    boots = iter([1_799_990_000.4, 1_800_000_050.2])
    fake = SimpleNamespace(boot_time=lambda: next(boots), pids=lambda: [1, 2, 3])
    src = HostSource(clock, ps=fake)  # type: ignore[arg-type]
    first = {s.name: s.value for s in src.collect()}
    clock.advance(100)
    second = {s.name: s.value for s in src.collect()}
    assert first == {"host.boot_time": 1_799_990_000, "host.uptime_seconds": 9999.6,
                     "proc.count": 3}
    assert second["host.boot_time"] != first["host.boot_time"]
    assert second["host.uptime_seconds"] < first["host.uptime_seconds"]


def test_watch_list_reports_running_processes_and_missing_ones() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                              "fw-watch-marker"])
    try:
        src = ProcessesSource([
            Matcher("marker", cmdline=__import__("re").compile(r"fw-watch-marker")),
            Matcher("me", process=psutil.Process().name()),
            Matcher("ghost", process="no-such-daemon-xyz"),
            Matcher("svc", service="no-such.service"),
        ])
        got = by_name(list(src.collect()))
    finally:
        child.kill()
        child.wait()
    assert got[("proc.running", (("watch", "marker"),))] == 1
    assert got[("proc.instances", (("watch", "marker"),))] == 1
    assert got[("proc.rss_bytes", (("watch", "marker"),))] > 1_000_000
    assert got[("proc.cpu_seconds_total", (("watch", "marker"),))] >= 0
    assert got[("proc.running", (("watch", "me"),))] == 1
    assert got[("proc.running", (("watch", "ghost"),))] == 0
    assert ("proc.rss_bytes", (("watch", "ghost"),)) not in got
    assert got[("proc.running", (("watch", "svc"),))] == 0


def test_service_watch_reads_the_units_cgroup(tmp_path: Path) -> None:
    unit = tmp_path / "system.slice" / "demo.service"
    unit.mkdir(parents=True)
    (unit / "cgroup.procs").write_text(f"{os.getpid()}\n")
    src = ProcessesSource([Matcher("demo", service="demo.service")], cgroup_root=tmp_path)
    got = by_name(list(src.collect()))
    assert got[("proc.running", (("watch", "demo"),))] == 1


def test_watch_config_needs_exactly_one_matcher() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Watch(name="x", process="a", service="b.service")
    with pytest.raises(ValueError, match="regular expression"):
        Watch(name="x", cmdline="(")


# -- SMART --------------------------------------------------------------------------------------

def _load(name: str) -> dict:
    return json.loads((SMART / name).read_text())


def test_smart_parses_a_real_ata_disk() -> None:
    got = by_name(parse_smart(_load("WDC_WD20EFRX-68EUZN0.json"), "/dev/sda"))
    d = (("disk", "/dev/sda"),)
    assert got[("smart.healthy", d)] == 1
    assert got[("smart.temperature_celsius", d)] == 33
    assert got[("smart.power_on_hours", d)] == 71605
    assert got[("smart.reallocated_sectors", d)] == 0
    assert got[("smart.pending_sectors", d)] == 0
    assert got[("smart.offline_uncorrectable", d)] == 0
    assert got[("smart.crc_errors_total", d)] == 0
    assert got[("smart.attributes_failing", d)] == 0


def test_smart_parses_a_real_nvme_disk() -> None:
    got = by_name(parse_smart(_load("SAMSUNG_MZVL21T0HCLR-00B00.json"), "/dev/nvme1"))
    d = (("disk", "/dev/nvme1"),)
    assert got[("smart.healthy", d)] == 1
    assert got[("smart.wear_percent", d)] == 16
    assert got[("smart.spare_percent", d)] == 100
    assert got[("smart.media_errors_total", d)] == 0
    assert got[("smart.unsafe_shutdowns_total", d)] == 1
    assert got[("smart.temperature_celsius", d)] == 30
    assert ("smart.reallocated_sectors", d) not in got


def test_smart_failing_disk_is_unhealthy_with_its_bad_sectors() -> None:
    got = by_name(parse_smart(_load("failing_ata.json"), "/dev/sda"))
    d = (("disk", "/dev/sda"),)
    assert got[("smart.healthy", d)] == 0
    assert got[("smart.reallocated_sectors", d)] == 1184
    assert got[("smart.pending_sectors", d)] == 24
    assert got[("smart.attributes_failing", d)] == 1
    doc = _load("failing_ata.json")
    del doc["smart_status"]  # older smartctl: only the exit status bit says so
    assert by_name(parse_smart(doc, "/dev/sda"))[("smart.healthy", d)] == 0


def test_smart_scan_keeps_only_sane_device_paths() -> None:
    assert parse_scan(_load("scan.json")) == [("/dev/sda", "sat"), ("/dev/nvme1", "nvme")]
    evil = {"devices": [{"name": "/dev/sda; rm -rf /", "type": "sat"},
                        {"name": "/dev/../etc/shadow", "type": "sat"},
                        {"name": "/dev/sdb", "type": "sat -x"}]}
    assert parse_scan(evil) == []


class FakeSmartctl:
    """Answers the argv SmartSource runs from the recorded outputs, and records the calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        self.calls.append(list(argv))
        if "--scan" in argv:
            return 0, (SMART / "scan.json").read_bytes()
        name = {"/dev/sda": "failing_ata.json",
                "/dev/nvme1": "SAMSUNG_MZVL21T0HCLR-00B00.json"}[argv[-1]]
        doc = _load(name)
        return doc["smartctl"]["exit_status"], json.dumps(doc).encode()


def test_smart_source_runs_smartctl_per_scanned_disk_at_its_own_interval() -> None:
    clock, run = FakeClock(), FakeSmartctl()
    src = SmartSource(clock, every=3600, run=run, which=lambda n: f"/usr/sbin/{n}")
    first = list(src.collect())
    assert {s.labels["disk"] for s in first} == {"/dev/sda", "/dev/nvme1"}
    assert run.calls[1] == ["/usr/sbin/smartctl", "--json", "--info", "--health",
                            "--attributes", "--nocheck=standby", "-d", "sat", "/dev/sda"]
    clock.advance(600)
    assert list(src.collect()) == []  # not due yet: no smartctl run
    assert len(run.calls) == 3
    clock.advance(3000)
    assert len(list(src.collect())) == len(first)


def test_smart_without_smartctl_is_unsupported_counted_once_and_skipped() -> None:
    src = SmartSource(FakeClock(), which=lambda n: None)
    poller = Poller(unique_names([src]), FakeClock())
    b1 = poller.poll()
    assert "smartctl not found" in b1.errors["smart"]
    b2 = poller.poll()
    assert b2.errors == {}
    errs = [s for s in b2.samples if s.name == "agent.source_errors_total"]
    assert [(s.labels, s.value) for s in errs] == [({"source": "smart"}, 1.0)]


def test_smart_device_open_failure_is_a_source_error_but_standby_is_not() -> None:
    def run(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        msg = "Permission denied" if argv[-1] == "/dev/sda" else "Device is in STANDBY mode"
        return 2, json.dumps({"smartctl": {"exit_status": 2,
                                           "messages": [{"string": msg}]}}).encode()

    src = SmartSource(FakeClock(), devices=["/dev/sda", "/dev/sdb"], run=run,
                      which=lambda n: n)
    with pytest.raises(SourceError, match="/dev/sda: Permission denied") as err:
        list(src.collect())
    assert "sdb" not in str(err.value)


def test_smart_non_json_output_says_which_version_is_needed() -> None:
    src = SmartSource(FakeClock(), run=lambda a, t: (1, b"smartctl 6.2 usage"),
                      which=lambda n: n)
    with pytest.raises(SourceError, match="smartmontools 7"):
        list(src.collect())


def test_smart_on_this_machine_runs_the_real_smartctl_without_error() -> None:
    if not Path("/usr/sbin/smartctl").exists():
        pytest.skip("smartmontools not installed")
    # this VM's virtio disk has no SMART: the scan finds nothing, which is not an error
    list(SmartSource(FakeClock(), smartctl="/usr/sbin/smartctl").collect())


# -- inventory ----------------------------------------------------------------------------------

def test_inventory_from_fixture_trees() -> None:
    facts = collect_inventory(sys_root=FIX / "sys", proc_root=FIX / "proc", etc=FIX / "etc")
    assert facts["cpu_model"] == "11th Gen Intel(R) Core(TM) i7-11700 @ 2.50GHz"
    assert facts["distro"] == {"pretty_name": "Debian GNU/Linux 12 (bookworm)",
                               "version_id": "12", "id": "debian"}
    assert facts["hardware"] == {"vendor": "Dell Inc.", "product": "OptiPlex 7090",
                                 "serial": "7XK2J93"}  # the O.E.M. placeholder is dropped
    assert facts["disks"] == [
        {"name": "nvme0n1", "bytes": 2000409264 * 512, "model": "SAMSUNG MZVL21T0HCLR-00B00",
         "serial": "S676NF0R123456", "rotational": False},
        {"name": "sda", "bytes": 3907029168 * 512, "model": "WDC WD20EFRX-68E",
         "rotational": True}]


def test_inventory_of_this_machine() -> None:
    facts = collect_inventory()
    assert facts["ram_bytes"] == psutil.virtual_memory().total
    assert facts["cpu_threads"] == psutil.cpu_count()
    assert facts["os"] == "Linux" and facts["kernel"]
    assert "/" in facts["filesystems"]
    assert all(len(mac.split(":")) == 6 for mac in facts["nics"].values())
    json.dumps(facts)  # goes on the wire as JSON


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_keys = st.sampled_from(["smart_status", "temperature", "power_on_time", "ata_smart_attributes",
                         "nvme_smart_health_information_log", "smartctl", "devices"])


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # noisy CI machines
@given(st.dictionaries(_keys, _json, max_size=6))
def test_smart_parsers_never_crash_on_odd_documents(doc: dict) -> None:
    """Other smartctl versions and RAID controllers give odd shapes: fewer samples, never a
    crash, never a non-finite or boolean-derived value."""
    for s in parse_smart(doc, "/dev/sda"):
        assert math.isfinite(s.value) and s.labels == {"disk": "/dev/sda"}
    for name, typ in parse_scan(doc):
        assert name.startswith("/dev/") and " " not in name + typ


def test_smart_in_the_background_never_blocks_a_cycle_and_hands_results_over_once() -> None:
    import threading

    gate = threading.Event()
    run = FakeSmartctl()

    def slow(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        gate.wait(10)  # a disk that takes its time
        return run(argv, timeout)

    clock = FakeClock()
    src = SmartSource(clock, every=3600, run=slow, which=lambda n: n, background=True)
    assert list(src.collect()) == []  # started, not waited for
    gate.set()
    src._thread.join(10)  # type: ignore[union-attr]
    first = list(src.collect())
    assert {s.labels["disk"] for s in first} == {"/dev/sda", "/dev/nvme1"}
    assert list(src.collect()) == []  # handed over once
    unsupported = SmartSource(clock, which=lambda n: None, background=True)
    list(unsupported.collect())
    unsupported._thread.join(10)  # type: ignore[union-attr]
    with pytest.raises(SourceError, match="not found"):
        list(unsupported.collect())
