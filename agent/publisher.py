"""The agent's MQTT edge: presence (online retained, Last Will offline) and delivery of the
outage buffer.

One sender thread for the agent's lifetime moves messages from the buffer to paho, at most
`inflight` unacknowledged at a time, oldest first, and deletes each from the buffer when its
PUBACK arrives. paho's callbacks only note acks and connection changes and wake the sender
(paho calls on_publish holding its own lock, so nothing there may publish or touch the disk).
paho itself re-sends the QoS 1 messages it holds when the link comes back, so after a
reconnect the sender continues after the last row it handed over; after a restart it starts
again from the oldest row, and the collector drops whatever the broker had already taken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from fieldwatch.agent.backoff import ReconnectBackoff
from fieldwatch.agent.buffer import Outbox

from fieldwatch import __version__, wire
from fieldwatch.config import BrokerConfig
from fieldwatch.mqtt import make_client

log = logging.getLogger(__name__)

HOLD_LIMIT = 30.0  # seconds to wait for paho's own re-sends after a reconnect


class MqttPublisher:
    """Connects in the background and keeps reconnecting (backoff 0.5 s → 10 s, jittered)."""

    def __init__(self, device: str, site: str, broker: BrokerConfig, outbox: Outbox,
                 inflight: int = 100, client_id: str | None = None,
                 on_link_up: Callable[[], None] | None = None) -> None:
        self.device, self.site, self.broker = device, site, broker
        self.outbox, self.inflight, self.on_link_up = outbox, inflight, on_link_up
        self.status_topic = wire.topic(site, device, "status")
        will = wire.encode(wire.Status(device=device, site=site, state="offline", cause="lost",
                                       agent=__version__))
        self.client = make_client(client_id or f"fieldwatch-agent-{site}-{device}", broker,
                                  clean_session=True, will=(self.status_topic, will))
        self.client.max_inflight_messages_set(inflight)
        self.backoff = ReconnectBackoff(self.client)  # capped at 10 s, jittered (backoff.py)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()  # set when the buffer is empty
        self._acks: list[int] = []  # mids acknowledged, appended by paho's thread
        self._acks_lock = threading.Lock()
        self._link_up = False
        self._sent: dict[int, int] = {}  # mid -> buffer row id (sender thread only)
        self._after = 0  # highest buffer row id handed to paho
        # mids paho held when the link came back: paho re-sends them right after on_connect,
        # so nothing new is handed over until they are acknowledged (keeps the order)
        self._hold: set[int] = set()
        self._hold_since = 0.0
        self._thread = threading.Thread(target=self._run, name="fieldwatch-sender", daemon=True)

    # -- paho callbacks (network thread): note and wake, nothing else ------------------------

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            log.error("broker %s:%s refused the connection: %s", self.broker.host,
                      self.broker.port, reason)
            return
        log.info("connected to broker %s:%s", self.broker.host, self.broker.port)
        self.backoff.connected()
        online = wire.Status(device=self.device, site=self.site, state="online",
                             cause="connected", agent=__version__)
        client.publish(self.status_topic, wire.encode(online), qos=1, retain=True)
        self.connected.set()
        self._link_up = True
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object) -> None:
        # Never announce "offline" from here: only the broker's Last Will can when the link is gone.
        self.connected.clear()
        if reason.is_failure:
            log.warning("lost the broker (%s); buffering on disk, reconnecting with backoff",
                        reason)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        with self._acks_lock:
            self._acks.append(mid)
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

    def _step(self) -> None:
        with self._acks_lock:
            acks, self._acks = self._acks, []
        done = [row for mid in acks if (row := self._sent.pop(mid, None)) is not None]
        self.outbox.delete(done)
        self._hold.difference_update(acks)
        if self.outbox.count == 0:
            self._drained.set()
        else:
            self._drained.clear()
        if self._link_up:
            self._link_up = False
            self._hold, self._hold_since = set(self._sent), time.monotonic()
            if self.on_link_up is not None:
                self.on_link_up()
        if not self.connected.is_set():
            return
        if self._hold:
            if time.monotonic() - self._hold_since < HOLD_LIMIT:
                return
            # paho did not re-send them after all: send those rows again ourselves (the
            # collector drops any duplicate by its sequence number)
            log.warning("%d messages unacknowledged %ss after reconnecting; re-sending",
                        len(self._sent), HOLD_LIMIT)
            self._after = min(self._sent.values()) - 1
            self._sent.clear()
            self._hold.clear()
        room = self.inflight - len(self._sent)
        if room <= 0:
            return
        for entry in self.outbox.peek(self._after, room):
            info = self.client.publish(entry.topic, entry.payload, qos=1, retain=entry.retain)
            # paho keeps a QoS 1 message it could not send yet (link just dropped) and sends
            # it on reconnect, so it is in flight either way.
            self._sent[info.mid] = entry.id
            self._after = entry.id
        self.outbox.protect_upto = self._after
        if len(self._sent) < self.inflight and self.outbox.count > len(self._sent):
            self._wake.set()  # more backlog and room: keep going without waiting

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
        with self._acks_lock:
            acks, self._acks = self._acks, []
        self.outbox.delete([row for mid in acks if (row := self._sent.pop(mid, None))])
