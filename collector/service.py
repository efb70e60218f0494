"""The collector daemon: ingest → queue → worker (rules, store), wired once from config;
plus the service desk's periodic tick (SLA escalations, verification closes)."""

from __future__ import annotations

import logging
import queue
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC
from typing import Any

import httpx
import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from fieldwatch.collector.cluster.handover import Handover
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.desks.runtime import DeskRuntime
from fieldwatch.collector.diag.dispatch import RES_TOPIC, diag_dispatcher
from fieldwatch.collector.history import HistoryBackend
from fieldwatch.collector.history.exporter import Exporter
from fieldwatch.collector.history.jobs import HistoryJobs, horizons
from fieldwatch.collector.history.query import EmbeddedHistory, record_horizons
from fieldwatch.collector.history.remote_query import RemoteHistory
from fieldwatch.collector.ingest import MqttIngest, Received
from fieldwatch.collector.ingest.amqp import AmqpIngest
from fieldwatch.collector.ingest.decode import pack, packed_size, unpack
from fieldwatch.collector.ingest.fairqueue import FairQueue
from fieldwatch.collector.notify.apprise_channel import StoreJournal
from fieldwatch.collector.notify.notifier import WebhookNotifier
from fieldwatch.collector.notify.runtime import build_channels
from fieldwatch.collector.pipeline import Worker
from fieldwatch.collector.rules.engine import Engine
from fieldwatch.collector.rules.loader import load_rules
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.rules.reload import RuleReloader
from fieldwatch.collector.store.db import db_url, open_engine
from fieldwatch.collector.store.failures import log_failure
from fieldwatch.collector.store.health import Health, Limits, Observed, assess
from fieldwatch.collector.store.silences import SilenceStore
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.config import load_desk
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from fieldwatch.clock import Clock, SystemClock
from fieldwatch.errors import RuleError
from fieldwatch.jsonout import device_confirmed

log = logging.getLogger(__name__)

_STATES = ("ok", "degraded", "failing")  # the health_state gauge: 0, 1, 2


class Ticker:
    """Calls `desk.tick()` every `every` seconds on APScheduler: one worker, runs missed while
    one was late coalesced, never overlapping; `stop` lets the running tick finish."""

    def __init__(self, desk: ServiceDesk, stats: Stats, every: float) -> None:
        self.desk, self.stats, self.every = desk, stats, every
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC, daemon=True)
        self.scheduler.add_job(self.run_once, "interval", seconds=every, id="desk-tick",
                               name="desk-tick")

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def run_once(self) -> None:
        try:
            r = self.desk.tick()
        except Exception as exc:  # noqa: BLE001 - a failed tick is retried next time, never fatal
            self.stats.inc("desk_tick_errors_total")
            log_failure(log, exc, "service-desk tick failed; retrying in %.0fs", self.every)
            return
        self.stats.inc("tickets_auto_closed_total", n=len(r.closed))
        self.stats.inc("sla_escalations_total", n=len(r.escalated))
        self.stats.inc("notifications_sent_total", n=r.notified)
        self.stats.inc("notifications_failed_total", n=r.notify_failed)
        self.stats.inc("sla_clock_errors_total", n=len(r.skipped))


class Collector:
    def __init__(self, cfg: CollectorConfig, clock: Clock | None = None,
                 engine: sa.Engine | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.ruleset = load_rules(cfg.rules)  # RuleError: refuse to start on broken rules
        policy = load_desk(cfg.desk)  # ConfigError: refuse to start on a broken SLA/teams file
        # `engine`: the store already opened (the CLI waits for it: liveness.open_when_up)
        self.store = Store(engine or open_engine(db_url(cfg.db)), policy)
        self.silences = SilenceStore(self.store.engine)
        self.stats = Stats()
        self.http = httpx.Client(timeout=10.0)
        self.desk = ServiceDesk(self.store, self.clock, WebhookNotifier(
            self.http, str(cfg.desk.webhook) if cfg.desk.webhook else None))
        self.ticker = Ticker(self.desk, self.stats, cfg.desk.tick)
        # fair across devices: one device's alert storm does not delay the others (fairqueue.py)
        # and compact while queued: the payload, decoded again as the worker takes it
        self.queue: queue.Queue[Received] = FairQueue(  # type: ignore[assignment]
            maxsize=cfg.queue_max, max_bytes=cfg.queue_max_bytes, size=packed_size, pack=pack,
            unpack=unpack)
        self.diag = diag_dispatcher(cfg, self.store.engine, self.clock, self.stats,
                                    lambda: self.ruleset, self._publish)
        self.worker = Worker(self.queue, self.store, Engine(self.ruleset), self.clock,
                             self.stats, cfg.batch_max, cfg.batch_wait,
                             on_opened=self.diag.on_tickets_opened if self.diag else None,
                             connected=self._connected, silences=self.silences,
                             history=cfg.history)
        self.history_jobs = HistoryJobs(self.store.engine, cfg.history, cfg.keep_raw_for,
                                        self.clock, self.stats)
        self.health_limits = Limits()  # when /healthz says degraded or failing (store/health.py)
        for name, read in (("queue_depth", self.queue.qsize),
                           ("queue_bytes", self.queue.nbytes),  # type: ignore[attr-defined]
                           ("oldest_unstored_age_seconds",
                            lambda: self.observed().oldest_unstored_age),
                           ("store_retry_seconds", lambda: self.observed().retrying_for or 0.0),
                           ("health_state", lambda: _STATES.index(self.assess().state))):
            self.stats.gauge(name, read)
        handlers = {RES_TOPIC: self.diag.on_message} if self.diag else None
        self.ingest: MqttIngest | AmqpIngest
        self.handover: Handover | None = None
        if cfg.transport == "amqp":  # cluster mode (docs/scaling.md)
            self.ingest = AmqpIngest(cfg.amqp, self.queue, self.stats, self.clock,
                                     cfg.max_message_bytes, handlers=handlers)
            self.handover = Handover(self.store, self.worker.state, self.worker.sequences,
                                     lambda: self.worker.engine, self.ingest.tokens,
                                     self.clock)
            self.worker.admit = self.handover.admit
            self.ingest.batch_lock = self.worker.batch_lock  # give partitions between batches
            self.worker.on_fenced = self._fenced
            self.stats.gauge("devices_owned", lambda: len(self.handover.owned)
                             if self.handover else 0)
        else:
            self.ingest = MqttIngest(cfg.broker, cfg.client_id, self.queue, self.stats,
                                     self.clock, cfg.max_message_bytes, handlers=handlers)
        self.reloader = RuleReloader(cfg.rules, self._apply_rules, self._rules_broken)
        self._old_hup: Any = None
        channels = build_channels(  # notifications to people: Apprise channels in the outbox
            cfg.notifications, policy.teams, StoreJournal(self.store), self.clock, self.stats,
            taken=[t.name for t in cfg.integrations.targets])
        self.desks = DeskRuntime(cfg.integrations, self.store.engine, self.clock, self.stats,
                                 owner=f"{socket.gethostname()}/{cfg.client_id}",
                                 extra=channels.desks,
                                 extra_registrations=channels.registrations)
        self.exporters = [Exporter(e, self.store.engine, self.clock, self.stats,
                                   keep_raw_for=cfg.keep_raw_for) for e in cfg.remote_write]
        self.remote_history = None if cfg.remote_query is None else RemoteHistory(
            cfg.remote_query, device_types=lambda: {  # a type matcher filters on the rules' view
                k: d.dtype for k, d in list(self.worker.state.devices.items())})

    def _fenced(self, items: Sequence[Received]) -> None:
        assert self.handover is not None and isinstance(self.ingest, AmqpIngest)
        self.ingest.let_go(self.handover.fenced(items))

    def _publish(self, topic: str, payload: bytes) -> object:
        if isinstance(self.ingest, AmqpIngest):
            return self.ingest.publish(topic, payload)
        return self.ingest.client.publish(topic, payload, qos=1)

    def _connected(self) -> bool:
        return self.ingest.connected.is_set()

    def _apply_rules(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.worker.swap_engine(Engine(ruleset))

    def _rules_broken(self, exc: RuleError) -> None:
        self.stats.inc("rules_reload_errors_total")

    def reload_rules(self) -> bool | None:
        """Check the rule files now (None: unchanged, True: reloaded, False: broken)."""
        return self.reloader.check()

    def integration_routes(self, tokens: Callable[[], Iterable[str]] | None = None
                           ) -> list[object]:
        """Alertmanager in (behind its own token) and the outbox API (behind the API's bearer
        tokens), for the app."""
        from fieldwatch.collector.desks.routes import routes

        return list(routes(self.store, self.cfg.integrations, self.clock, self.stats,
                           tokens or self.cfg.desk.api_tokens))

    def history_backend(self) -> HistoryBackend:
        """What the HTTP API's metrics routes and the desk's charts read (docs/history.md):
        the remote server when `remote_query` is set, else the embedded store."""
        if self.remote_history is not None:
            return self.remote_history
        return EmbeddedHistory(self.store.engine, horizons(self.cfg.history), self.clock)

    def observed(self) -> Observed:
        return replace(self.worker.snapshot(self.clock.now()), mqtt_connected=self._connected())

    def assess(self) -> Health:
        return assess(self.observed(), self.health_limits)

    def health(self) -> dict[str, object]:
        """/healthz: `status` ok | degraded | failing (503) with `reasons`, and the figures."""
        err = self.reloader.error
        seen = self.observed()
        return {**assess(seen, self.health_limits).as_json(),
                "mqtt_connected": seen.mqtt_connected, "queued": seen.queue_depth,
                "rules": len(self.ruleset.rules),
                "rules_error": [str(p) for p in err.problems] if err else None,
                "silences": len(self.worker.engine.silences),
                "worker_alive": seen.worker_alive,
                "oldest_unstored_age_s": round(seen.oldest_unstored_age, 3),
                "store_retrying_s": None if seen.retrying_for is None
                else round(seen.retrying_for, 3),
                "store_error": seen.store_error or None,
                "dead_letter_total": self.stats.total("dead_letter_total")}

    def start(self) -> None:
        log.info("collector: %d rules, store %s", len(self.ruleset.rules),
                 self.store.engine.url.render_as_string(hide_password=True))
        now = self.clock.now()
        if self.handover is None:  # cluster mode takes devices over as they come
            self._seed(now)
        self.worker.refresh_silences(now)
        record_horizons(self.store.engine, self.cfg.history)  # for the CLI's queries
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            self._old_hup = signal.signal(signal.SIGHUP, lambda s, f: self.reloader.request())
        self.worker.start()
        if self.diag is not None:
            self.diag.start()
        self.desks.start()
        for exporter in self.exporters:
            exporter.start()
        self.ingest.start()
        self.reloader.start()
        self.ticker.start()
        self.history_jobs.start()

    def _seed(self, now: float) -> None:
        for d in self.store.list_devices():  # silence is counted from now, status is kept
            self.worker.engine.seed_device(self.worker.state, d["site"], d["device"], now,
                                           d["status"], d["status_cause"], d["status_at"],
                                           device_confirmed(d), d["inventory"])
        restored = sum(  # open tickets' alerts resume firing: their clear resolves them
            self.worker.engine.restore(self.worker.state, t["rule"], t["site"], t["device"],
                                       t["labels"] or {}, t["opened_at"], t["last_seen"],
                                       t["last_value"] if t["last_value"] is not None else 0.0)
            for t in self.store.list_tickets("open", limit=1_000_000))
        if restored:
            log.info("resumed %d firing alerts from open tickets", restored)

    def stop(self) -> None:
        """Stop taking messages, store what was taken within `stop_timeout`, then disconnect:
        whatever is unstored by then was never acknowledged, and the broker redelivers it."""
        self.ticker.stop()
        self.history_jobs.stop()
        self.reloader.stop()
        if self._old_hup is not None:
            signal.signal(signal.SIGHUP, self._old_hup)
            self._old_hup = None
        self.ingest.pause()  # what arrives from now on stays unacknowledged at the broker
        self.worker.stop(self.cfg.stop_timeout)  # store and ack what is queued, if it can
        self.ingest.stop()
        if self.diag is not None:
            self.diag.stop()
        self.desks.stop()
        for exporter in self.exporters:
            exporter.stop()
        if self.remote_history is not None:
            self.remote_history.close()
        self.http.close()
        self.store.engine.dispose()
