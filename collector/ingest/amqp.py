"""The collector's AMQP ingest for cluster mode (docs/scaling.md): the same job as mqtt.py —
decode, enqueue, acknowledge once stored — over RabbitMQ's partition queues.

Every collector consumes every partition queue; each queue has single-active-consumer, so
RabbitMQ delivers a partition to one live collector and hands it to the next waiting one when
that one's channel goes. Unacknowledged deliveries then go to the new consumer: that is how
nothing received-but-unstored is lost, and the new owner's hand-over (cluster/handover.py)
drops as duplicates what was stored but not yet acknowledged.

Each partition is consumed on a channel of its own, and each such channel gets a `token` (a
number never reused). Giving a partition away is closing its channel: RabbitMQ requeues what
it had not been acknowledged and activates the next consumer. Every queued item's `ack` is an
`AmqpAck` naming its partition and token; the worker processes and acks an item only while
its token is still the partition's current one — so an item of a closed channel is neither
stored nor acknowledged here, but redelivered to the new owner.

Balance: RabbitMQ 3.10 makes the first consumer to subscribe active on every partition, and
single-active-consumer has no priorities there. So every `rebalance` seconds a collector counts
the live collectors (consumers of the `fieldwatch.members` queue) and gives away the partitions
it holds beyond its share, ceil(partitions / collectors), re-subscribing them at the back of the
line. It does so between two batches of the worker (`batch_lock`), so no batch of a partition
being given away is half-way to the store.

pika is not thread-safe: one thread owns the connection; the worker's acks reach it through
`add_callback_threadsafe`, flushed together.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
from fieldwatch.collector.cluster.setup import connection_params
from fieldwatch.collector.cluster.topology import (
    DIAG_RES_QUEUE,
    KEY_HEADER,
    MEMBERS_QUEUE,
    PARTITION_EXCHANGE,
    REROUTE_QUEUE,
    TOPIC_EXCHANGE,
    partition_key,
    partition_queues,
    routing_key,
    topic_for,
    topic_of,
)
from fieldwatch.collector.config import AmqpConfig
from fieldwatch.collector.ingest.decode import Received, decode_received
from fieldwatch.collector.ingest.guard import LogEvery
from fieldwatch.collector.telemetry.stats import Stats
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from fieldwatch import wire
from fieldwatch.clock import Clock
from fieldwatch.errors import WireFormatError

log = logging.getLogger(__name__)

PERSISTENT = 2
_tokens = itertools.count(1)


@dataclass(frozen=True)
class DiagMessage:
    """What a paho-style topic handler (diag/res) reads of a message."""

    topic: str
    payload: bytes


class AmqpAck:
    """Acknowledges one delivery, from any thread; says which partition and channel."""

    __slots__ = ("ingest", "partition", "token", "tag")

    def __init__(self, ingest: AmqpIngest, partition: str, token: int, tag: int) -> None:
        self.ingest, self.partition, self.token, self.tag = ingest, partition, token, tag

    def __call__(self) -> None:
        self.ingest.ack(self.partition, self.token, self.tag)


def share(partitions: int, collectors: int) -> int:
    """How many partitions one of `collectors` live collectors should hold at most."""
    return math.ceil(partitions / max(1, collectors))


def excess(active: list[str], partitions: int, collectors: int) -> list[str]:
    """The partitions to give away: those held beyond the share (the last ones held)."""
    keep = share(partitions, collectors)
    return sorted(active)[keep:] if len(active) > keep else []


class AmqpIngest:
    def __init__(self, cfg: AmqpConfig, out: queue.Queue[Received], stats: Stats, clock: Clock,
                 max_bytes: int,
                 handlers: dict[str, Callable[[Any, Any, Any], None]] | None = None) -> None:
        self.cfg, self.out, self.stats, self.clock = cfg, out, stats, clock
        self.max_bytes = max_bytes
        self.partitions = partition_queues(cfg.partitions)
        self.diag = next(iter((handlers or {}).values()), None)  # the diag/res handler
        self.connected = threading.Event()
        # the worker holds it while it processes a batch (pipeline.Worker.batch_lock)
        self.batch_lock: threading.Lock | contextlib.nullcontext[None] = contextlib.nullcontext()
        self._lock = threading.Lock()
        self._tokens: dict[str, int] = {}  # partition → token of its live channel
        self._channels: dict[str, BlockingChannel] = {}
        self._active: set[str] = set()  # partitions that delivered on their live channel
        self._pending: list[tuple[str, int, int]] = []  # (partition, token, tag) to ack
        self._flush_due = False
        self._conn: BlockingConnection | None = None
        self._control: BlockingChannel | None = None  # re-route, diag, members, publishes
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._reject_log = LogEvery(5.0)
        self._thread = threading.Thread(target=self._run, name="fieldwatch-amqp", daemon=True)

    # -- from other threads ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Stop enqueueing: later deliveries stay unacknowledged and go to another collector
        (or this one's next start). Acks still go out."""
        self._paused.set()

    def stop(self) -> None:
        self._paused.set()
        self._stop.set()
        self._thread.join(15.0)

    def tokens(self) -> dict[str, int]:
        """partition → token of the channel consuming it now (handover.py reads it)."""
        with self._lock:
            return dict(self._tokens)

    def ack(self, partition: str, token: int, tag: int) -> None:
        with self._lock:
            if self._tokens.get(partition) != token or self._conn is None:
                self.stats.inc("acks_dropped_total")  # redelivered; dropped as a duplicate
                return
            self._pending.append((partition, token, tag))
            if self._flush_due:
                return
            self._flush_due = True
            conn = self._conn
        try:
            conn.add_callback_threadsafe(self._flush)
        except Exception:  # noqa: BLE001 - the connection is closing: the broker redelivers
            self.stats.inc("acks_dropped_total")

    def let_go(self, partitions: set[str]) -> None:
        """Close these partitions' channels and queue up for them again (a fenced batch):
        their unacknowledged messages go back to the queue, for the partition's owner."""
        with self._lock:
            conn = self._conn
            tokens = {p: self._tokens[p] for p in partitions if p in self._tokens}
        if conn is not None and tokens:
            with contextlib.suppress(Exception):  # closing: the channels go with it
                conn.add_callback_threadsafe(functools.partial(self._let_go, conn, tokens))

    def publish(self, topic: str, payload: bytes) -> None:
        """A message to MQTT subscribers (diagnostics requests to agents), QoS 1."""
        with self._lock:
            conn = self._conn
        if conn is None:
            raise ConnectionError("not connected to RabbitMQ")
        conn.add_callback_threadsafe(functools.partial(self._publish_now, topic, payload))

    # -- the connection's thread -------------------------------------------------------------

    def _publish_now(self, topic: str, payload: bytes) -> None:
        assert self._control is not None
        self._control.basic_publish(
            TOPIC_EXCHANGE, routing_key(topic), payload, BasicProperties(
                # no x-mqtt-publish-qos header: rabbitmq_mqtt 3.10 wants it typed as an AMQP
                # byte, which pika cannot write, and delivers at the subscription's QoS without
                delivery_mode=PERSISTENT))

    def _flush(self) -> None:
        with self._lock:
            acks, self._pending, self._flush_due = self._pending, [], False
            tokens, channels = self._tokens, self._channels
        for partition, token, tag in acks:
            ch = channels.get(partition)
            if tokens.get(partition) == token and ch is not None and ch.is_open:
                ch.basic_ack(tag)
            else:
                self.stats.inc("acks_dropped_total")

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            url = self.cfg.urls[n % len(self.cfg.urls)]
            n += 1
            try:
                self._serve(url)
                n -= 1  # a clean return (stopping): no node to skip
            except Exception as exc:  # noqa: BLE001 - any broker failure: next node, again
                if self._stop.is_set():
                    break
                self.stats.inc("broker_disconnects_total")
                log.warning("collector lost RabbitMQ at port %s (%s); trying the next node",
                            pika.URLParameters(url).port, exc)
            finally:
                self._detach()
            self._stop.wait(self.cfg.reconnect)

    def _serve(self, url: str) -> None:
        conn = BlockingConnection(connection_params(self.cfg, url))
        try:
            with self._lock:
                self._conn = conn
            control = conn.channel()
            control.confirm_delivery()  # a re-routed message is acked once its copy is safe
            control.basic_qos(prefetch_count=self.cfg.prefetch)
            control.basic_consume(MEMBERS_QUEUE, lambda *a: None)  # counted, never fed
            control.basic_consume(REROUTE_QUEUE, self._on_reroute)
            if self.diag is not None:
                control.basic_consume(DIAG_RES_QUEUE, self._on_diag)
            self._control = control
            for p in self.partitions:
                self._subscribe(conn, p)
            self.connected.set()
            log.info("collector consuming %d partitions at port %s", len(self.partitions),
                     pika.URLParameters(url).port)
            next_balance = time.monotonic() + self.cfg.rebalance
            while not self._stop.is_set():
                conn.process_data_events(time_limit=0.2)
                if time.monotonic() >= next_balance:
                    next_balance = time.monotonic() + self.cfg.rebalance
                    self._balance(conn)
            self._flush()  # the acks already given, before closing
        finally:
            if conn.is_open:
                with contextlib.suppress(Exception):  # closing a broken connection
                    conn.close()

    def _subscribe(self, conn: BlockingConnection, partition: str) -> None:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=self.cfg.prefetch)
        token = next(_tokens)
        ch.basic_consume(partition, functools.partial(self._on_partition, partition, token))
        with self._lock:
            self._tokens[partition], self._channels[partition] = token, ch
            self._active.discard(partition)

    def _balance(self, conn: BlockingConnection) -> None:
        """Give away the partitions held beyond this collector's share (module docstring)."""
        assert self._control is not None
        members = self._control.queue_declare(MEMBERS_QUEUE, passive=True).method.consumer_count
        with self._lock:
            active = sorted(self._active)
        extra = excess(active, len(self.partitions), members)
        if not extra:
            return
        with self.batch_lock:  # between two batches: none of these is half-way stored
            for p in extra:
                with self._lock:
                    ch = self._channels.pop(p)
                    self._tokens.pop(p)  # queued items of it: dropped, redelivered elsewhere
                    self._active.discard(p)
                ch.close()  # RabbitMQ requeues its unacked messages, activates the next
        for p in extra:
            self._subscribe(conn, p)  # at the back of the line
        self.stats.inc("partitions_given_total", n=len(extra))
        log.info("gave away %d of %d partitions held (%d collectors): %s", len(extra),
                 len(active), members, ", ".join(extra))

    def _let_go(self, conn: BlockingConnection, tokens: dict[str, int]) -> None:
        gone = []
        for p, token in tokens.items():
            with self._lock:
                if self._tokens.get(p) != token:
                    continue  # already closed and reopened
                ch = self._channels.pop(p)
                self._tokens.pop(p)
                self._active.discard(p)
            ch.close()
            gone.append(p)
        for p in gone:
            self._subscribe(conn, p)
        if gone:
            log.info("let go of %s after a fenced batch", ", ".join(sorted(gone)))

    def _detach(self) -> None:
        with self._lock:
            self._conn = self._control = None
            self._tokens, self._channels, self._active = {}, {}, set()
            self._pending, self._flush_due = [], False
        self.connected.clear()

    def _on_partition(self, partition: str, token: int, channel: BlockingChannel,
                      method: Basic.Deliver, props: BasicProperties, body: bytes) -> None:
        if partition not in self._active:
            with self._lock:
                if self._tokens.get(partition) == token:
                    self._active.add(partition)
        key = (props.headers or {}).get(KEY_HEADER) or method.routing_key
        key = key.decode() if isinstance(key, bytes) else key
        now = self.clock.now()
        try:
            msg = decode_received(self._topic(key, body), body, self.max_bytes, now)
        except (WireFormatError, UnicodeDecodeError) as exc:
            self._reject(key, exc)
            channel.basic_ack(method.delivery_tag)  # rejection is final
            return
        self.stats.inc("received_total")
        item = Received(msg, body, now, AmqpAck(self, partition, token, method.delivery_tag))
        while not self._paused.is_set():
            try:
                self.out.put(item, timeout=0.5)  # full: the prefetch window stays held
                return
            except queue.Full:
                continue

    def _on_reroute(self, channel: BlockingChannel, method: Basic.Deliver,
                    props: BasicProperties, body: bytes) -> None:
        """status, events, inventory: into their device's partition (topology.py)."""
        if self._paused.is_set():
            return  # left unacknowledged: the next consumer re-routes it
        key = method.routing_key
        try:
            site, device, _kind = wire.parse_topic(self._topic(key, body))
        except (WireFormatError, UnicodeDecodeError) as exc:
            self._reject(key, exc)
            channel.basic_ack(method.delivery_tag)
            return
        channel.basic_publish(  # confirmed: returns once the broker has it
            PARTITION_EXCHANGE, partition_key(site, device), body, BasicProperties(
                delivery_mode=PERSISTENT, headers={KEY_HEADER: key}), mandatory=True)
        self.stats.inc("rerouted_total")
        channel.basic_ack(method.delivery_tag)

    def _on_diag(self, channel: BlockingChannel, method: Basic.Deliver,
                 props: BasicProperties, body: bytes) -> None:
        try:
            if self.diag is not None:
                key = method.routing_key
                topic = topic_of(key)
                if topic is None:  # a '.' in an id: the result names its device
                    res = wire.decode_diag_result(body)
                    topic = topic_for(key, res.site, res.device) or key.replace(".", "/")
                self.diag(None, None, DiagMessage(topic, body))
        except Exception:  # noqa: BLE001 - one bad result must not end the connection
            self.stats.inc("diag_result_errors_total")
            log.warning("could not take a diagnostics result on %s (acked, counted in "
                        "diag_result_errors_total)", method.routing_key, exc_info=True)
        finally:
            channel.basic_ack(method.delivery_tag)

    def _topic(self, key: str, body: bytes) -> str:
        """The MQTT topic a message was published on. A '.' inside a site or device id makes
        the routing key ambiguous (topology.py): then the payload names the device, and the
        key must be exactly that device's, as decode.py checks a topic."""
        topic = topic_of(key)
        if topic is not None:
            return topic
        msg = wire.decode(body, self.max_bytes)
        topic = topic_for(key, msg.site, msg.device)
        if topic is None:
            raise WireFormatError("topic_mismatch", f"{msg.site}/{msg.device} published as "
                                                    f"{key!r}")
        return topic

    def _reject(self, key: str, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, WireFormatError) else "topic"
        self.stats.inc("rejected_total", reason)
        quiet = self._reject_log.due()
        if quiet is not None:
            log.warning("rejected a message on %s: %s (counted in rejected_total; %d more "
                        "rejections not logged)", key, exc, quiet)
