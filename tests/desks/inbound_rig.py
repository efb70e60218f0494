"""A collector's desk side for inbound tests: the real store, the outbox delivering to an
emulated desk on a real HTTP server, and the whole API app (HttpGuard included) taking the
desk's webhooks in process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fieldwatch.collector.desks import outbox
from fieldwatch.collector.desks.build import build_desk, http_client
from fieldwatch.collector.desks.config import IntegrationsConfig, RetryPolicy
from fieldwatch.collector.desks.inbound.reconcile import Target
from fieldwatch.collector.desks.routes import add_routes, routes
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.schema import desk_links, inbound_refusals
from fieldwatch.collector.store.schema import outbox as outbox_table
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web.api.app import make_app

from fieldwatch.clock import FakeClock
from tests.desks.helpers import fire
from tests.desks.inbound_kits import ENV, InKit, Said, kits
from tests.desks.server import DeskServer

API_TOKEN = "api-token"
T0 = 1_800_000_000.0


@dataclass
class Rig:
    kit: InKit
    store: Store
    clock: FakeClock
    stats: Stats
    server: DeskServer
    cfg: IntegrationsConfig
    worker: outbox.Worker
    app: Any
    desk: Any  # the outbound adapter (the reconcile reads through it)
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.kit.kind

    def open_ticket(self, fp: str = "a") -> tuple[int, str]:
        """A rule's ticket, delivered to the desk: (ticket id, the desk's id for it)."""
        [tid] = fire(self.store, fp, self.clock.now())
        self.deliver()
        return tid, self.external(tid)

    def deliver(self) -> int:
        return self.worker.run_once(self.name)

    def external(self, tid: int) -> str:
        with self.store.engine.connect() as conn:
            return str(conn.execute(sa.select(desk_links.c.external_id).where(
                desk_links.c.ticket_id == tid, desk_links.c.desk == self.name)).scalar_one())

    def post(self, headers: dict[str, str], body: bytes, path: str | None = None
             ) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://fieldwatch") as client:
                return await client.post(path or f"/api/v1/inbound/{self.name}",
                                         content=body, headers=headers)

        return asyncio.run(go())

    def target(self) -> Target:
        t = self.cfg.targets[0]
        assert t.inbound is not None  # type: ignore[union-attr]
        return Target(t.name, t.type, t.inbound, self.desk)  # type: ignore[union-attr]

    def said(self, ext: str, action: str, **kw: Any) -> httpx.Response:
        """A person's change in the desk, and the desk's webhook about it."""
        headers, body = self.kit.webhook(ext, Said(action, **kw), self.clock.now())
        return self.post(headers, body)

    def ticket(self, tid: int) -> dict[str, Any]:
        return self.store.get_ticket(tid)

    def outbox_rows(self, tid: int) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(outbox_table).where(
                outbox_table.c.ticket_id == tid).order_by(outbox_table.c.id)).mappings()]

    def refusals(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(inbound_refusals)).mappings()]

    def close(self) -> None:
        self.worker._pool.shutdown(wait=True)  # the worker's threads never started
        for c in self.clients:
            c.close()
        self.server.stop()
        self.store.engine.dispose()


def make_rig(kind: str, url: str, monkeypatch: pytest.MonkeyPatch, **inbound: Any) -> Rig:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    clock = FakeClock(T0)
    kit = next(k for k in kits(clock.now) if k.kind == kind)
    server = DeskServer(kit.emulator).start()
    target = kit.target(server.url)
    target["inbound"].update(inbound)
    # a second desk hears of every change: what came from `kind` must still reach it
    cfg = IntegrationsConfig.model_validate({"instance": "fieldwatch", "targets": [
        target, {"type": "webhook", "name": "other", "url": "http://127.0.0.1:9/hook"}]})
    store = Store(open_engine(url))
    stats = Stats()
    client = http_client(2.0)
    desk = build_desk(cfg.targets[0], client)
    outbox.register_desks(store.engine, cfg.instance, cfg.targets, clock.now())
    worker = outbox.Worker(store.engine, {kind: desk}, clock, RetryPolicy(), stats,
                           concurrency=1)
    app = make_app(ServiceDesk(store, clock), stats, tokens=lambda: frozenset({API_TOKEN}))
    add_routes(app, routes(store, cfg, clock, stats, tokens=lambda: {API_TOKEN}))
    return Rig(kit, store, clock, stats, server, cfg, worker, app, desk, [client])


@pytest.fixture
def rig_factory(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    made: list[Rig] = []

    def make(kind: str, url: str | None = None, **inbound: Any) -> Rig:
        r = make_rig(kind, url or f"sqlite:///{tmp_path / f'{kind}-{len(made)}.db'}",
                     monkeypatch, **inbound)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()
