"""The agent daemon: APScheduler calls one poll cycle per interval and hands it to the publisher."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.diag.service import start_diag
from fieldwatch.agent.poll import Poller
from fieldwatch.agent.publisher import MqttPublisher
from fieldwatch.agent.registry import build_sources

from fieldwatch import __version__, wire
from fieldwatch.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class SequenceFile:
    """Sequence numbers that survive restarts, so the collector's duplicate and gap checks hold."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.last = int(path.read_text().strip() or 0)
        except FileNotFoundError:
            self.last = 0

    def next(self) -> int:
        self.last += 1
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(self.last))
        tmp.replace(self.path)
        return self.last


class Agent:
    def __init__(self, cfg: AgentConfig, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        sources = build_sources(cfg.sources, self.clock)
        self.snmp = None
        if cfg.snmp.active:  # pysnmp is imported only here, when SNMP is configured
            from fieldwatch.agent.snmp.service import SnmpService
            from fieldwatch.agent.sources.snmp import SnmpHealthSource

            self.snmp = SnmpService(cfg.snmp, cfg.site, self.publish_as, self.clock)
            sources["snmp"] = SnmpHealthSource(self.snmp)
        self.poller = Poller(sources, self.clock)
        self.seq = SequenceFile(cfg.state_dir / "seq")
        self.publisher = MqttPublisher(cfg.device, cfg.site, cfg.broker)
        self.diag = start_diag(cfg, self.publisher.client, self.publisher.publish, self.clock)
        self._scheduler: BackgroundScheduler | None = None

    def cycle(self) -> None:
        batch = self.poller.poll()
        msg = wire.Metrics(device=self.cfg.device, site=self.cfg.site, seq=self.seq.next(),
                           ts=batch.ts, samples=batch.samples, agent=__version__)
        self.publisher.publish("metrics", wire.encode(msg))

    def publish_as(self, site: str, device: str, kind: str, payload: bytes) -> None:
        """Publish for another device this agent speaks for (an SNMP target)."""
        self.publisher.client.publish(wire.topic(site, device, kind), payload, qos=1)

    def start(self) -> None:
        self.publisher.start()
        if self.snmp is not None:
            self.snmp.start()
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(self.cycle, "interval", seconds=self.cfg.interval,
                                max_instances=1, coalesce=True, id="poll",
                                next_run_time=datetime.now(UTC))  # first cycle at once
        self._scheduler.start()
        log.info("agent %s/%s polling every %ss", self.cfg.site, self.cfg.device,
                 self.cfg.interval)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self.diag is not None:
            self.diag.stop()
        if self.snmp is not None:
            self.snmp.stop()
        self.publisher.stop()

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()
