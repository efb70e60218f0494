"""The agent's MQTT edge: presence (online retained, Last Will offline) and QoS 1 publishing."""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt

from fieldwatch import __version__, wire
from fieldwatch.config import BrokerConfig
from fieldwatch.mqtt import make_client

log = logging.getLogger(__name__)


class MqttPublisher:
    """Connects in the background and keeps reconnecting (backoff 1 s → 60 s)."""

    def __init__(self, device: str, site: str, broker: BrokerConfig,
                 client_id: str | None = None) -> None:
        self.device, self.site, self.broker = device, site, broker
        self.status_topic = wire.topic(site, device, "status")
        will = wire.encode(wire.Status(device=device, site=site, state="offline", cause="lost",
                                       agent=__version__))
        self.client = make_client(client_id or f"fieldwatch-agent-{site}-{device}", broker,
                                  clean_session=True, will=(self.status_topic, will))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            log.error("broker %s:%s refused the connection: %s", self.broker.host,
                      self.broker.port, reason)
            return
        log.info("connected to broker %s:%s", self.broker.host, self.broker.port)
        online = wire.Status(device=self.device, site=self.site, state="online",
                             cause="connected", agent=__version__)
        client.publish(self.status_topic, wire.encode(online), qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object) -> None:
        # Never announce "offline" from here: only the broker's Last Will can when the link is gone.
        self.connected.clear()
        if reason.is_failure:
            log.warning("lost the broker (%s); reconnecting with backoff", reason)

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port,
                                  keepalive=int(self.broker.keepalive))
        self.client.loop_start()

    def publish(self, kind: str, payload: bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(wire.topic(self.site, self.device, kind), payload, qos=1,
                                   retain=retain)

    def stop(self, timeout: float = 2.0) -> None:
        """Clean stop: say `offline` (cause shutdown) so the collector tells it from a crash."""
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
