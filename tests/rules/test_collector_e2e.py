"""The rule engine inside the real collector process: hot reload by file change and SIGHUP (a
broken file keeps the previous rules firing), a Last Will opening a device_offline ticket, a
silence added through the CLI muting a fault, events matched from MQTT."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from tests.e2e.procs import API_AUTH, start_collector, wait_for
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e

HOT = """
rules:
  - name: pump_hot
    metric: pump.temp
    when: value > 80
    severity: P1
    ticket: {title: "Pump {device} at {value:.0f}"}
  - name: link_down
    event: {type: snmp.trap.linkDown, labels_from: [ifIndex], clear_type: snmp.trap.linkUp}
    severity: P2
    ticket: {title: "link {labels.ifIndex} down on {device}"}
  - name: offline
    kind: offline
    severity: P1
    ticket: {title: "{device} offline", description: "{reason}"}
"""


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rules-test-pub")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq = 0

    def send(self, msg: wire.Message, kind: str) -> None:
        self.client.publish(wire.topic(msg.site, msg.device, kind), wire.encode(msg),
                            qos=1).wait_for_publish(5)

    def metric(self, device: str, value: float) -> None:
        self.seq += 1
        self.send(wire.Metrics(device=device, site="plant", seq=self.seq, ts=time.time(),
                               samples=[wire.Sample("pump.temp", value)]), "metrics")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _tickets(store: Store, rule: str) -> list[dict]:
    return [t for t in store.list_tickets() if t["rule"] == rule]


def test_reload_events_offline_and_silences(tmp_path: Path, mosquitto: Mosquitto) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "main.yaml").write_text(HOT)
    collector, base = start_collector(tmp_path, mosquitto.port, rules)
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    pub = Publisher(mosquitto.port)
    try:
        pub.metric("p1", 95)
        wait_for(lambda: _tickets(store, "pump_hot"))
        # a broken edit: reported in /healthz, the old rules keep firing
        (rules / "main.yaml").write_text(HOT.replace("value > 80", "value >> 80"))
        health = wait_for(lambda: (h := httpx.get(f"{base}/healthz").json())["rules_error"]
                          and h)
        assert "main.yaml:5:" in health["rules_error"][0]
        pub.metric("p2", 95)
        wait_for(lambda: len(_tickets(store, "pump_hot")) == 2)
        # a good edit, picked up on SIGHUP: p3 at 95 no longer fires
        (rules / "main.yaml").write_text(HOT.replace("value > 80", "value > 99"))
        collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: httpx.get(f"{base}/healthz").json()["rules_error"] is None)
        wait_for(lambda: _reloads(base) >= 1)
        pub.metric("p3", 95)
        pub.metric("p4", 100)
        wait_for(lambda: {t["device"] for t in _tickets(store, "pump_hot")} ==
                 {"p1", "p2", "p4"})

        # an SNMP trap opens a ticket, the matching linkUp resolves it
        now = time.time()
        pub.send(wire.Event(device="sw-1", site="plant", type="snmp.trap.linkDown", ts=now,
                            fields={"ifIndex": 4}), "events")
        [t] = wait_for(lambda: _tickets(store, "link_down"))
        assert t["title"] == "link 4 down on sw-1"
        pub.send(wire.Event(device="sw-1", site="plant", type="snmp.trap.linkUp", ts=now + 1,
                            fields={"ifIndex": 4}), "events")
        wait_for(lambda: _tickets(store, "link_down")[0]["state"] == "resolved")

        # a silence added with the CLI mutes the next offline; an unsilenced one opens a ticket
        import subprocess
        db = f"sqlite:///{tmp_path / 'fieldwatch.db'}"
        out = subprocess.run([sys.executable, "-m", "fieldwatch", "silences", "add", "--db", db,
                              "-m", "device=p9", "--duration", "1h", "--author", "ops",
                              "--reason", "swap"], capture_output=True, text=True, check=True)
        assert out.stdout.startswith("silence ")
        assert httpx.get(f"{base}/api/v1/silences").status_code == 401  # a token is needed
        listed = httpx.get(f"{base}/api/v1/silences", headers=API_AUTH).json()
        assert listed[0]["matchers"] == {"device": "p9"}
        wait_for(lambda: httpx.get(f"{base}/healthz").json()["silences"] == 1)
        for dev in ("p8", "p9"):
            pub.metric(dev, 1)  # one of ours: a status alone would open no ticket
            pub.send(wire.Status(device=dev, site="plant", state="offline", cause="lost"),
                     "status")
        [t] = wait_for(lambda: _tickets(store, "offline"))
        assert t["device"] == "p8" and t["description"] == "device down: connection lost " \
            "(Last Will)"
        muted = wait_for(lambda: httpx.get(f"{base}/api/v1/muted", headers=API_AUTH).json())
        assert muted[0]["device"] == "p9" and muted[0]["silence_id"]
    finally:
        pub.close()
        store.engine.dispose()
        assert collector.stop() == 0


def _reloads(base: str) -> int:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("fieldwatch_collector_rules_reloads_total "):
            return int(float(line.split()[-1]))
    return 0


SILENT = """
rules:
  - name: silent
    kind: absent
    for: 3s
    severity: P2
    ticket: {title: "{device} silent", description: "{reason}"}
"""


def test_broker_outage_blames_no_device_but_a_dead_one_is_found_after(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "silent.yaml").write_text(SILENT)
    collector, base = start_collector(tmp_path, mosquitto.port, rules)
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    pub = Publisher(mosquitto.port)
    try:
        pub.metric("alive", 1)
        pub.metric("dead", 1)
        wait_for(lambda: _stored(base) >= 2)
        pub.close()
        mosquitto.stop()
        wait_for(lambda: not httpx.get(f"{base}/healthz").json()["mqtt_connected"])
        time.sleep(6)  # the outage itself: twice the rule's 3 s, while nobody can be heard
        mosquitto.start()
        wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], 20)
        pub = Publisher(mosquitto.port)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not _tickets(store, "silent"):
            pub.metric("alive", 1)  # back right after the outage; `dead` never is
            time.sleep(0.3)
        assert [t["device"] for t in _tickets(store, "silent")] == ["dead"]
        assert "no data for" in _tickets(store, "silent")[0]["description"]
    finally:
        pub.close()
        store.engine.dispose()
        assert collector.stop() == 0


def _stored(base: str) -> int:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("fieldwatch_collector_stored_total "):
            return int(float(line.split()[-1]))
    return 0
