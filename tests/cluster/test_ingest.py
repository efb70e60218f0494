"""AmqpIngest against the private cluster, in-process: every kind of message of a device reaches
the collector through the device's partition, acks go out only when called, and diagnostics
requests reach an MQTT subscriber on another node while results come back."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pika
import pytest
from fieldwatch.collector.config import AmqpConfig
from fieldwatch.collector.ingest.amqp import AmqpIngest
from fieldwatch.collector.ingest.decode import Received
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import SystemClock
from tests.cluster.procs import PARTITIONS, amqp_section, setup_topology
from tests.cluster.rabbit import RabbitCluster
from tests.e2e.procs import wait_for

pytestmark = pytest.mark.timeout(180)


def publisher(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_all_kinds_of_a_device_in_its_partition_and_acks_after_the_call(
        tmp_path: Path, rabbit: RabbitCluster) -> None:
    setup_topology(tmp_path, rabbit)
    out: queue.Queue[Received] = queue.Queue()
    results: list[tuple[str, bytes]] = []
    got_result = threading.Event()

    def on_result(client: object, userdata: object, message: object) -> None:
        results.append((message.topic, message.payload))  # type: ignore[attr-defined]
        got_result.set()

    ingest = AmqpIngest(AmqpConfig(**amqp_section(rabbit)), out, Stats(), SystemClock(),
                        1 << 20, handlers={"diag/res": on_result})
    ingest.start()
    pub = publisher(rabbit.nodes[1].mqtt_port, "t-ingest-pub")
    try:
        assert ingest.connected.wait(30)
        t = time.time()
        msgs: list[wire.Message] = []
        for d in range(12):
            dev = f"dev.{d}"  # a dot inside a level: '/' in the routing key
            msgs += [wire.Metrics(device=dev, site="hq", seq=1, ts=t,
                                  samples=[wire.Sample("x", 1.0)]),
                     wire.Status(device=dev, site="hq", state="online", ts=t),
                     wire.Inventory(device=dev, site="hq", ts=t, facts={"type": "pump"})]
        kinds = {wire.Metrics: "metrics", wire.Status: "status", wire.Inventory: "inventory"}
        for m in msgs:
            pub.publish(wire.topic(m.site, m.device, kinds[type(m)]), wire.encode(m),
                        qos=1).wait_for_publish(10)
        items = [out.get(timeout=20) for _ in msgs]
        by_device: dict[str, set[str]] = {}
        for i in items:
            by_device.setdefault(i.message.device, set()).add(i.ack.partition)  # type: ignore[union-attr]
        assert sorted(by_device) == sorted(f"dev.{d}" for d in range(12))
        assert all(len(p) == 1 for p in by_device.values())  # one partition per device
        assert len({p for ps in by_device.values() for p in ps}) > 1  # spread over several

        # nothing acked yet: the broker holds them all as unacknowledged
        conn = pika.BlockingConnection(pika.URLParameters(rabbit.nodes[2].amqp_url))
        ch = conn.channel()

        def unacked() -> int:
            return sum(ch.queue_declare(f"fieldwatch.p{i:03d}", passive=True).method
                       .message_count for i in range(PARTITIONS))

        for i in items:
            assert i.ack is not None
            i.ack()
        # acked: nothing comes back after the ingest reconnects
        ingest.stop()
        assert unacked() == 0
        conn.close()

        # diagnostics: a request from the collector reaches an agent on another node's MQTT
        ingest = AmqpIngest(AmqpConfig(**amqp_section(rabbit, 2)), out, Stats(), SystemClock(),
                            1 << 20, handlers={"diag/res": on_result})
        ingest.start()
        assert ingest.connected.wait(30)
        heard: list[bytes] = []
        agent = publisher(rabbit.nodes[0].mqtt_port, "t-ingest-agent")
        agent.on_message = lambda c, u, m: heard.append(m.payload)
        agent.subscribe(wire.topic("hq", "pump-1", "diag/req"), qos=1)
        wait_for(lambda: ingest.publish(wire.topic("hq", "pump-1", "diag/req"), b"req") or
                 heard, 15, every=1.0)
        assert heard[0] == b"req"
        agent.publish(wire.topic("hq", "pump-1", "diag/res"), b"res", qos=1)
        assert got_result.wait(15)
        assert results[0] == (wire.topic("hq", "pump-1", "diag/res"), b"res")
        agent.loop_stop()
        agent.disconnect()
    finally:
        ingest.stop()
        pub.loop_stop()
        pub.disconnect()
