"""Issue 19 against the real thing: every crafted payload sprayed at a running collector process
(private Mosquitto), a poisoned retained inventory waiting before it starts, and afterwards a
valid message still opens a ticket, the desk still lists it, and a restart finds nothing to
choke on (every rejection was acknowledged)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import signing, wire
from tests.e2e.procs import API_AUTH, API_TOKEN, Proc, counter, wait_for, write_rules, write_yaml
from tests.ingest.crafted import DEVICE, SITE, crafted, deep, splice
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e

RULE = """
rules:
  - name: pump_hot
    metric: pump.temp_celsius
    when: value > 80
    severity: P1
    ticket: {title: "Pump {device} at {value:.0f} C"}
"""
COLLECTOR_TOPICS = ("metrics", "status", "events", "inventory")


def start_collector(tmp: Path, port: int, rules: Path, key: Path) -> tuple[Proc, str]:
    """A collector process with remote diagnostics on, so it listens on diag/res too."""
    cfg = write_yaml(tmp / "collector.yaml", {
        "broker": {"host": "127.0.0.1", "port": port}, "client_id": "fw-test-spray",
        "rules": [str(rules)], "db": f"sqlite:///{tmp / 'fieldwatch.db'}",
        "batch_wait": "10ms", "diag": {"private_key": str(key), "auto_run": False}})
    proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                tmp / "collector.log", env={"FIELDWATCH_API_TOKEN": API_TOKEN})
    base = proc.wait_output(r"HTTP API on (http://\S+)/").group(1)
    wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], 10)
    return proc, base


def reasons(base: str, name: str) -> Counter[str]:
    out: Counter[str] = Counter()
    prefix = f'fieldwatch_collector_{name}{{reason="'
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(prefix):
            out[line[len(prefix):line.index('"', len(prefix))]] = int(float(line.split()[-1]))
    return out


def test_spray_of_crafted_payloads_then_a_valid_message_opens_a_ticket(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    rules = write_rules(tmp_path, "pump.yaml", RULE)
    key, _ = signing.generate(tmp_path / "keys", "collector")
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="spray")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()

    def send(topic: str, payload: bytes, retain: bool = False) -> None:
        pub.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    # a retained inventory nested 3,000 deep waits for the collector: it used to die at start
    send(wire.topic(SITE, DEVICE, "inventory"),
         splice("inventory", time.time(), deep(3000), "facts", "x"), retain=True)
    collector, base = start_collector(tmp_path, mosquitto.port, rules, key)
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    seq = 0

    def valid_metric(value: float) -> None:
        nonlocal seq
        seq += 1
        send(wire.topic(SITE, DEVICE, "metrics"), wire.encode(wire.Metrics(
            device=DEVICE, site=SITE, seq=seq, ts=time.time(),
            samples=[wire.Sample("pump.temp_celsius", value)])))

    try:
        wait_for(lambda: counter(base, "rejected_total", "nesting") == 1)
        spray = [c for c in crafted(time.time()) if c.kind != "diag/req"]  # an agent's topic
        for c in spray:
            send(c.topic, c.payload)
        valid_metric(95.0)
        [ticket] = wait_for(store.list_tickets, 20)
        assert ticket["rule"] == "pump_hot" and ticket["device"] == DEVICE

        want = Counter(c.reason for c in spray if c.kind in COLLECTOR_TOPICS)
        want["nesting"] += 1  # the retained one
        assert reasons(base, "rejected_total") == want
        want_diag = Counter(c.reason for c in spray if c.kind == "diag/res")
        wait_for(lambda: reasons(base, "diag_rejected_total") == want_diag)  # its own thread
        assert counter(base, "callback_errors_total") == 0  # no bug needed the last resort
        assert counter(base, "stored_total") == 1
        assert counter(base, "store_errors_total") == 0
        assert collector.proc.poll() is None

        # the desk still works: nothing out of range reached the database
        listed = httpx.get(f"{base}/api/v1/tickets", headers=API_AUTH)
        assert listed.status_code == 200 and len(listed.json()) == 1
        cli = subprocess.run([sys.executable, "-m", "fieldwatch", "tickets", "list", "--json",
                              "--db", f"sqlite:///{tmp_path / 'fieldwatch.db'}"],
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert [t["id"] for t in json.loads(cli.stdout)] == [ticket["id"]]

        # a restarted collector gets only the retained inventory again (rejected once more):
        # every sprayed message was acknowledged, none is redelivered
        assert collector.stop() == 0
        collector, base = start_collector(tmp_path, mosquitto.port, rules, key)
        valid_metric(96.0)
        wait_for(lambda: counter(base, "stored_total") == 1)
        assert reasons(base, "rejected_total") == Counter({"nesting": 1})
        assert reasons(base, "diag_rejected_total") == Counter()
        assert len(store.list_tickets()) == 1
    finally:
        pub.loop_stop()
        pub.disconnect()
        assert collector.stop() == 0
        store.engine.dispose()
