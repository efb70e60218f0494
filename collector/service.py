"""The collector daemon: ingest → queue → worker (rules, store), wired once from config."""

from __future__ import annotations

import logging
import queue
import signal
import threading
from typing import Any

from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.desks.runtime import DeskRuntime
from fieldwatch.collector.diag.dispatch import RES_TOPIC, diag_dispatcher
from fieldwatch.collector.ingest import MqttIngest, Received
from fieldwatch.collector.pipeline import Worker
from fieldwatch.collector.rules.engine import Engine
from fieldwatch.collector.rules.loader import load_rules
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.rules.reload import RuleReloader
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.db import db_url, open_engine
from fieldwatch.collector.store.silences import SilenceStore
from fieldwatch.collector.store.store import Store

from fieldwatch.clock import Clock, SystemClock
from fieldwatch.errors import RuleError

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, cfg: CollectorConfig, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.ruleset = load_rules(cfg.rules)  # RuleError: refuse to start on broken rules
        self.store = Store(open_engine(db_url(cfg.db)))
        self.silences = SilenceStore(self.store.engine)
        self.stats = Stats()
        self.queue: queue.Queue[Received] = queue.Queue(maxsize=cfg.queue_max)
        self.diag = diag_dispatcher(cfg, self.store.engine, self.clock, self.stats,
                                    lambda: self.ruleset, lambda t, p: self.ingest.client.publish(
                                        t, p, qos=1))
        self.worker = Worker(self.queue, self.store, Engine(self.ruleset), self.clock,
                             self.stats, cfg.batch_max, cfg.batch_wait,
                             on_opened=self.diag.on_tickets_opened if self.diag else None,
                             connected=self._connected, silences=self.silences)
        self.ingest = MqttIngest(cfg.broker, cfg.client_id, self.queue, self.stats, self.clock,
                                 cfg.max_message_bytes,
                                 handlers={RES_TOPIC: self.diag.on_message} if self.diag else None)
        self.reloader = RuleReloader(cfg.rules, self._apply_rules, self._rules_broken)
        self._old_hup: Any = None
        self.desks = DeskRuntime(cfg.integrations, self.store.engine, self.clock, self.stats)

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

    def integration_routes(self) -> list[object]:
        """Alertmanager in and the outbox API, for the HTTP app."""
        from fieldwatch.collector.desks.routes import routes

        return list(routes(self.store, self.cfg.integrations, self.clock, self.stats))

    def health(self) -> dict[str, object]:
        err = self.reloader.error
        return {"mqtt_connected": self.ingest.connected.is_set(), "queued": self.queue.qsize(),
                "rules": len(self.ruleset.rules),
                "rules_error": [str(p) for p in err.problems] if err else None,
                "silences": len(self.worker.engine.silences)}

    def start(self) -> None:
        log.info("collector: %d rules, store %s", len(self.ruleset.rules),
                 self.store.engine.url.render_as_string(hide_password=True))
        now = self.clock.now()
        for d in self.store.list_devices():  # silence is counted from now, status is kept
            self.worker.engine.seed_device(self.worker.state, d["site"], d["device"], now,
                                           d["status"], d["status_cause"], d["status_at"])
        self.worker.refresh_silences(now)
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            self._old_hup = signal.signal(signal.SIGHUP, lambda s, f: self.reloader.request())
        self.worker.start()
        if self.diag is not None:
            self.diag.start()
        self.desks.start()
        self.ingest.start()
        self.reloader.start()

    def stop(self) -> None:
        """Stop taking messages, then store everything already taken."""
        self.reloader.stop()
        if self._old_hup is not None:
            signal.signal(signal.SIGHUP, self._old_hup)
            self._old_hup = None
        self.ingest.stop()
        self.worker.stop()
        if self.diag is not None:
            self.diag.stop()
        self.desks.stop()
        self.store.engine.dispose()
