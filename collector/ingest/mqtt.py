"""The collector's paho client: decode and enqueue, nothing else (DESIGN §4).

Acknowledge after commit (issues 15, 18): the client runs with paho's `manual_ack`, and each
queued message carries an `ack` that the worker calls once its batch is stored; so the broker
keeps, and redelivers after a crash or restart, every message not yet in the store. How many
unacknowledged messages the broker sends at once is its inflight window (Mosquitto's
`max_inflight_messages`, per client): that window, not the queue, bounds what is in memory,
and it must be at least a batch or two for throughput (docs/operations.md). A message
rejected at the door, or whose callback failed, is acknowledged at once (counted: never left
to be redelivered into the next collector, guard.py). The session is persistent (fixed client
id, clean_session false), so the broker keeps QoS 1 messages while the collector is away.

An ack is only sent on the connection the message came on: after a reconnect the broker
redelivers every message it has not had a PUBACK for, and reuses their packet ids, so an old
id acked on the new connection could acknowledge a different, unstored message. `pause` (at
stop) stops enqueueing: later messages stay unacknowledged and come back to the next start.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from fieldwatch.collector.ingest.decode import Received, decode_received
from fieldwatch.collector.ingest.guard import CallbackGuard, LogEvery
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import Clock
from fieldwatch.config import BrokerConfig
from fieldwatch.errors import WireFormatError
from fieldwatch.mqtt import make_client

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [(wire.topic("+", "+", kind), 1)
                 for kind in ("metrics", "status", "events", "inventory")]


class MqttIngest:
    def __init__(self, broker: BrokerConfig, client_id: str, out: queue.Queue[Received],
                 stats: Stats, clock: Clock, max_bytes: int,
                 handlers: dict[str, mqtt.CallbackOnMessage] | None = None) -> None:
        self.broker = broker
        self.out = out
        self.stats = stats
        self.clock = clock
        self.max_bytes = max_bytes
        self.connected = threading.Event()
        self._reject_log = LogEvery(5.0)  # a flood of garbage must not flood the log
        guard = CallbackGuard(stats)
        self.client = make_client(client_id, broker, clean_session=False)
        # acks follow the store's commits (module docstring); False: paho acks each message
        # as on_message returns — what the collector did before, kept for bench/ingest.py
        self.ack_after_commit = True
        self._link = 0  # which connection: bumped on every connect and disconnect
        self._link_lock = threading.Lock()
        self._paused = threading.Event()
        self.client.on_connect = guard.wrap("on_connect", self._on_connect)
        self.client.on_disconnect = guard.wrap("on_disconnect", self._on_disconnect)
        self.client.on_message = guard.wrap("on_message", self._on_message)
        self.handlers = dict(handlers or {})  # topic filter → its own callback (diag/res)
        for topic_filter, callback in self.handlers.items():
            self.client.message_callback_add(
                topic_filter, self._acking(guard.wrap(topic_filter, callback)))

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        log.info("collector connected to %s:%s (session present: %s)", self.broker.host,
                 self.broker.port, flags.session_present)
        with self._link_lock:
            self._link += 1
        client.subscribe(SUBSCRIPTIONS + [(t, 1) for t in self.handlers])
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object) -> None:
        with self._link_lock:
            self._link += 1  # acks of messages received so far would reach the wrong link
        self.connected.clear()
        if reason.is_failure:
            self.stats.inc("broker_disconnects_total")
            log.warning("collector lost the broker (%s); reconnecting", reason)

    def _acking(self, callback: mqtt.CallbackOnMessage) -> mqtt.CallbackOnMessage:
        """A topic handler (diag/res) that acks its message once it returned, as paho did."""

        @functools.wraps(callback)
        def acked(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            try:
                callback(client, userdata, message)
            finally:
                self._ack_now(message)

        return acked

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        outcome = "failed"
        try:
            outcome = self._take(message)
        finally:
            # rejected, or the callback failed: counted, and acked so it is not redelivered;
            # not queued because stopping: left unacknowledged for the next start
            if outcome in ("rejected", "failed"):
                self._ack_now(message)

    def _take(self, message: mqtt.MQTTMessage) -> str:
        """Decode and enqueue ("queued"), or reject ("rejected"); waits while the queue is
        full; "paused" when a stop began before it could be queued."""
        now = self.clock.now()
        try:
            topic = message.topic
        except UnicodeDecodeError:  # MQTT forbids it and Mosquitto refuses it; still
            self._reject("<a topic>", WireFormatError("topic", "the topic is not UTF-8"))
            return "rejected"
        try:
            msg = decode_received(topic, message.payload, self.max_bytes, now)
        except WireFormatError as exc:
            self._reject(topic, exc)
            return "rejected"
        self.stats.inc("received_total")
        item = Received(msg, message.payload, now, self._ack_later(message))
        while not self._paused.is_set():
            try:
                self.out.put(item, timeout=0.5)  # full: backpressure to the broker
                return "queued"
            except queue.Full:
                continue
        return "paused"

    def _ack_later(self, message: mqtt.MQTTMessage) -> Callable[[], None] | None:
        if message.qos == 0 or not self.ack_after_commit:
            return None
        with self._link_lock:
            link = self._link
        return functools.partial(self._ack, message.mid, message.qos, link)

    def _ack_now(self, message: mqtt.MQTTMessage) -> None:
        if message.qos > 0 and self.ack_after_commit:
            self.client.ack(message.mid, message.qos)

    def _ack(self, mid: int, qos: int, link: int) -> None:
        """From the worker thread: paho's ack only queues the PUBACK for its network thread
        (a deque append and a wake-up byte), as publish does."""
        with self._link_lock:
            if link == self._link:
                self.client.ack(mid, qos)
            else:
                self.stats.inc("acks_dropped_total")  # the broker redelivers it; dropped as dup

    def _reject(self, topic: str, exc: WireFormatError) -> None:
        self.stats.inc("rejected_total", exc.reason)
        quiet = self._reject_log.due()
        if quiet is not None:
            log.warning("rejected a message on %s: %s (counted in rejected_total; %d more "
                        "rejections not logged)", topic, exc, quiet)

    def start(self) -> None:
        self.client.manual_ack_set(self.ack_after_commit)
        self.client.connect_async(self.broker.host, self.broker.port,
                                  keepalive=int(self.broker.keepalive))
        self.client.loop_start()

    def pause(self) -> None:
        """Stop enqueueing (a stop has begun): messages from now on stay unacknowledged at
        the broker, which redelivers them to the next start. Acks still go out."""
        self._paused.set()

    def stop(self) -> None:
        self._paused.set()
        self.client.disconnect()  # after the PUBACKs already queued: paho sends in order
        self.client.loop_stop()
