"""One diagnostic from the command line: sign, send, wait for the answer, record it.

It speaks to the broker as its own short-lived client and records into the same database as
the collector; if the collector hears the same result, the store records it only once.
"""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.diag.dispatch import Dispatcher
from fieldwatch.collector.diag.store import DiagStore

from fieldwatch import signing, wire
from fieldwatch.clock import Clock
from fieldwatch.errors import ConfigError, DiagnosticRefused, Problem
from fieldwatch.mqtt import make_client


def resolve_device(store: DiagStore, name: str) -> tuple[str, str]:
    """`SITE/DEVICE`, or a DEVICE known at exactly one site."""
    if "/" in name:
        site, device = name.split("/", 1)
        return site, device
    sites = store.sites_of(name)
    if len(sites) != 1:
        raise DiagnosticRefused("unknown_device", (
            f"no device {name!r} has reported yet" if not sites else
            f"{name!r} exists at several sites ({', '.join(sites)}); write SITE/{name}"))
    return sites[0], name


def run_once(cfg: CollectorConfig, store: DiagStore, clock: Clock, site: str, device: str,
             check: str, args: dict[str, str], *, ticket: int | None, by: str,
             timeout: float) -> wire.DiagResult | None:
    if cfg.diag.private_key is None:
        raise ConfigError([Problem("<collector config>", 0, 0,
                                   "diag.private_key is not set (see `fieldwatch diag keygen`)")])
    key = signing.load_private(cfg.diag.private_key)
    res_topic = wire.topic(site, device, "diag/res")
    subscribed, answered = threading.Event(), threading.Event()
    box: list[tuple[wire.DiagResult, bytes]] = []
    want: dict[str, str] = {}
    client = make_client(f"fieldwatch-diag-{uuid.uuid4().hex[:12]}", cfg.broker)

    def on_connect(c: mqtt.Client, u: object, f: object, reason: mqtt.ReasonCode,
                   p: object) -> None:
        if not reason.is_failure:
            c.subscribe(res_topic, qos=1)

    def on_subscribe(*_a: object) -> None:
        subscribed.set()

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        try:
            res = wire.decode_diag_result(bytes(m.payload))
        except Exception:  # noqa: BLE001 - someone else's garbage: not our answer
            return
        if res.id == want.get("id") and (res.site, res.device) == (site, device):
            box.append((res, bytes(m.payload)))
            answered.set()

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, \
        on_message
    client.connect_async(cfg.broker.host, cfg.broker.port, keepalive=30)
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise ConfigError([Problem("<broker>", 0, 0, f"cannot reach the MQTT broker at "
                                                         f"{cfg.broker.host}:{cfg.broker.port}")])
        d = Dispatcher(store, key, lambda t, p: client.publish(t, p, qos=1), clock, cfg.diag)
        req = d.send(site, device, check, args, ticket=ticket, requested_by=by)
        want["id"] = req.id
        if not answered.wait(timeout):
            return None
        d.take_result(res_topic, box[0][1])
        return box[0][0]
    finally:
        client.disconnect()
        client.loop_stop()
