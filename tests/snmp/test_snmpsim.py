"""Against snmpsim: UPS and ENTITY-SENSOR profiles, and many agents polled on schedule."""

from __future__ import annotations

import threading
import time

from fieldwatch.agent.snmp.config import SnmpConfig
from fieldwatch.agent.snmp.service import SnmpService

from fieldwatch import wire
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
    dead_port = free_udp_port()  # nothing listens there: every request times out
    targets.append({"device": "dead", "host": "127.0.0.1", "port": dead_port,
                    "profiles": ["system", "if-mib"], "timeout": "3s", "retries": 0})
    cfg = SnmpConfig.model_validate({"targets": targets, "interval": "30s", "concurrency": 32})
    published = Published()
    dead_seen = threading.Event()
    first: dict[str, int] = {}  # device -> position of its first metrics message

    def publish(site: str, device: str, kind: str, payload: bytes) -> None:
        published(site, device, kind, payload)
        if kind == "metrics":
            first.setdefault(device, len(published))
            if device == "dead":
                dead_seen.set()

    service = SnmpService(cfg, "plant", publish)
    service.start()
    try:
        assert dead_seen.wait(30), "the dead device's poll never finished"
        deadline = time.monotonic() + 10
        while len(first) < len(targets) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop()
    assert set(first) == {*live, "dead"}
    # every live agent answered before the dead one's single timeout ran out ...
    assert max(first[d] for d in live) < first["dead"]
    # ... all within one interval: no device was polled twice in this window
    metrics = [m for _, _, k, m in published if k == "metrics"]
    assert len(metrics) == len(targets)
    for m in metrics:
        assert isinstance(m, wire.Metrics)
        up = {s.name: s.value for s in m.samples if not s.labels}["snmp.up"]
        if m.device == "dead":
            assert up == 0.0
            continue
        assert up == 1.0 and m.site == "plant"
        oper = {s.labels["ifname"]: s.value for s in m.samples if s.name == "if.oper_up"}
        assert oper == {"Gi0/1": 1.0, "Gi0/2": 0.0}
    assert [e.type for e in published.events()] == ["snmp.unreachable"]
    assert service.poller.targets[-1].up is False
