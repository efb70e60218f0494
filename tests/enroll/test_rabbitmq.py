"""The RabbitMQ provisioner against a private RabbitMQ node (management + MQTT plugins): an
enrolled device publishes under its own topics over MQTT, is cut off when it publishes for
another device, reads its own diagnostics requests only, and is gone at once when retired."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.enroll.acl import DeviceAcl, parse_targets
from fieldwatch.collector.enroll.brokers import RabbitMQProvisioner

from fieldwatch import wire
from tests.broker.deploy import release
from tests.conftest import _require
from tests.e2e.procs import wait_for
from tests.enroll.rabbit import ADMIN, RabbitNode

pytestmark = pytest.mark.e2e
T = wire.topic


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    _require("rabbitmq-server")
    n = RabbitNode(tmp_path_factory.mktemp("rabbit")).start()
    yield n
    n.stop()


class Mqtt:
    """A paho 3.1.1 client (RabbitMQ 3.10's MQTT plugin speaks 3.1.1) that records events."""

    def __init__(self, port: int, user: str, password: str, client_id: str) -> None:
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        self.c.username_pw_set(user, password)
        self.connack: mqtt.ReasonCode | None = None
        self.answered, self.subscribed = threading.Event(), threading.Event()
        self.got: list[tuple[str, bytes]] = []
        self.gone = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *a: self.gone.set()
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, bytes(m.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.answered.wait(15), "no CONNACK"

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode,
                    p: object) -> None:
        self.connack = rc
        self.answered.set()

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.c.subscribe(topic, qos=1)
        assert self.subscribed.wait(10)

    def publish(self, topic: str, payload: bytes = b"x") -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
        release(self.c)


def test_rabbitmq_enrollment_grants_own_topics_and_retire_cuts_off(node: RabbitNode) -> None:
    p = RabbitMQProvisioner(node.url, *ADMIN)
    acl = DeviceAcl("hq", "poller-1", parse_targets("core-sw-1", "hq"))
    p.provision("hq/poller-1~1", "dev-pw", acl)
    p.provision("hq/web-02~1", "other-pw", DeviceAcl("hq", "web-02"))
    assert {"hq/poller-1~1", "hq/web-02~1"} <= p.usernames()
    collector = Mqtt(node.mqtt, *ADMIN, "collector")
    dev = Mqtt(node.mqtt, "hq/poller-1~1", "dev-pw", "dev")
    try:
        assert collector.connack is not None and not collector.connack.is_failure
        assert dev.connack is not None and not dev.connack.is_failure
        collector.subscribe("fieldwatch/v1/#")
        dev.subscribe(T("hq", "poller-1", "diag/req"))
        for t in (T("hq", "poller-1", "metrics"), T("hq", "core-sw-1", "events")):
            dev.publish(t, t.encode())
        collector.publish(T("hq", "poller-1", "diag/req"), b"req")
        wait_for(lambda: len(collector.got) >= 3 and dev.got, 15)
        assert dev.got == [(T("hq", "poller-1", "diag/req"), b"req")]
        # publishing for a device it does not speak for: RabbitMQ 3.10 (MQTT 3.1.1) closes
        # the connection, and nothing is delivered
        dev.c.publish(T("hq", "web-02", "metrics"), b"forged", qos=1)
        assert dev.gone.wait(15)
        time.sleep(0.3)
        assert (T("hq", "web-02", "metrics"), b"forged") not in collector.got
        # a subscription beyond its own requests is refused (SUBACK failure, or cut off)
        again = Mqtt(node.mqtt, "hq/poller-1~1", "dev-pw", "dev2")
        refused: list[object] = []
        again.c.on_subscribe = lambda c, u, mid, rcs, props: refused.extend(rcs)
        again.c.subscribe("fieldwatch/v1/#", qos=1)
        wait_for(lambda: refused or again.gone.is_set(), 15)
        assert again.gone.is_set() or all(rc.is_failure for rc in refused)  # type: ignore[attr-defined]
        again.close()
        # retire: the live connection is closed and the next connect refused
        live = Mqtt(node.mqtt, "hq/poller-1~1", "dev-pw", "dev3")
        assert live.connack is not None and not live.connack.is_failure
        p.remove(["hq/poller-1~1"])
        assert live.gone.wait(15)
        live.close()
        after = Mqtt(node.mqtt, "hq/poller-1~1", "dev-pw", "dev4")
        assert after.connack is not None and after.connack.is_failure
        after.close()
        assert "hq/poller-1~1" not in p.usernames()
        p.remove(["hq/poller-1~1"])  # a second retire is no error
    finally:
        dev.close()
        collector.close()
        p.close()


def test_rabbit_topic_permissions_are_literal() -> None:
    from fieldwatch.collector.enroll.brokers import rabbit_permissions

    perms = rabbit_permissions(DeviceAcl("hq", "web-01"))
    assert perms["exchange"] == "amq.topic"
    assert r"fieldwatch\.v1\.hq\.web\-01\.metrics" in perms["write"]
    assert perms["read"] == r"^(fieldwatch\.v1\.hq\.web\-01\.diag\.req)$"
    assert Path  # typing import kept for fixtures
