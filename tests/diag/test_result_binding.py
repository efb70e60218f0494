"""A diagnostic result binds to the device the request went to (issue 19 item 7): over a real
Mosquitto, another device that learnt a request id answers first, is refused, counted and
logged, and the asked device's own answer still lands on the ticket."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.diag.config import CollectorDiagConfig
from fieldwatch.collector.diag.dispatch import RES_TOPIC, Dispatcher
from fieldwatch.collector.diag.store import DiagStore
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from fieldwatch.clock import SystemClock
from tests.diag.helpers import keypair
from tests.diag.test_store import open_ticket
from tests.e2e.procs import wait_for
from tests.servers import Mosquitto


def connected(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def subscribe(c: mqtt.Client, topic: str) -> None:
    done = threading.Event()
    c.on_subscribe = lambda *_a: done.set()
    c.subscribe(topic, qos=1)
    assert done.wait(10), f"no SUBACK for {topic}"


def answer(req: wire.DiagRequest, device: str, output: str) -> bytes:
    return wire.encode_diag(wire.DiagResult(
        device=device, site=req.site, id=req.id, check=req.check, status="ok", ts=req.issued,
        exit_code=0, output=output, ticket=req.ticket))


def test_a_result_from_another_device_is_refused_and_the_real_one_still_lands(
        tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    key, _, _ = keypair(tmp_path)
    engine = open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}")
    store = Store(engine)
    tid = open_ticket(store, 1.0)
    collector = connected(mosquitto.port, "collector")
    d = Dispatcher(DiagStore(engine), key, lambda t, p: collector.publish(t, p, qos=1),
                   SystemClock(), CollectorDiagConfig(timeout=60))
    collector.message_callback_add(RES_TOPIC, d.on_message)
    subscribe(collector, RES_TOPIC)
    # pump-02 listens to pump-01's requests (no ACL here) and answers them as itself
    heard: list[wire.DiagRequest] = []
    intruder = connected(mosquitto.port, "pump-02")
    intruder.on_message = lambda c, u, m: heard.append(wire.decode_diag_request(m.payload))
    subscribe(intruder, wire.topic("plant", "pump-01", "diag/req"))
    device = connected(mosquitto.port, "pump-01")
    d.start()
    try:
        req = d.send("plant", "pump-01", "top_processes", ticket=tid, requested_by="Ana")
        [got] = wait_for(lambda: heard, 10)
        assert got.id == req.id
        with caplog.at_level(logging.WARNING, "fieldwatch.collector.diag.dispatch"):
            intruder.publish(wire.topic("plant", "pump-02", "diag/res"),
                             answer(req, "pump-02", "all fine, says pump-02"),
                             qos=1).wait_for_publish(5)
            wait_for(lambda: d.stats.get("diag_rejected_total", "device_mismatch") == 1, 10)
        assert "plant/pump-02 answered request" in caplog.text
        assert "diag_result" not in [e["kind"] for e in store.timeline(tid)]
        device.publish(wire.topic("plant", "pump-01", "diag/res"),
                       answer(req, "pump-01", "PID 1 pumpd"), qos=1).wait_for_publish(5)
        [ev] = wait_for(lambda: [e for e in store.timeline(tid) if e["kind"] == "diag_result"],
                        10)
        assert (ev["actor"], ev["data"]["output"]) == ("agent:pump-01", "PID 1 pumpd")
        [row] = d.store.requests_of(tid)
        assert (row["status"], row["device"], row["result"]["device"]) == (
            "ok", "pump-01", "pump-01")
        assert d.stats.get("diag_results_total", "ok") == 1
    finally:
        d.stop()
        for c in (collector, intruder, device):
            c.loop_stop()
            c.disconnect()
        engine.dispose()
