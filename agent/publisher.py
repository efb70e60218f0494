"""The agent's MQTT edge: presence (online retained, Last Will offline) and delivery of the
outage buffer.

One sender thread for the agent's lifetime moves messages from the buffer to paho, at most
`inflight` unacknowledged at a time, oldest first, and deletes each from the buffer when its
PUBACK arrives. paho's callbacks only note acks and connection changes and wake the sender
(paho calls on_publish holding its own lock, so nothing there may publish or touch the disk).
paho itself re-sends the QoS 1 messages it holds when the link comes back, so after a
reconnect the sender continues after the last row it handed over; after a restart it starts
again from the oldest row, and the collector drops whatever the broker had already taken.

Refusals. The client asks for MQTT 5 (stepping down to 3.1.1 for a broker that does not speak
it, such as the embedded amqtt of `fieldwatch up`), because only MQTT 5 tells a refused publish
from a delivered one: a PUBACK reason code ≥ 0x80 (Mosquitto answers 0x87 when its ACL forbids
the topic). A refused message stays in the buffer, handed back to its bounds (which may drop it
like one never sent), counted per device (sent as `agent.publish_refused_total`), logged
(rate-limited) and offered again as `agent/refusals.py` decides. A message larger than the
Maximum Packet Size the broker announced is refused here, unsent: the broker would close the
connection over it, and paho would send it again on every reconnect.

Link failures: the first failed connection attempt is logged at once with host, port and
reason; paho then retries with backoff (at most backoff.CAP, 10 s, jittered) quietly, with a
reminder every LINK_LOG_EVERY while it lasts.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from fieldwatch.agent import backoff
from fieldwatch.agent.backoff import ReconnectBackoff
from fieldwatch.agent.buffer import Entry, Outbox
from fieldwatch.agent.refusals import PACKET_TOO_LARGE, Refusals, device_key

from fieldwatch import __version__, wire
from fieldwatch.config import BrokerConfig
from fieldwatch.mqtt import make_client, refuses_mqtt5, speaks_mqtt5, use_mqtt311

log = logging.getLogger(__name__)

HOLD_LIMIT = 30.0  # seconds to wait for paho's own re-sends after a reconnect
REFUSED_RETRY = 300.0  # seconds between probes of a device whose messages the broker refused
LINK_LOG_EVERY = 600.0  # a reminder while the broker stays unreachable


def publish_packet_size(topic: str, payload: bytes) -> int:
    """Bytes of an MQTT 5 QoS 1 PUBLISH without properties (what Maximum Packet Size limits)."""
    remaining = 2 + len(topic.encode()) + 2 + 1 + len(payload)
    length_bytes = 1 + (remaining >= 128) + (remaining >= 16384) + (remaining >= 2097152)
    return 1 + length_bytes + remaining


class MqttPublisher:
    """Connects in the background and keeps reconnecting (backoff 0.5 s → 10 s, jittered)."""

    def __init__(self, device: str, site: str, broker: BrokerConfig, outbox: Outbox,
                 inflight: int = 100, client_id: str | None = None,
                 on_link_up: Callable[[], None] | None = None, *, mqtt5: bool = True,
                 refused_retry: float = REFUSED_RETRY,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.device, self.site, self.broker = device, site, broker
        self.outbox, self.inflight, self.on_link_up = outbox, inflight, on_link_up
        self._now = monotonic
        self.status_topic = wire.topic(site, device, "status")
        will = wire.encode(wire.Status(device=device, site=site, state="offline", cause="lost",
                                       agent=__version__))
        self.client = make_client(client_id or f"fieldwatch-agent-{site}-{device}", broker,
                                  clean_session=True, will=(self.status_topic, will),
                                  protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311)
        self.client.max_inflight_messages_set(inflight)
        self.backoff = ReconnectBackoff(self.client)  # capped at 10 s, jittered (backoff.py)
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()  # set when the buffer is empty
        # (mid, reason code, reason), appended by paho's thread
        self._acks: list[tuple[int, int, str]] = []
        self._acks_lock = threading.Lock()
        self._link_up = False
        self._sent: dict[int, tuple[int, str]] = {}  # mid -> (buffer row id, topic); sender only
        self._after = 0  # highest buffer row id handed to paho
        # mids paho held when the link came back: paho re-sends them right after on_connect,
        # so nothing new is handed over until they are acknowledged (keeps the order)
        self._hold: set[int] = set()
        self._hold_since = 0.0
        self.refusals = Refusals(retry=refused_retry)
        self._max_packet: int | None = None  # the broker's Maximum Packet Size (MQTT 5)
        self._protocol_settled = not mqtt5  # known whether the broker speaks MQTT 5
        # a run of failed connection attempts: how many, when last logged
        self._failures = 0
        self._failure_logged = 0.0
        self._thread = threading.Thread(target=self._run, name="fieldwatch-sender", daemon=True)

    @property
    def mqtt5(self) -> bool:
        """Speaking MQTT 5, so refusals are seen (False once stepped down to 3.1.1)."""
        return bool(self.client.protocol == mqtt.MQTTv5)

    def refused_totals(self) -> dict[str, int]:
        """Publishes the broker refused since start, per `site/device`."""
        return self.refusals.totals()

    # -- paho callbacks (network thread): note and wake, nothing else ------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: object) -> None:
        self.backoff.before_attempt(client, userdata)  # the wait should this attempt fail
        if self._protocol_settled:
            return
        answer = speaks_mqtt5(self.broker)
        if answer is None:
            return  # not reachable now: paho's own attempt says why, and we ask again
        self._protocol_settled = True
        if not answer:
            self._step_down(client)

    def _step_down(self, client: mqtt.Client) -> None:
        use_mqtt311(client)
        log.info("broker %s:%s does not speak MQTT 5; using 3.1.1, under which a publish it "
                 "refuses cannot be told from one it delivers", self.broker.host,
                 self.broker.port)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            if refuses_mqtt5(client, reason):  # the probe said yes, the broker no (replaced?)
                self._step_down(client)  # paho reconnects after its backoff delay (1 s)
                return
            self._link_failed(f"refused the connection ({reason})", logging.ERROR)
            return
        self._max_packet = getattr(properties, "MaximumPacketSize", None)
        version = "5" if self.mqtt5 else "3.1.1"
        if self._failures:
            log.info("connected to broker %s:%s (MQTT %s) after %d failed attempts",
                     self.broker.host, self.broker.port, version, self._failures)
        else:
            log.info("connected to broker %s:%s (MQTT %s)", self.broker.host, self.broker.port,
                     version)
        self._failures = 0
        self.backoff.connected()
        online = wire.Status(device=self.device, site=self.site, state="online",
                             cause="connected", agent=__version__)
        client.publish(self.status_topic, wire.encode(online), qos=1, retain=True)
        self.connected.set()
        self._link_up = True
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from its `except OSError:` around the attempt: that error is why
        exc = sys.exc_info()[1]
        self._link_failed(f"connection failed ({exc or 'no reason given'})", logging.WARNING)

    def _link_failed(self, why: str, level: int) -> None:
        """The first failure of a run is logged at once; then quiet, but for a reminder."""
        self._failures += 1
        now = self._now()
        if self._failures == 1:
            log.log(level, "MQTT broker %s:%s: %s; buffering on disk, retrying with backoff "
                    "(at most %g s, jittered)", self.broker.host, self.broker.port, why,
                    backoff.CAP)
        elif now - self._failure_logged >= LINK_LOG_EVERY:
            log.log(level, "MQTT broker %s:%s: still %s after %d attempts; buffering on disk",
                    self.broker.host, self.broker.port, why, self._failures)
        else:
            log.debug("MQTT broker %s:%s: %s (attempt %d)", self.broker.host, self.broker.port,
                      why, self._failures)
            return
        self._failure_logged = now

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object) -> None:
        # Never announce "offline" from here: only the broker's Last Will can when the link is gone.
        self.connected.clear()
        if reason.is_failure:
            log.warning("lost the broker %s:%s (%s); buffering on disk, reconnecting with "
                        "backoff", self.broker.host, self.broker.port, reason)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        with self._acks_lock:
            self._acks.append((mid, reason.value, str(reason)))
        self._wake.set()

    # -- the sender thread -------------------------------------------------------------------

    def wake(self) -> None:
        """Something was added to the buffer."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(5.0)  # woken by every event; the timeout is a safety net
            self._wake.clear()
            try:
                self._step()
            except Exception:  # noqa: BLE001 - the sender must outlive any one failure
                log.exception("sender step failed; retrying in 1s")
                self._stop.wait(1.0)

    def _take_acks(self) -> None:
        """Forget what the broker took; keep what it refused for another try."""
        with self._acks_lock:
            acks, self._acks = self._acks, []
        done, taken = [], set()
        for mid, code, why in acks:
            self._hold.discard(mid)
            sent = self._sent.pop(mid, None)
            if sent is None:
                continue  # our own status messages, or a mid forgotten by a re-send
            row, topic = sent
            if code >= 0x80:
                self._refuse(row, topic, code, why)
            else:
                done.append(row)
                taken.add(device_key(topic))
        self.outbox.delete(done)
        if taken and len(self.refusals):
            self.refusals.taken(taken)
        self.outbox.released = self.refusals.held()

    def _refuse(self, row: int, topic: str, code: int, why: str) -> None:
        line = self.refusals.refuse(row, topic, code, why, self._now())
        if line is not None:
            log.warning("%s", line)

    def _step(self) -> None:
        self._take_acks()
        if self.outbox.count <= len(self.refusals):  # nothing left that the broker may take
            self._drained.set()
        else:
            self._drained.clear()
        if self._link_up:
            self._link_up = False
            self._hold, self._hold_since = set(self._sent), self._now()
            if self.on_link_up is not None:
                self.on_link_up()
        if not self.connected.is_set():
            return
        if self._hold:
            if self._now() - self._hold_since < HOLD_LIMIT:
                return
            # paho did not re-send them after all: send those rows again ourselves (the
            # collector drops any duplicate by its sequence number)
            log.warning("%d messages unacknowledged %ss after reconnecting; re-sending",
                        len(self._sent), HOLD_LIMIT)
            self._after = min(row for row, _ in self._sent.values()) - 1
            self._sent.clear()
            self._hold.clear()
        room = self.inflight - len(self._sent)
        if room > 0 and len(self.refusals):
            for row in self.refusals.due(self._now()):
                for entry in self.outbox.peek(row - 1, 1):
                    if entry.id == row:  # else the bounds dropped it meanwhile
                        room -= self._hand_over(entry)
                if room <= 0:
                    break
        if room > 0:
            for entry in self.outbox.peek(self._after, room):
                self._after = entry.id
                if entry.id not in self.refusals:  # met again after a re-send: kept for its try
                    self._hand_over(entry)
        self.outbox.released = self.refusals.held()
        self.outbox.protect_upto = max(self.outbox.protect_upto, self._after)
        if len(self._sent) < self.inflight and (
                self.refusals.pending()
                or self.outbox.count > len(self._sent) + len(self.refusals)):
            self._wake.set()  # more backlog and room: keep going without waiting

    def _hand_over(self, entry: Entry) -> int:
        """Give one message to paho; 1 when it is in flight now, 0 when refused unsent."""
        limit = self._max_packet
        if limit is not None and publish_packet_size(entry.topic, entry.payload) > limit:
            self._refuse(entry.id, entry.topic, PACKET_TOO_LARGE,
                         f"larger than the broker's maximum packet size, {limit} bytes; "
                         "not sent")
            return 0
        info = self.client.publish(entry.topic, entry.payload, qos=1, retain=entry.retain)
        # paho keeps a QoS 1 message it could not send yet (link just dropped) and sends
        # it on reconnect, so it is in flight either way.
        self._sent[info.mid] = (entry.id, entry.topic)
        return 1

    def in_flight(self) -> int:
        return len(self._sent)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port,
                                  keepalive=int(self.broker.keepalive))
        self.client.loop_start()
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Clean stop: say `offline` (cause shutdown) so the collector tells it from a crash.
        Waits up to `timeout` for the buffer to drain; what is still not acknowledged then stays
        in the buffer for the next start."""
        if self.connected.is_set():
            self._wake.set()
            self._drained.wait(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout + 5)
        if self.connected.is_set():
            bye = wire.Status(device=self.device, site=self.site, state="offline",
                              cause="shutdown", agent=__version__)
            info = self.client.publish(self.status_topic, wire.encode(bye), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.warning("could not confirm the shutdown status before leaving")
        self.client.disconnect()
        self.client.loop_stop()
        self._take_acks()
