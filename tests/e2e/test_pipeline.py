"""Agent process → real Mosquitto → collector process → rule → ticket, and back."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from fieldwatch.agent.buffer import snapshot
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from tests.e2e.procs import counter, start_agent, start_collector, wait_for, write_rules
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e

RULE = """
rules:
  - name: pump_hot
    metric: pump.temp_celsius
    when: value > 80
    clear: value < 70
    severity: P1
    ticket: {title: "Pump {device} at {value:.0f} C"}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_rules(tmp_path, "pump.yaml", RULE)


def set_reading(textfile: Path, value: float) -> None:
    tmp = textfile / "pump.tmp"
    tmp.write_text(f"pump.temp_celsius {value}\n")
    tmp.replace(textfile / "pump.metrics")


def test_threshold_opens_one_ticket_and_recovery_resolves_it(
        tmp_path: Path, mosquitto: Mosquitto, rules_dir: Path) -> None:
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    set_reading(textfile, 40)
    collector, base = start_collector(tmp_path, mosquitto.port, rules_dir)
    agent = start_agent(tmp_path, mosquitto.port, textfile)
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    try:
        wait_for(lambda: counter(base, "stored_total") >= 3)
        assert store.list_tickets() == []
        set_reading(textfile, 95)
        [ticket] = wait_for(store.list_tickets)
        assert (ticket["rule"], ticket["device"]) == ("pump_hot", "pump-01")
        assert ticket["severity"] == "P1"
        assert ticket["title"] == "Pump pump-01 at 95 C"
        seen = counter(base, "stored_total")
        wait_for(lambda: counter(base, "stored_total") >= seen + 5)  # repeats keep coming
        [ticket] = store.list_tickets()
        assert ticket["state"] == "open" and ticket["occurrences"] >= 5
        # The collector restarts while the ticket is open: the alert resumes, so the clear
        # that comes after the restart still resolves the ticket.
        assert collector.stop() == 0
        collector, base = start_collector(tmp_path, mosquitto.port, rules_dir)
        set_reading(textfile, 50)
        wait_for(lambda: store.list_tickets()[0]["state"] == "resolved")
        assert len(store.list_tickets()) == 1
        devices = store.list_devices()
        assert [(d["device"], d["status"]) for d in devices] == [("pump-01", "online")]
        # A clean agent stop says so: the collector can tell it from a crash (Last Will).
        assert agent.stop() == 0
        wait_for(lambda: (store.list_devices()[0]["status"],
                          store.list_devices()[0]["status_cause"]) == ("offline", "shutdown"))
    finally:
        agent.stop()
        assert collector.stop() == 0
        store.engine.dispose()


def test_collector_restart_loses_no_message(
        tmp_path: Path, mosquitto: Mosquitto, rules_dir: Path) -> None:
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    set_reading(textfile, 40)
    collector, base = start_collector(tmp_path, mosquitto.port, rules_dir)
    agent = start_agent(tmp_path, mosquitto.port, textfile, interval="100ms")
    db = f"sqlite:///{tmp_path / 'fieldwatch.db'}"
    try:
        wait_for(lambda: counter(base, "stored_total") >= 5)
        assert collector.stop() == 0
        time.sleep(2.0)  # the agent keeps publishing ~20 messages into the broker's session
        collector, base = start_collector(tmp_path, mosquitto.port, rules_dir)
        wait_for(lambda: counter(base, "stored_total") >= 25)
    finally:
        assert agent.stop() == 0
    last_seq = snapshot(tmp_path / "agent-state" / "buffer").seqs[("plant", "pump-01")]
    engine = open_engine(db, create=False)
    try:
        wait_for(lambda: _seqs(engine)[-1:] == [last_seq], 10)
        seqs = _seqs(engine)
    finally:
        collector.stop()
        engine.dispose()
    assert seqs == list(range(1, last_seq + 1))  # every message, once, in order


def _seqs(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(
            "select seq from messages where kind='metrics' order by id"))]


def test_garbage_is_counted_and_the_next_valid_message_still_processed(
        tmp_path: Path, mosquitto: Mosquitto, rules_dir: Path) -> None:
    collector, base = start_collector(tmp_path, mosquitto.port, rules_dir)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="garbage")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    topic = wire.topic("plant", "pump-01", "metrics")
    try:
        for payload in (b"{not json", b"\x00" + os.urandom(511), b"x" * (1024 * 1024),
                        json.dumps({"v": 1, "kind": "metrics", "device": "other", "site": "x",
                                    "seq": 1, "ts": 1, "samples": []}).encode()):
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        good = wire.Metrics(device="pump-01", site="plant", seq=1, ts=time.time(),
                            samples=[wire.Sample("pump.temp_celsius", 99.0)])
        client.publish(topic, wire.encode(good), qos=1).wait_for_publish(5)
        wait_for(lambda: counter(base, "stored_total") == 1)
        assert counter(base, "rejected_total", "malformed") == 2
        assert counter(base, "rejected_total", "oversized") == 1
        assert counter(base, "rejected_total", "topic_mismatch") == 1
        store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
        [ticket] = wait_for(store.list_tickets)
        assert ticket["rule"] == "pump_hot"
        store.engine.dispose()
    finally:
        client.loop_stop()
        client.disconnect()
        assert collector.stop(signal.SIGINT) == 0
