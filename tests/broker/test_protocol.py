"""Which MQTT version the agent speaks: `speaks_mqtt5` against real brokers (Mosquitto plain
and with the shipped TLS config, the embedded amqtt broker) and against things that are not
brokers; and paho holding to the protocol switch fieldwatch/mqtt.py relies on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from fieldwatch.broker import EmbeddedBroker, free_port
from fieldwatch.config import BrokerConfig, TlsConfig
from fieldwatch.mqtt import make_client, speaks_mqtt5, use_mqtt311
from tests.broker.deploy import release, stage
from tests.servers import Mosquitto


def test_mosquitto_speaks_mqtt5(mosquitto: Mosquitto) -> None:
    assert speaks_mqtt5(BrokerConfig(port=mosquitto.port)) is True


def test_the_shipped_tls_config_speaks_mqtt5_to_an_unauthenticated_probe(
        tmp_path: Path) -> None:
    b = stage(tmp_path / "m", {"hq/web-01": "pw"}).start()
    try:
        tls = TlsConfig(ca=b.ca)
        assert speaks_mqtt5(BrokerConfig(port=b.port, tls=tls)) is True
        # a CA that does not match: TLS fails, so the question stays open
        other = stage(tmp_path / "other", {"x/y": "pw"})
        assert speaks_mqtt5(BrokerConfig(port=b.port, tls=TlsConfig(ca=other.ca))) is None
    finally:
        b.stop()


def test_the_embedded_broker_does_not() -> None:
    broker = EmbeddedBroker()
    broker.start()
    try:
        assert speaks_mqtt5(BrokerConfig(port=broker.port)) is False
    finally:
        broker.stop()


@pytest.fixture
def server() -> Iterator[tuple[socket.socket, list[str]]]:
    """A TCP listener whose behaviour a test picks: close at once, or say nothing."""
    srv = socket.create_server(("127.0.0.1", 0))
    mode: list[str] = ["close"]
    conns: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if mode[0] == "close":
                conn.close()
            else:
                conns.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv, mode
    srv.close()
    for c in conns:
        c.close()
    t.join(5)


def test_no_answer_leaves_the_question_open(server: tuple[socket.socket, list[str]]) -> None:
    srv, mode = server
    cfg = BrokerConfig(port=srv.getsockname()[1])
    assert speaks_mqtt5(cfg) is None  # closed at once (as a full Mosquitto does)
    mode[0] = "silent"
    assert speaks_mqtt5(cfg, timeout=0.3) is None
    assert speaks_mqtt5(BrokerConfig(port=free_port())) is None  # nothing listening


def test_paho_switches_protocol_between_attempts(mosquitto: Mosquitto) -> None:
    client = make_client("switch", BrokerConfig(port=mosquitto.port), protocol=mqtt.MQTTv5)
    assert client.protocol == mqtt.MQTTv5
    seen: list[str] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode,
                   props: object) -> None:
        # Mosquitto's CONNACK carries properties only under MQTT 5
        seen.append(f"{c.protocol.name}:{rc}:{hasattr(props, 'TopicAliasMaximum')}")
        done.set()

    client.on_connect = on_connect
    for step in range(2):  # driven by hand: paho leaks a socket pair on a second loop_start
        done.clear()
        client.connect("127.0.0.1", mosquitto.port)
        for _ in range(100):
            client.loop(0.1)
            if done.is_set():
                break
        client.disconnect()
        if step == 0:
            use_mqtt311(client)
    release(client)
    assert seen == ["MQTTv5:Success:True", "MQTTv311:Success:False"]
    log = (mosquitto.dir / "mosquitto.log").read_text()
    assert "Protocol error" not in log
