"""The collector daemon: ingest → queue → worker (rules, store), wired once from config."""

from __future__ import annotations

import logging
import queue

from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.diag.dispatch import RES_TOPIC, diag_dispatcher
from fieldwatch.collector.ingest import MqttIngest, Received
from fieldwatch.collector.pipeline import Worker
from fieldwatch.collector.rules.engine import Engine
from fieldwatch.collector.rules.loader import load_rules
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.db import db_url, open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, cfg: CollectorConfig, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.ruleset = load_rules(cfg.rules)  # RuleError: refuse to start on broken rules
        self.store = Store(open_engine(db_url(cfg.db)))
        self.stats = Stats()
        self.queue: queue.Queue[Received] = queue.Queue(maxsize=cfg.queue_max)
        self.diag = diag_dispatcher(cfg, self.store.engine, self.clock, self.stats,
                                    lambda: self.ruleset, lambda t, p: self.ingest.client.publish(
                                        t, p, qos=1))
        self.worker = Worker(self.queue, self.store, Engine(self.ruleset), self.clock,
                             self.stats, cfg.batch_max, cfg.batch_wait,
                             on_opened=self.diag.on_tickets_opened if self.diag else None)
        self.ingest = MqttIngest(cfg.broker, cfg.client_id, self.queue, self.stats, self.clock,
                                 cfg.max_message_bytes,
                                 handlers={RES_TOPIC: self.diag.on_message} if self.diag else None)

    def health(self) -> dict[str, object]:
        return {"mqtt_connected": self.ingest.connected.is_set(), "queued": self.queue.qsize(),
                "rules": len(self.ruleset.rules)}

    def start(self) -> None:
        log.info("collector: %d rules, store %s", len(self.ruleset.rules),
                 self.store.engine.url.render_as_string(hide_password=True))
        self.worker.start()
        if self.diag is not None:
            self.diag.start()
        self.ingest.start()

    def stop(self) -> None:
        """Stop taking messages, then store everything already taken."""
        self.ingest.stop()
        self.worker.stop()
        if self.diag is not None:
            self.diag.stop()
        self.store.engine.dispose()
