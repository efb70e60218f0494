"""The agent's diag/req edge: subscribe, hand requests to a small worker pool, reply on diag/res.

`on_message` only queues (paho's network thread must stay free); a full queue refuses new
requests as `busy` rather than piling them up. The handler (checks, probes, `cryptography`) is
built on the first request: most agents rarely get one, and it costs them no memory until then.
A request the handler fails on unexpectedly is still audited and, if it can be addressed,
refused as `internal_error`: no request goes unrecorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from fieldwatch.agent.config import AgentConfig

from fieldwatch import signing, wire
from fieldwatch.clock import Clock

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from fieldwatch.agent.diag.handler import DiagHandler

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], object]  # (kind, payload), e.g. MqttPublisher.publish


class DiagService:
    def __init__(self, make_handler: Callable[[], DiagHandler], site: str, device: str,
                 publish: Publish, workers: int, queue_max: int) -> None:
        self.make_handler, self.publish = make_handler, publish
        self.topic = wire.topic(site, device, "diag/req")
        self.queue_max = queue_max
        self.workers = workers
        self._handler: DiagHandler | None = None
        self._pool: ThreadPoolExecutor | None = None  # both made on the first request
        self._stopped = False
        self._pending = 0
        self._lock = threading.Lock()
        self._handler_lock = threading.Lock()  # building it must not hold up paho's thread
        self.failures = 0  # requests the handler failed on unexpectedly (each logged)

    @property
    def handler(self) -> DiagHandler:
        with self._handler_lock:
            if self._handler is None:
                self._handler = self.make_handler()
            return self._handler

    def attach(self, client: mqtt.Client) -> None:
        """Route this device's diag/req to us and (re)subscribe on every connect."""
        client.message_callback_add(self.topic, self._on_message)
        previous: Callable[..., object] | None = client.on_connect

        def on_connect(c: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object) -> None:
            if previous is not None:
                previous(c, userdata, flags, reason, properties)
            if not reason.is_failure:
                c.subscribe(self.topic, qos=1)

        client.on_connect = on_connect

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        with self._lock:
            if self._pending >= self.queue_max:
                busy = True
            else:
                busy = False
                self._pending += 1
            if self._pool is None and not self._stopped:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix="fieldwatch-diag")
            pool = self._pool
        try:
            if pool is not None:
                pool.submit(self._reply_busy if busy else self._work, payload)
                return
        except RuntimeError:  # the pool is shutting down
            pass
        log.info("diag: stopping; a request arrived too late to run")  # it expires unanswered

    def _reply_busy(self, payload: bytes) -> None:
        try:
            self._reply(self.handler.refuse(payload, "busy", "too many diagnostics waiting"))
        except Exception:  # noqa: BLE001 - logged; the worker must survive
            self.failures += 1
            log.exception("could not answer a request as busy")

    def _work(self, payload: bytes) -> None:
        try:
            self._reply(self.handler.handle(payload))
        except Exception as exc:  # noqa: BLE001 - a bug here must not kill the worker
            self.failures += 1
            log.exception("diagnostic request failed unexpectedly")
            self._last_resort(payload, exc)
        finally:
            with self._lock:
                self._pending -= 1

    def _last_resort(self, payload: bytes, exc: Exception) -> None:
        """Audit (and answer, if it can be addressed) a request the handler failed on."""
        try:
            self._reply(self.handler.refuse(payload, "internal_error",
                                            f"{type(exc).__name__}: {exc}"))
        except Exception:  # noqa: BLE001 - the audit log itself failing: logged, counted
            self.failures += 1
            log.exception("could not audit a request that failed")

    def _reply(self, res: wire.DiagResult | None) -> None:
        if res is not None:
            self.publish("diag/res", wire.encode_diag(res))

    def stop(self) -> None:
        with self._lock:
            self._stopped, pool = True, self._pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._handler is not None:
            self._handler.close()


def start_diag(cfg: AgentConfig, client: mqtt.Client, publish: Publish,
               clock: Clock) -> DiagService | None:
    """Build and attach the diag service for an agent config, or None when disabled."""
    d = cfg.diag
    if not d.enabled:
        return None
    keys = signing.trusted(d.trusted_keys)  # a broken key file stops the agent now

    def make_handler() -> DiagHandler:
        from fieldwatch.agent.diag.handler import DiagHandler

        return DiagHandler(d, cfg.device, cfg.site, cfg.state_dir, clock, keys)

    service = DiagService(make_handler, cfg.site, cfg.device, publish, d.workers, d.queue_max)
    service.attach(client)
    if not d.trusted_keys:
        log.warning("diag: no trusted_keys configured; every diagnostic request is refused")
    return service
