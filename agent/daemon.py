"""The agent daemon: its schedule calls one poll cycle per interval; everything the agent sends
goes through one path, `Agent.publish` (or `publish_metrics`, which numbers the message), into
the outage buffer and from there to MQTT.

Other parts that publish for other devices through this agent (SNMP polling) or answer
requests (diagnostics) call those two methods; they never talk to paho directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from fieldwatch.agent.buffer import Drops, Outbox
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.inventory import collect_inventory
from fieldwatch.agent.poll import Poller
from fieldwatch.agent.publisher import MqttPublisher
from fieldwatch.agent.registry import build_sources
from fieldwatch.agent.schedule import build_scheduler
from fieldwatch.agent.sources.base import sample

from fieldwatch import __version__, wire
from fieldwatch.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class Agent:
    def __init__(self, cfg: AgentConfig, clock: Clock | None = None, *,
                 mqtt5: bool = True) -> None:
        """`mqtt5=False` for a broker known to speak 3.1.1 only (the embedded one of `fieldwatch
        up`); otherwise the publisher finds out."""
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
        if (cfg.state_dir / "buffer.sqlite").exists():
            log.warning("%s is no longer used (the buffer is now %s); remove it by hand",
                        cfg.state_dir / "buffer.sqlite", cfg.state_dir / "buffer")
        self.outbox = Outbox(cfg.state_dir / "buffer", self.clock,
                             max_bytes=cfg.buffer.max_bytes, max_age=cfg.buffer.max_age)
        self.publisher = MqttPublisher(cfg.device, cfg.site, cfg.broker, self.outbox,
                                       inflight=cfg.buffer.inflight,
                                       on_link_up=self._report_drops, mqtt5=mqtt5)
        self.diag = None
        if cfg.diag.enabled:  # its crypto and probes are imported only when it is on
            from fieldwatch.agent.diag.service import start_diag

            self.diag = start_diag(cfg, self.publisher.client,
                                   lambda kind, payload: self.publish(cfg.site, cfg.device,
                                                                      kind, payload),
                                   self.clock)
        jobs = [("poll", cfg.interval, self.cycle)]
        if cfg.inventory.enabled:
            jobs.append(("inventory", cfg.inventory.every, self.send_inventory))
        if self.snmp is not None:
            jobs.append(("snmp_targets", cfg.inventory.every, self.announce_targets))
        self.scheduler = build_scheduler(jobs)

    # -- the one way out ---------------------------------------------------------------------

    def publish(self, site: str, device: str, kind: str, payload: bytes,
                retain: bool = False) -> None:
        """Queue one encoded message for `fieldwatch/v1/<site>/<device>/<kind>`."""
        self.outbox.add(site, device, wire.topic(site, device, kind), payload, retain)
        self.publisher.wake()

    def publish_metrics(self, site: str, device: str, ts: float,
                        samples: Iterable[wire.Sample]) -> int:
        """Queue one metrics message with the device's next sequence number; returns it."""
        samples = list(samples)
        seq = self.outbox.add_numbered(
            site, device, wire.topic(site, device, "metrics"),
            lambda n: wire.encode(wire.Metrics(device=device, site=site, seq=n, ts=ts,
                                               samples=samples, agent=__version__)))
        self.publisher.wake()
        return seq

    # -- jobs --------------------------------------------------------------------------------

    def cycle(self) -> None:
        batch = self.poller.poll()
        batch.samples.append(sample("agent.buffer_queued", self.outbox.count))
        batch.samples.append(sample("agent.buffer_bytes", self.outbox.bytes))
        for reason, n in sorted(self.outbox.drops_total().items()):
            batch.samples.append(sample("agent.buffer_dropped_total", n, reason=reason))
        refused = sum(self.publisher.refused_totals().values())
        if refused or self.publisher.mqtt5:  # under MQTT 3.1.1 no refusal can be seen
            batch.samples.append(sample("agent.publish_refused_total", refused))
        self.publish_metrics(self.cfg.site, self.cfg.device, batch.ts, batch.samples)

    def send_inventory(self) -> None:
        facts = {**collect_inventory(), "interval": float(self.cfg.interval)}
        msg = wire.Inventory(device=self.cfg.device, site=self.cfg.site, ts=self.clock.now(),
                             facts=facts, agent=__version__)
        self.publish(self.cfg.site, self.cfg.device, "inventory", wire.encode(msg), retain=True)

    def announce_targets(self) -> None:
        """A retained inventory per SNMP target saying this agent polls it (`polled_by`) and
        how often: the collector makes this agent the target's parent, so when the agent dies
        its targets' silence is explained by its one ticket (issue 12)."""
        if self.snmp is None:
            return
        me = f"{self.cfg.site}/{self.cfg.device}"
        for t in self.snmp.poller.targets:
            msg = wire.Inventory(device=t.target.device, site=t.site, ts=self.clock.now(),
                                 facts={"polled_by": me, "interval": float(t.interval),
                                        "snmp_host": t.target.host},
                                 agent=__version__)
            self.publish(t.site, t.target.device, "inventory", wire.encode(msg), retain=True)

    def _report_drops(self) -> None:
        """Link back: tell the collector what the buffer had to drop while it was away."""
        def event(d: Drops) -> tuple[str, bytes]:
            msg = wire.Event(device=d.device, site=d.site, type="agent.buffer_dropped",
                             ts=self.clock.now(), fields={"count": d.count, "reason": d.reason})
            return wire.topic(d.site, d.device, "events"), wire.encode(msg)

        for d in self.outbox.report_drops(event):
            log.warning("the outage buffer dropped %d messages of %s/%s (%s bound); reported",
                        d.count, d.site, d.device, d.reason)

    # -- lifecycle ---------------------------------------------------------------------------

    def publish_as(self, site: str, device: str, kind: str, payload: bytes) -> None:
        """Publish for another device this agent speaks for (an SNMP target), buffered like
        our own. Metrics are renumbered from the buffer's durable per-device counter, so the
        collector's gap accounting holds across agent restarts for them too."""
        if kind == "metrics":
            msg = wire.decode(payload)
            if isinstance(msg, wire.Metrics):
                self.publish_metrics(site, device, msg.ts, msg.samples)
                return
        self.publish(site, device, kind, payload)

    def start(self) -> None:
        self.publisher.start()
        if self.snmp is not None:
            self.snmp.start()
        self.scheduler.start()  # first cycle at once
        log.info("agent %s/%s polling every %ss; buffer %s holds %d messages", self.cfg.site,
                 self.cfg.device, self.cfg.interval, self.outbox.path, self.outbox.count)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)  # lets the cycle running now finish
        if self.diag is not None:
            self.diag.stop()
        if self.snmp is not None:
            self.snmp.stop()
        self.publisher.stop()
        self.outbox.close()

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()
