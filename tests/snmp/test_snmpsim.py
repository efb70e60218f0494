"""Against snmpsim: UPS and ENTITY-SENSOR profiles, and many agents polled on schedule."""

from __future__ import annotations

import asyncio
import threading

from fieldwatch.agent.snmp.config import SnmpConfig
from fieldwatch.agent.snmp.poller import SnmpPoller
from fieldwatch.agent.snmp.service import SnmpService

from fieldwatch import wire
from fieldwatch.structs import convert
from tests.snmp.agents import Snmpsim, free_udp_port
from tests.snmp.conftest import SIM_DEVICES
from tests.snmp.helpers import Published, poll_round, values


def _target(sim: Snmpsim, community: str, profiles: list[str], **kw: object) -> dict[str, object]:
    return {"device": community, "host": "127.0.0.1", "port": sim.port,
            "community": community, "profiles": profiles, **kw}


def test_ups_mib_profile(snmpsim: Snmpsim) -> None:
    (r,), _ = poll_round({"targets": [_target(snmpsim, "ups", ["system", "ups-mib"])]})
    assert r.error is None
    got = {s.name: s.value for s in r.samples if not s.labels}
    assert got["ups.battery_status"] == 3 and got["ups.battery_low"] == 1
    assert got["ups.charge_percent"] == 42 and got["ups.on_battery"] == 1
    assert got["ups.runtime_seconds"] == 7 * 60 and got["ups.seconds_on_battery"] == 240
    assert got["ups.battery_temp_celsius"] == 31 and got["ups.alarms"] == 1
    assert got["snmp.uptime_seconds"] == 5.0
    assert values(r, "ups.load_percent") == {(("line", "1"),): 55}


def test_entity_sensor_profile(snmpsim: Snmpsim) -> None:
    (r,), _ = poll_round({"targets": [_target(snmpsim, "sensors", ["entity-sensor"])]})
    assert r.error is None
    assert values(r, "temp.celsius") == {(("index", "1"), ("sensor", "CPU temp")): 45.5,
                                         (("index", "3"), ("sensor", "PSU temp")): 0.0}
    assert values(r, "fan.rpm") == {(("index", "2"), ("sensor", "Fan 1")): 3000.0}
    assert values(r, "sensor.ok")[(("index", "3"), ("sensor", "PSU temp"))] == 0.0


def test_many_agents_polled_within_one_interval_despite_a_dead_one(snmpsim: Snmpsim) -> None:
    live = [f"sw{i:03d}" for i in range(SIM_DEVICES)]
    targets = [_target(snmpsim, c, ["system", "if-mib"]) for c in live]
    # nothing listens there: its one request hangs for 20 s; it is listed first on purpose
    targets.insert(0, {"device": "dead", "host": "127.0.0.1", "port": free_udp_port(),
                       "profiles": ["system", "if-mib"], "timeout": "20s", "retries": 0})
    cfg = convert(SnmpConfig, {"targets": targets, "interval": "30s", "concurrency": 8})
    published = Published()
    all_live = threading.Event()

    def publish(site: str, device: str, kind: str, payload: bytes) -> None:
        published(site, device, kind, payload)
        if len({d for _, d, k, _ in published if k == "metrics"} & set(live)) == len(live):
            all_live.set()

    service = SnmpService(cfg, "plant", publish)
    service.start()
    try:
        assert all_live.wait(60), "not every live agent was polled"
        # every live agent answered while the dead one was still waiting, within one interval
        metrics = [m for _, _, k, m in published if k == "metrics"]
    finally:
        service.stop()
    assert not any(t.name == "fieldwatch-snmp" for t in threading.enumerate())
    assert len(metrics) == len(live)  # one poll each: nobody was polled twice, dead not yet
    for m in metrics:
        assert isinstance(m, wire.Metrics) and m.site == "plant"
        assert {s.name: s.value for s in m.samples if not s.labels}["snmp.up"] == 1.0
        oper = {s.labels["ifname"]: s.value for s in m.samples if s.name == "if.oper_up"}
        assert oper == {"Gi0/1": 1.0, "Gi0/2": 0.0}
    assert published.events() == []
    assert service.poller.targets[0].up is None  # the dead one's poll never completed


def test_devices_known_down_cannot_starve_live_ones(snmpsim: Snmpsim) -> None:
    """Ten dead devices that failed before, two request slots: the live ones still go first."""
    dead = [{"device": f"dead{i}", "host": "127.0.0.1", "port": free_udp_port(),
             "timeout": "20s", "retries": 0} for i in range(10)]
    live = [_target(snmpsim, f"sw{i:03d}", ["system"]) for i in range(10)]
    cfg = convert(SnmpConfig, {"targets": [*dead, *live], "concurrency": 2})
    published = Published()
    poller = SnmpPoller(cfg, "plant", published)
    for st in poller.targets[:10]:
        st.up = False  # as after a failed poll

    async def run() -> list[str]:
        await poller.open()
        try:
            polls = [asyncio.create_task(poller.poll(st)) for st in poller.targets]
            live_done = await asyncio.wait_for(asyncio.gather(*polls[10:]), 60)
            assert not any(p.done() for p in polls[:10])  # the dead still wait
            for p in polls[:10]:
                p.cancel()
            await asyncio.gather(*polls[:10], return_exceptions=True)
            return [r.device for r in live_done if r.error is None]
        finally:
            poller.close()

    assert asyncio.run(run()) == [f"sw{i:03d}" for i in range(10)]


# -- recorded walks of real devices -------------------------------------------------------

def test_eaton_ups_recorded_walk_gives_the_metrics_the_ups_rules_read(snmpsim: Snmpsim) -> None:
    """The Eaton 9PX answers XUPS-MIB only (no UPS-MIB): eaton-xups maps it to ups.* names."""
    (r,), _ = poll_round({"targets": [_target(snmpsim, "eaton", ["eaton-xups", "ups-mib"])]})
    assert r.error is None
    got = {s.name: s.value for s in r.samples if not s.labels}
    assert got["ups.charge_percent"] == 100 and got["ups.on_battery"] == 0  # normal(3)
    assert got["ups.runtime_seconds"] == 17218 and got["ups.load_percent"] == 9
    assert got["ups.ambient_temp_celsius"] == 24 and got["ups.alarms"] == 0
    assert not {s.name for s in r.samples} & {"ups.battery_status", "ups.seconds_on_battery"}


def test_storage_rows_of_a_recorded_windows_host_are_disks_only(snmpsim: Snmpsim) -> None:
    (r,), _ = poll_round({"targets": [_target(snmpsim, "winxp", ["host-resources"])]})
    assert r.error is None
    storage = {dict(k)["storage"] for k in values(r, "storage.used_percent")}
    # C:\ and Z:\ are fixed disks; D:\ is a CD-ROM, the rest hrStorageVirtualMemory / Ram
    assert {s[:3] for s in storage} == {"C:\\", "Z:\\"}
    assert {dict(k)["index"] for k in values(r, "storage.size_bytes")} == {"1", "3"}


def test_interfaces_without_ifxtable_fall_back_to_32_bit_octets(snmpsim: Snmpsim) -> None:
    """The recorded Windows XP walk has no ifXTable: ifInOctets/ifOutOctets, same names."""
    (r,), _ = poll_round({"targets": [_target(snmpsim, "winxp", ["if-mib"])]})
    assert r.error is None
    by_index = {dict(k)["ifindex"]: v for k, v in values(r, "if.in_octets_total").items()}
    assert by_index == {"1": 230095059, "65539": 911220674, "65540": 0}
    out = {dict(k)["ifindex"]: v for k, v in values(r, "if.out_octets_total").items()}
    assert out["65539"] == 21194412
    names = {dict(k)["ifname"] for k in values(r, "if.in_octets_total")}
    assert "MS TCP Loopback interface" in names  # ifDescr, as ifName is missing too


def test_interfaces_with_ifxtable_keep_the_64_bit_octets(snmpsim: Snmpsim) -> None:
    (r,), _ = poll_round({"targets": [_target(snmpsim, "linux", ["if-mib", "host-resources"])]})
    assert r.error is None
    octets = {dict(k)["ifname"]: v for k, v in values(r, "if.in_octets_total").items()}
    assert octets["eth0"] == 24167091249  # ifHCInOctets; ifInOctets would say 2692239107
    storage = {dict(k)["storage"] for k in values(r, "storage.used_percent")}
    assert storage == {"/", "/usr/local", "/export"}
