"""The collector's desk machinery, wired once from config: desks, their HTTP clients, the
outbox worker, the reconcile of desks whose changes come back (desks/inbound). Start and stop
with the collector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx
import sqlalchemy as sa
from fieldwatch.collector.desks import outbox
from fieldwatch.collector.desks.build import build_desk, http_client
from fieldwatch.collector.desks.config import DeskBase, IntegrationsConfig
from fieldwatch.collector.desks.inbound.reconcile import Reconciler, Target
from fieldwatch.collector.desks.model import Desk
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch.clock import Clock


class DeskRuntime:
    def __init__(self, cfg: IntegrationsConfig, engine: sa.Engine, clock: Clock,
                 stats: Stats, owner: str = "", extra: Mapping[str, Desk] | None = None,
                 extra_registrations: Sequence[DeskBase] = ()) -> None:
        """`extra`: more outbox destinations (notification channels), registered as given."""
        self.cfg = cfg
        self.clients: list[httpx.Client] = []
        desks: dict[str, Desk] = {}
        for target in cfg.targets:  # ConfigError here (a missing credential) refuses to start
            client = http_client(target.timeout)
            self.clients.append(client)
            desks[target.name] = build_desk(target, client)
        desks.update(extra or {})
        registered = [*cfg.targets, *extra_registrations]
        if registered:  # a collector without desks leaves the others' registration alone
            outbox.register_desks(engine, cfg.instance, registered, clock.now())
        self.reconciler = Reconciler(Store(engine), cfg.instance, [
            Target(t.name, t.type, t.inbound, desks[t.name]) for t in cfg.targets
            if getattr(t, "inbound", None) is not None], clock, stats)
        self.worker = outbox.Worker(engine, desks, clock, cfg.retry, stats, cfg.concurrency,
                                    cfg.poll, owner=owner, lease=cfg.lease,
                                    keep_delivered=cfg.keep_delivered)

    def start(self) -> None:
        self.worker.start()
        self.reconciler.start()

    def stop(self) -> None:
        self.reconciler.stop()
        self.worker.stop()
        for c in self.clients:
            c.close()
