"""The RabbitMQ topology of cluster mode, as data: which exchanges, queues and bindings.

Agents publish MQTT to the `rabbitmq_mqtt` plugin, which maps topic `a/b/c` to routing key
`a.b.c` on `amq.topic`; a `.` inside a site or device id stays a `.`, so bindings match the ids
with `#` and end on the kind. Metrics are partitioned by device
through a consistent-hash exchange into N quorum queues with single-active-consumer, so one
device's messages always reach one collector at a time.

The consistent-hash exchange hashes the whole routing key, and the MQTT plugin of RabbitMQ 3.10
sets no header or property that names the device, so `.../status`, `.../events` and
`.../inventory` would hash apart from the same device's `.../metrics`. They therefore go to one
small re-route queue instead; the collector consuming it (single-active-consumer: one at a time)
publishes each again to the partition exchange under its device's *metrics* routing key, with
the original routing key in the `fieldwatch-key` header, and acks it only once the broker confirmed
that publish. So every kind of message of a device lands in the partition of its metrics.
Diagnostics results go to one shared queue that every collector consumes (the store records
them). Every collector also consumes `fieldwatch.members`, which nothing feeds: its consumer count
is how many collectors are alive, for sharing the partitions out (ingest/amqp.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldwatch import wire

TOPIC_EXCHANGE = "amq.topic"  # where rabbitmq_mqtt publishes
PARTITION_EXCHANGE = "fieldwatch.partition"
REROUTE_QUEUE = "fieldwatch.reroute"
DIAG_RES_QUEUE = "fieldwatch.diag.res"
MEMBERS_QUEUE = "fieldwatch.members"  # never fed: its consumer count is the live collectors
KEY_HEADER = "fieldwatch-key"  # a re-routed message's original routing key
WEIGHT = "1"  # each partition queue takes an equal share of the hash ring
REROUTED_KINDS = ("status", "events", "inventory")


def partition_queue(index: int) -> str:
    return f"fieldwatch.p{index:03d}"


def partition_queues(n: int) -> list[str]:
    return [partition_queue(i) for i in range(n)]


def routing_key(topic: str) -> str:
    """MQTT topic → AMQP routing key, as rabbitmq_mqtt 3.10 maps it: each '/' becomes '.'.
    A '.' inside a site or device id stays, so such a key has more words than levels."""
    return topic.replace("/", ".")


def topic_of(key: str) -> str | None:
    """AMQP routing key → MQTT topic when that is unambiguous (no '.' inside an id: six words
    for diag results, five for the rest); None otherwise (`topic_for` asks the payload)."""
    words = key.count(".") + 1
    if words == 5 or (words == 6 and key.endswith(".diag.res")):
        return key.replace(".", "/")
    return None


def topic_for(key: str, site: str, device: str) -> str | None:
    """The topic of a message whose payload names `site` and `device`, if `key` is exactly
    that device's key for its kind (the topic check of decode.py, for dotted ids)."""
    kind = "diag/res" if key.endswith(".diag.res") else key.rsplit(".", 1)[-1]
    topic = wire.topic(site, device, kind)
    return topic if routing_key(topic) == key else None


def partition_key(site: str, device: str) -> str:
    """The routing key every message of one device is hashed by: its metrics key."""
    return routing_key(wire.topic(site, device, "metrics"))


@dataclass(frozen=True)
class Queue:
    name: str
    single_active: bool

    @property
    def arguments(self) -> dict[str, object]:
        args: dict[str, object] = {"x-queue-type": "quorum"}
        if self.single_active:
            args["x-single-active-consumer"] = True
        return args


@dataclass(frozen=True)
class Binding:
    source: str
    destination: str
    key: str
    to_exchange: bool = False


@dataclass(frozen=True)
class Topology:
    partitions: int
    queues: tuple[Queue, ...]
    bindings: tuple[Binding, ...]


def topology(partitions: int) -> Topology:
    parts = partition_queues(partitions)
    prefix = routing_key(wire.TOPIC_ROOT) + ".#."  # fieldwatch.v1.#.: ids with dots too
    queues = (*(Queue(q, True) for q in parts), Queue(REROUTE_QUEUE, True),
              Queue(DIAG_RES_QUEUE, False), Queue(MEMBERS_QUEUE, False))
    bindings = (
        Binding(TOPIC_EXCHANGE, PARTITION_EXCHANGE, prefix + "metrics", to_exchange=True),
        *(Binding(PARTITION_EXCHANGE, q, WEIGHT) for q in parts),
        *(Binding(TOPIC_EXCHANGE, REROUTE_QUEUE, prefix + kind) for kind in REROUTED_KINDS),
        Binding(TOPIC_EXCHANGE, DIAG_RES_QUEUE, prefix + routing_key("diag/res")),
    )
    return Topology(partitions, queues, bindings)
