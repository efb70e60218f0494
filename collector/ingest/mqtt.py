"""The collector's paho client: decode and enqueue, nothing else (DESIGN §4).

paho runs `on_message` on its network thread and sends the QoS 1 PUBACK after it returns, so
this stays cheap; a full queue blocks here, which is backpressure to the broker, not loss.
The session is persistent (fixed client id, clean_session false): while the collector restarts
the broker keeps its QoS 1 messages. Every callback runs inside the guard (guard.py): a bad
message is rejected and acknowledged, never left to be redelivered into the next collector.
"""

from __future__ import annotations

import logging
import queue
import threading

import paho.mqtt.client as mqtt
from fieldwatch.collector.ingest.decode import Received, decode_received
from fieldwatch.collector.ingest.guard import CallbackGuard, LogEvery
from fieldwatch.collector.stats import Stats

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
        self.client.on_connect = guard.wrap("on_connect", self._on_connect)
        self.client.on_disconnect = guard.wrap("on_disconnect", self._on_disconnect)
        self.client.on_message = guard.wrap("on_message", self._on_message)
        self.handlers = dict(handlers or {})  # topic filter → its own callback (diag/res)
        for topic_filter, callback in self.handlers.items():
            self.client.message_callback_add(topic_filter, guard.wrap(topic_filter, callback))

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        log.info("collector connected to %s:%s (session present: %s)", self.broker.host,
                 self.broker.port, flags.session_present)
        client.subscribe(SUBSCRIPTIONS + [(t, 1) for t in self.handlers])
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object) -> None:
        self.connected.clear()
        if reason.is_failure:
            self.stats.inc("broker_disconnects_total")
            log.warning("collector lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        now = self.clock.now()
        try:
            topic = message.topic
        except UnicodeDecodeError:  # MQTT forbids it and Mosquitto refuses it; still
            self._reject("<a topic>", WireFormatError("topic", "the topic is not UTF-8"))
            return
        try:
            msg = decode_received(topic, message.payload, self.max_bytes, now)
        except WireFormatError as exc:
            self._reject(topic, exc)
            return
        self.stats.inc("received_total")
        self.out.put(Received(msg, message.payload, now))

    def _reject(self, topic: str, exc: WireFormatError) -> None:
        self.stats.inc("rejected_total", exc.reason)
        quiet = self._reject_log.due()
        if quiet is not None:
            log.warning("rejected a message on %s: %s (counted in rejected_total; %d more "
                        "rejections not logged)", topic, exc, quiet)

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port,
                                  keepalive=int(self.broker.keepalive))
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
