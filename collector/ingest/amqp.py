"""The collector's AMQP ingest for cluster mode (docs/scaling.md): the same job as mqtt.py —
decode, enqueue, acknowledge once stored — over RabbitMQ's partition queues.

Every collector consumes every partition queue; each queue has single-active-consumer, so
RabbitMQ delivers a partition to one live collector and hands it to the next when that one's
connection goes. Unacknowledged deliveries then go to the new consumer: that is how nothing
stored-but-unacknowledged or received-but-unstored is lost (the sequence accounting drops what
was stored twice). pika is not thread-safe, so one thread owns the connection; the worker's
acks reach it through `add_callback_threadsafe`, flushed together. An ack is only sent on the
connection its delivery came on (`epoch`): delivery tags restart with every channel.

Each queued item's `ack` is an `AmqpAck`, which also says which connection (`epoch`) and
partition delivered it, for the hand-over (cluster/handover.py): the worker, the history
recorder and the rules see the same `Received` items as from MQTT.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
from fieldwatch.collector.cluster.setup import connection_params
from fieldwatch.collector.cluster.topology import (
    DIAG_RES_QUEUE,
    PARTITION_EXCHANGE,
    REROUTE_QUEUE,
    TOPIC_EXCHANGE,
    TOPIC_HEADER,
    partition_key,
    partition_queues,
    routing_key,
    topic_of,
)
from fieldwatch.collector.config import AmqpConfig
from fieldwatch.collector.ingest.decode import Received, decode_received
from fieldwatch.collector.ingest.guard import LogEvery
from fieldwatch.collector.stats import Stats
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from fieldwatch import wire
from fieldwatch.clock import Clock
from fieldwatch.errors import WireFormatError

log = logging.getLogger(__name__)

PERSISTENT = 2


@dataclass(frozen=True)
class DiagMessage:
    """What a paho-style topic handler (diag/res) reads of a message."""

    topic: str
    payload: bytes


class AmqpAck:
    """Acknowledges one delivery, from any thread; carries where it came from."""

    __slots__ = ("ingest", "epoch", "tag", "partition")

    def __init__(self, ingest: AmqpIngest, epoch: int, tag: int, partition: str) -> None:
        self.ingest, self.epoch, self.tag, self.partition = ingest, epoch, tag, partition

    def __call__(self) -> None:
        self.ingest.ack(self.epoch, self.tag)


class AmqpIngest:
    def __init__(self, cfg: AmqpConfig, out: queue.Queue[Received], stats: Stats, clock: Clock,
                 max_bytes: int,
                 handlers: dict[str, Callable[[Any, Any, Any], None]] | None = None) -> None:
        self.cfg, self.out, self.stats, self.clock = cfg, out, stats, clock
        self.max_bytes = max_bytes
        self.partitions = partition_queues(cfg.partitions)
        self.diag = next(iter((handlers or {}).values()), None)  # the diag/res handler
        self.connected = threading.Event()
        self.epoch = 0  # bumped on every connect and disconnect (read by handover.py)
        self._lock = threading.Lock()
        self._pending: list[int] = []  # tags to ack on the current connection
        self._flush_due = False
        self._conn: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._out_channel: BlockingChannel | None = None  # publishes (confirmed)
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

    def ack(self, epoch: int, tag: int) -> None:
        with self._lock:
            if epoch != self.epoch or self._conn is None:
                self.stats.inc("acks_dropped_total")  # redelivered; dropped as a duplicate
                return
            self._pending.append(tag)
            if self._flush_due:
                return
            self._flush_due = True
            conn = self._conn
        try:
            conn.add_callback_threadsafe(self._flush)
        except Exception:  # noqa: BLE001 - the connection is closing: the broker redelivers
            self.stats.inc("acks_dropped_total")

    def publish(self, topic: str, payload: bytes) -> None:
        """A message to MQTT subscribers (diagnostics requests to agents), QoS 1."""
        with self._lock:
            conn = self._conn
        if conn is None:
            raise ConnectionError("not connected to RabbitMQ")
        conn.add_callback_threadsafe(functools.partial(self._publish_now, topic, payload))

    # -- the connection's thread -------------------------------------------------------------

    def _publish_now(self, topic: str, payload: bytes) -> None:
        assert self._out_channel is not None
        self._out_channel.basic_publish(
            TOPIC_EXCHANGE, routing_key(topic), payload, BasicProperties(
                delivery_mode=PERSISTENT, headers={"x-mqtt-publish-qos": 1}))

    def _flush(self) -> None:
        with self._lock:
            tags, self._pending, self._flush_due = self._pending, [], False
        channel = self._channel
        if channel is None or not channel.is_open:
            return
        for tag in tags:
            channel.basic_ack(tag)

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
                log.warning("collector lost RabbitMQ at %s (%s); trying the next node",
                            pika.URLParameters(url).port, exc)
            finally:
                self._detach()
            self._stop.wait(self.cfg.reconnect)

    def _serve(self, url: str) -> None:
        conn = BlockingConnection(connection_params(self.cfg, url))
        try:
            channel = conn.channel()
            channel.basic_qos(prefetch_count=self.cfg.prefetch)
            out = conn.channel()
            out.confirm_delivery()  # a re-routed message is acked only once its copy is safe
            for q in self.partitions:
                channel.basic_consume(q, functools.partial(self._on_partition, q))
            channel.basic_consume(REROUTE_QUEUE, self._on_reroute)
            if self.diag is not None:
                channel.basic_consume(DIAG_RES_QUEUE, self._on_diag)
            with self._lock:
                self.epoch += 1
                self._conn, self._channel, self._out_channel = conn, channel, out
                self._pending, self._flush_due = [], False
            self.connected.set()
            log.info("collector consuming %d partitions at %s", len(self.partitions),
                     pika.URLParameters(url).port)
            while not self._stop.is_set():
                conn.process_data_events(time_limit=0.2)
            self._flush()  # the acks already given, before closing
        finally:
            if conn.is_open:
                with contextlib.suppress(Exception):  # closing a broken connection
                    conn.close()

    def _detach(self) -> None:
        with self._lock:
            self.epoch += 1  # acks of what came so far would reach the wrong channel
            self._conn = self._channel = self._out_channel = None
            self._pending, self._flush_due = [], False
        self.connected.clear()

    def _ack_now(self, channel: BlockingChannel, tag: int) -> None:
        channel.basic_ack(tag)

    def _on_partition(self, partition: str, channel: BlockingChannel, method: Basic.Deliver,
                      props: BasicProperties, body: bytes) -> None:
        headers = props.headers or {}
        topic = headers.get(TOPIC_HEADER)
        topic = topic.decode() if isinstance(topic, bytes) else topic
        now = self.clock.now()
        try:
            msg = decode_received(topic or topic_of(method.routing_key), body, self.max_bytes,
                                  now)
        except (WireFormatError, UnicodeDecodeError) as exc:
            self._reject(method.routing_key, exc)
            self._ack_now(channel, method.delivery_tag)  # rejection is final
            return
        self.stats.inc("received_total")
        item = Received(msg, body, now, AmqpAck(self, self.epoch, method.delivery_tag,
                                                partition))
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
        topic = topic_of(method.routing_key)
        try:
            site, device, _kind = wire.parse_topic(topic)
        except WireFormatError as exc:
            self._reject(method.routing_key, exc)
            self._ack_now(channel, method.delivery_tag)
            return
        assert self._out_channel is not None
        self._out_channel.basic_publish(
            PARTITION_EXCHANGE, partition_key(site, device), body, BasicProperties(
                delivery_mode=PERSISTENT, headers={TOPIC_HEADER: topic}), mandatory=True)
        self.stats.inc("rerouted_total")
        self._ack_now(channel, method.delivery_tag)

    def _on_diag(self, channel: BlockingChannel, method: Basic.Deliver,
                 props: BasicProperties, body: bytes) -> None:
        try:
            if self.diag is not None:
                self.diag(None, None, DiagMessage(topic_of(method.routing_key), body))
        finally:
            self._ack_now(channel, method.delivery_tag)

    def _reject(self, key: str, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, WireFormatError) else "topic"
        self.stats.inc("rejected_total", reason)
        quiet = self._reject_log.due()
        if quiet is not None:
            log.warning("rejected a message on %s: %s (counted in rejected_total; %d more "
                        "rejections not logged)", key, exc, quiet)

