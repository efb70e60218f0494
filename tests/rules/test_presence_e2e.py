"""Issue 12 through the real collector over a private Mosquitto: a series that stops ends its
ticket as "no data"; a dead agent's SNMP targets add no tickets of their own (it is their
parent); a device known only from a retained status someone left on the broker opens none."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from tests.conftest import _require
from tests.e2e.procs import API_AUTH, Proc, start_collector, wait_for, write_rules, write_yaml
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e


def _client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _send(c: mqtt.Client, msg: wire.Message, kind: str, retain: bool = False) -> None:
    c.publish(wire.topic(msg.site, msg.device, kind), wire.encode(msg), qos=1,
              retain=retain).wait_for_publish(5)


def _close(c: mqtt.Client) -> None:
    c.loop_stop()
    c.disconnect()


def _store(tmp: Path) -> Store:
    return Store(open_engine(f"sqlite:///{tmp / 'fieldwatch.db'}", create=False))


STALE = """
rules:
  - name: pump_hot
    metric: pump.temp
    when: value > 80
    severity: P1
    ticket: {title: "Pump {device} at {value:.0f}"}
"""


def test_a_ticket_whose_series_stops_resolves_as_no_data(tmp_path: Path,
                                                        mosquitto: Mosquitto) -> None:
    collector, _ = start_collector(tmp_path, mosquitto.port, write_rules(tmp_path, "r.yaml",
                                                                         STALE))
    store = _store(tmp_path)
    pub = _client(mosquitto.port, "stale-pub")
    try:
        for seq in range(1, 7):  # every 0.3 s: the collector estimates that interval...
            _send(pub, wire.Metrics(device="p1", site="plant", seq=seq, ts=time.time(),
                                    samples=[wire.Sample("pump.temp", 95.0)]), "metrics")
            time.sleep(0.3)
        [t] = wait_for(store.list_tickets)
        # ...and then nothing: three intervals later the series is stale
        wait_for(lambda: store.get_ticket(t["id"])["state"] == "resolved", 20)
        [ev] = [e for e in store.timeline(t["id"]) if e["kind"] == "resolved"]
        assert ev["reason"].startswith("no data: no pump.temp sample for")
        assert "last value 95" in ev["reason"]
    finally:
        _close(pub)
        store.engine.dispose()
        assert collector.stop() == 0


POLLED = """
rules:
  - name: offline
    kind: offline
    no_data_for: 3s
    hold: 1s
    severity: P1
    ticket: {title: "{device} is offline", description: "{reason}"}
  - name: uptime_missing
    kind: absent
    metric: snmp.uptime_seconds
    for: 2s
    hold: 1s
    severity: P3
    ticket: {title: "no uptime from {device}"}
"""
OFF = {"enabled": False}
SOURCES = ("cpu", "load", "memory", "disks", "diskio", "net", "netlink", "sensors", "battery",
           "host", "processes", "smart")


def test_a_dead_snmp_poller_is_one_ticket_its_targets_are_behind_it(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    _require("snmpd")
    _require("snmpget")
    from tests.snmp.agents import COMMUNITY, Snmpd

    snmpd = Snmpd(tmp_path / "snmpd").start()
    collector, base = start_collector(tmp_path, mosquitto.port,
                                      write_rules(tmp_path, "r.yaml", POLLED))
    cfg = write_yaml(tmp_path / "agent.yaml", {
        "device": "agent-01", "site": "plant", "interval": "500ms",
        "broker": {"host": "127.0.0.1", "port": mosquitto.port},
        "state_dir": str(tmp_path / "state"), "inventory": OFF,
        "sources": {name: OFF for name in SOURCES},
        "snmp": {"interval": "500ms", "targets": [
            {"device": "sw-e2e", "site": "branch", "host": "127.0.0.1", "port": snmpd.port,
             "community": COMMUNITY, "profiles": ["system"]}]}})
    agent = Proc(["agent", "run", "--config", str(cfg)], tmp_path / "agent.log")
    store = _store(tmp_path)
    try:
        def polled() -> bool:
            devices = httpx.get(f"{base}/api/v1/devices", headers=API_AUTH).json()
            return any(d["device"] == "sw-e2e" and d["last_seq"] and (d["inventory"] or {}).get(
                "polled_by") == "plant/agent-01" for d in devices)

        wait_for(polled, 30)
        agent.stop(signal.SIGKILL)  # dies: the broker publishes its Last Will
        [t] = wait_for(store.list_tickets, 20)
        assert (t["device"], t["rule"]) == ("agent-01", "offline")

        def muted() -> dict[str, dict]:
            rows = httpx.get(f"{base}/api/v1/muted", headers=API_AUTH).json()
            return {m["rule"]: m for m in rows if m["device"] == "sw-e2e" and m["kind"] == "fire"}

        both = wait_for(lambda: len(m := muted()) == 2 and m, 20)
        assert both["offline"]["parent"] == "plant/agent-01"
        assert both["offline"]["suppressed_by"] == t["fingerprint"]
        # the target's missing metric is explained by the target's own outage alert
        assert both["uptime_missing"]["suppressed_by"] not in (None, t["fingerprint"])
        time.sleep(2)  # holds and `for`s long past: still the one ticket
        assert [(x["device"], x["rule"]) for x in store.list_tickets()] == [
            ("agent-01", "offline")]
    finally:
        agent.stop()
        snmpd.stop()
        store.engine.dispose()
        assert collector.stop() == 0


OFFLINE = """
rules:
  - name: offline
    kind: offline
    severity: P1
    ticket: {title: "{device} is offline"}
"""


def test_a_retained_status_left_by_someone_else_opens_no_ticket(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    other = _client(mosquitto.port, "someone-else")
    _send(other, wire.Status(device="ghost", site="plant", state="offline", cause="lost"),
          "status", retain=True)
    _close(other)
    collector, _ = start_collector(tmp_path, mosquitto.port,
                                   write_rules(tmp_path, "r.yaml", OFFLINE))
    store = _store(tmp_path)
    will = wire.Status(device="real", site="plant", state="offline", cause="lost")
    # `real`'s connection, holding its Last Will; killed below like a device losing power.
    # It subscribes to a retained probe: the probe's line on its stdout proves it is connected
    # (killed before that, it would leave no Will and the test would wait for nothing).
    probe = _client(mosquitto.port, "probe")
    probe.publish("test/probe", b"ready", qos=1, retain=True).wait_for_publish(5)
    _close(probe)
    link = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port),
                             "-i", "real-01", "-t", "test/probe", "-q", "1",
                             "--will-topic", wire.topic("plant", "real", "status"),
                             "--will-payload", wire.encode(will).decode(), "--will-qos", "1",
                             "--will-retain"], stdout=subprocess.PIPE)
    assert link.stdout is not None and select.select([link.stdout], [], [], 30)[0], (
        "mosquitto_sub did not connect within 30 s")
    assert link.stdout.readline() == b"ready\n"
    pub = _client(mosquitto.port, "real-pub")
    try:
        _send(pub, wire.Metrics(device="real", site="plant", seq=1, ts=time.time(),
                                samples=[wire.Sample("cpu.percent", 5.0)]), "metrics")
        wait_for(lambda: {d["device"] for d in store.list_devices()} == {"ghost", "real"})
        assert store.list_tickets() == []
        link.kill()  # a dead link: the broker publishes the Last Will
        [t] = wait_for(store.list_tickets)
        assert t["device"] == "real"
        time.sleep(1.5)  # ticks later: still nothing for the ghost
        assert [x["device"] for x in store.list_tickets()] == ["real"]
        db = f"sqlite:///{tmp_path / 'fieldwatch.db'}"
        out = subprocess.run([sys.executable, "-m", "fieldwatch", "devices", "list", "--db", db,
                              "--json"], capture_output=True, text=True, check=True)
        rows = {d["device"]: d for d in json.loads(out.stdout)}
        assert (rows["ghost"]["confirmed"], rows["real"]["confirmed"]) == (False, True)
        table = subprocess.run([sys.executable, "-m", "fieldwatch", "devices", "list", "--db",
                                db], capture_output=True, text=True, check=True).stdout
        assert [ln.split()[2] for ln in table.splitlines() if " ghost " in ln] == ["unconfirmed"]
    finally:
        link.kill()
        link.wait()
        link.stdout.close()
        _close(pub)
        store.engine.dispose()
        assert collector.stop() == 0
