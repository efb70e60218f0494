"""What the agent does with a publish the broker refuses (MQTT 5 PUBACK reason code ≥ 0x80):
the bookkeeping alone, then against a real Mosquitto whose ACL refuses a topic, against the
embedded amqtt broker (MQTT 3.1.1 only) and against no broker at all."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.agent.buffer import Outbox
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.daemon import Agent
from fieldwatch.agent.publisher import MqttPublisher, publish_packet_size
from fieldwatch.agent.refusals import NOT_AUTHORIZED, PACKET_TOO_LARGE, Refusals

from fieldwatch import wire
from fieldwatch.broker import EmbeddedBroker, free_port
from fieldwatch.clock import FakeClock
from fieldwatch.config import BrokerConfig
from fieldwatch.structs import convert
from tests.broker.deploy import release
from tests.conftest import _require
from tests.e2e.procs import wait_for
from tests.servers import Mosquitto

T = wire.topic

# -- the bookkeeping ---------------------------------------------------------------------------


def test_refused_rows_are_offered_again_when_the_broker_takes_that_device() -> None:
    r = Refusals(retry=300)
    assert r.refuse(1, T("hq", "sw-1", "metrics"), NOT_AUTHORIZED, "Not authorized", 0.0)
    r.refuse(2, T("hq", "sw-2", "metrics"), NOT_AUTHORIZED, "Not authorized", 1.0)
    r.refuse(3, T("hq", "sw-1", "events"), NOT_AUTHORIZED, "Not authorized", 2.0)
    r.refuse(4, T("hq", "sw-1", "metrics"), PACKET_TOO_LARGE, "too large", 3.0)
    assert r.held() == {1, 2, 3, 4} and r.totals() == {"hq/sw-1": 3, "hq/sw-2": 1}
    assert list(r.due(10.0)) == []
    r.taken(["hq/sw-1", "hq/other"])  # its ACL was fixed: the not-authorized ones go again
    assert list(r.due(11.0)) == [1, 3]
    assert r.held() == {2, 4}
    r.taken(["hq/sw-1"])
    assert list(r.due(12.0)) == []  # nothing twice
    r.refuse(1, T("hq", "sw-1", "metrics"), NOT_AUTHORIZED, "Not authorized", 13.0)
    r.taken(["hq/sw-1"])  # refused again, then taken again: offered again
    assert list(r.due(14.0)) == [1]


def test_a_probe_round_offers_the_oldest_of_each_device_every_retry_period() -> None:
    r = Refusals(retry=300)
    for row, dev in ((5, "a"), (6, "b"), (7, "a"), (8, "b")):
        r.refuse(row, T("hq", dev, "metrics"), PACKET_TOO_LARGE, "too large", 100.0)
    assert list(r.due(399.0)) == []
    assert list(r.due(400.0)) == [5, 6]
    assert list(r.due(401.0)) == []
    assert r.held() == {7, 8}


def test_refusals_are_logged_at_once_then_summarised_at_most_every_period() -> None:
    r = Refusals(log_every=300)
    first = r.refuse(1, T("hq", "sw-1", "metrics"), NOT_AUTHORIZED, "Not authorized", 0.0)
    assert first is not None and "refused 1 publish(es) of hq/sw-1" in first
    assert "fieldwatch agent acl" in first
    assert [r.refuse(n, T("hq", f"sw-{n}", "events"), NOT_AUTHORIZED, "x", float(n))
            for n in range(2, 9)] == [None] * 7
    summary = r.refuse(9, T("hq", "sw-9", "events"), PACKET_TOO_LARGE, "too large", 300.0)
    assert summary is not None and "refused 8 publish(es)" in summary
    assert "fieldwatch agent acl" not in summary  # not an ACL matter


# -- against a real Mosquitto ------------------------------------------------------------------

ACL = """\
topic read fieldwatch/v1/#
topic write fieldwatch/v1/hq/web-01/#
topic write fieldwatch/v1/hq/sw-1/#
"""


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    _require("mosquitto")
    acl = tmp_path / "fieldwatch.acl"
    acl.write_text(ACL)
    broker = Mosquitto(tmp_path / "mosquitto", extra=f"acl_file {acl}\nmax_packet_size 8192\n")
    broker.start()
    yield broker
    broker.stop()


class Listener:
    """A subscriber that keeps what arrives on fieldwatch/v1/#."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[str, bytes]] = []
        ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.c.on_connect = lambda c, *a: c.subscribe("fieldwatch/v1/#", 1)
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, bytes(m.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert ready.wait(10)

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p in list(self.got) if t == topic]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
        release(self.c)


def _agent(tmp_path: Path, port: int) -> Agent:
    off = {"enabled": False}
    return Agent(convert(AgentConfig, {
        "device": "web-01", "site": "hq", "interval": "200ms", "state_dir": tmp_path / "state",
        "broker": {"host": "127.0.0.1", "port": port}, "diag": off, "inventory": off,
        "sources": {k: off for k in ("cpu", "load", "memory", "disks", "diskio", "net",
                                     "netlink", "sensors", "battery", "host", "processes",
                                     "smart")}}))


def _event(device: str, n: int) -> bytes:
    return wire.encode(wire.Event(device=device, site="hq", type="t", ts=1.0 + n,
                                  fields={"n": n}))


def _refused_sample(payload: bytes) -> float | None:
    msg = wire.decode(payload)
    assert isinstance(msg, wire.Metrics)
    return next((s.value for s in msg.samples if s.name == "agent.publish_refused_total"), None)


def test_a_refused_publish_is_kept_counted_logged_and_sent_once_the_acl_allows_it(
        tmp_path: Path, acl_broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    listener = Listener(acl_broker.port)
    agent = _agent(tmp_path, acl_broker.port)
    metrics = T("hq", "web-01", "metrics")
    try:
        with caplog.at_level(logging.INFO):
            agent.start()
            wait_for(lambda: "(MQTT 5)" in caplog.text, 10)
            agent.publish_as("hq", "sw-1", "events", _event("sw-1", 0))  # allowed
            for n in (1, 2):
                agent.publish_as("hq", "sw-2", "events", _event("sw-2", n))  # not allowed
            wait_for(lambda: agent.publisher.refused_totals() == {"hq/sw-2": 2}, 10)
            # kept in the buffer, and reported with the device's own metrics
            assert agent.outbox.count == 2
            wait_for(lambda: _refused_sample(listener.payloads(metrics)[-1]) == 2, 10)
        assert listener.payloads(T("hq", "sw-2", "events")) == []
        assert listener.payloads(T("hq", "sw-1", "events")) == [_event("sw-1", 0)]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings  # the first at once; the second waits its turn
        assert "refused 1 publish(es) of hq/sw-2" in warnings[0]
        assert T("hq", "sw-2", "events") in warnings[0] and "Not authorized" in warnings[0]

        acl = tmp_path / "fieldwatch.acl"  # the operator adds the target and reloads
        acl.write_text(ACL + "topic write fieldwatch/v1/hq/sw-2/#\n")
        assert acl_broker.proc is not None
        acl_broker.proc.send_signal(signal.SIGHUP)
        # the next message of that device goes through, and the kept ones follow it
        wait_for(lambda: _send_until_taken(agent, listener), 20)
        wait_for(lambda: {_event("sw-2", 1), _event("sw-2", 2)} <= set(
            listener.payloads(T("hq", "sw-2", "events"))), 10)
        wait_for(lambda: agent.outbox.count == 0, 10)
    finally:
        agent.stop()
        release(agent.publisher.client)
        listener.close()


def _send_until_taken(agent: Agent, listener: Listener) -> bool:
    """Mosquitto reloads its ACL a moment after SIGHUP: send a fresh event until one arrives."""
    agent.publish_as("hq", "sw-2", "events", _event("sw-2", 99))
    return _event("sw-2", 99) in listener.payloads(T("hq", "sw-2", "events"))


def test_under_mqtt_311_a_refused_publish_looks_delivered_and_is_lost(
        tmp_path: Path, acl_broker: Mosquitto) -> None:
    """Why the agent asks for MQTT 5: the same refusal under 3.1.1 is a plain PUBACK."""
    box = Outbox(tmp_path / "buffer", FakeClock())
    pub = MqttPublisher("web-01", "hq", BrokerConfig(port=acl_broker.port), box, mqtt5=False)
    try:
        pub.start()
        box.add("hq", "sw-2", T("hq", "sw-2", "events"), _event("sw-2", 1))
        pub.wake()
        wait_for(lambda: box.count == 0, 10)  # gone from the buffer, never delivered
        assert pub.refused_totals() == {}
    finally:
        pub.stop()
        release(pub.client)
        box.close()


def test_a_message_over_the_brokers_packet_size_is_refused_unsent_and_the_link_stays_up(
        tmp_path: Path, acl_broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "buffer", FakeClock())
    pub = MqttPublisher("web-01", "hq", BrokerConfig(port=acl_broker.port), box)
    listener = Listener(acl_broker.port)
    topic = T("hq", "web-01", "events")
    try:
        with caplog.at_level(logging.INFO):
            pub.start()
            wait_for(pub.connected.is_set, 10)
            # the broker takes packets up to 8192 bytes: this one is exactly that big
            fits = next(b"f" * n for n in range(8192, 0, -1)
                        if publish_packet_size(topic, b"f" * n) == 8192)
            for payload in (b"a", fits + b"x", fits, b"b"):
                box.add("hq", "web-01", topic, payload)
            pub.wake()
            wait_for(lambda: listener.payloads(topic) == [b"a", fits, b"b"], 10)
            wait_for(lambda: box.count == 1, 10)  # the last PUBACK may trail the delivery
        assert box.count == 1 and pub.refused_totals() == {"hq/web-01": 1}
        assert "larger than the broker's maximum packet size, 8192 bytes" in caplog.text
        assert "lost the broker" not in caplog.text and pub.connected.is_set()
    finally:
        pub.stop()
        release(pub.client)
        box.close()
        listener.close()


# -- brokers that speak only 3.1.1, and no broker ----------------------------------------------


def test_the_embedded_broker_gets_mqtt_311(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    broker = EmbeddedBroker()
    broker.start()
    box = Outbox(tmp_path / "buffer", FakeClock())
    pub = MqttPublisher("web-01", "hq", BrokerConfig(port=broker.port), box)
    try:
        with caplog.at_level(logging.INFO, logger="fieldwatch"):
            pub.start()
            box.add("hq", "web-01", T("hq", "web-01", "events"), _event("web-01", 1))
            pub.wake()
            wait_for(lambda: box.count == 0, 20)
        assert not pub.mqtt5
        assert "does not speak MQTT 5; using 3.1.1" in caplog.text
        assert "(MQTT 3.1.1)" in caplog.text
    finally:
        pub.stop()
        release(pub.client)
        box.close()
        broker.stop()


def test_an_unreachable_broker_is_logged_at_once_then_quietly_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there yet
    box = Outbox(tmp_path / "buffer", FakeClock())
    pub = MqttPublisher("web-01", "hq", BrokerConfig(port=port), box)
    pub.client.reconnect_delay_set(0.05, 0.1)  # many attempts in little time
    broker = None
    try:
        with caplog.at_level(logging.DEBUG, logger="fieldwatch"):
            pub.start()
            wait_for(lambda: pub._failures >= 5, 15)
            loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(loud) == 1, [r.getMessage() for r in loud]
            assert f"MQTT broker 127.0.0.1:{port}: connection failed" in loud[0].getMessage()
            assert "Connection refused" in loud[0].getMessage()
            broker = Mosquitto(tmp_path / "mosquitto", port=port).start()
            wait_for(pub.connected.is_set, 15)
        assert any(f"connected to broker 127.0.0.1:{port} (MQTT 5) after" in r.getMessage()
                   for r in caplog.records)
    finally:
        pub.stop()
        release(pub.client)
        box.close()
        if broker is not None:
            broker.stop()
