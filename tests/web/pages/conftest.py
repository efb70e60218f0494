"""Fixtures of the desk pages: a real store (SQLite) behind a ServiceDesk on a fake clock, the
whole app as `fieldwatch up` builds it plus the pages, the TEST-ONLY login stand-in
and the real accounts layer (users logged in by their own API token in-process, by the login
form in the browser), and the embedded metric history in the same database (history.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fieldwatch.collector.rules.loader import ruleset_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import BatchWrite, DeviceSeen, Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.alerts import TicketChange
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts.store import AccountStore
from fieldwatch.collector.web.api.app import HttpServer, make_app
from fieldwatch.collector.web.pages import Pages, add_pages

from fieldwatch.clock import FakeClock
from tests.tickets.helpers import berlin, desk_policy
from tests.web.conftest import cheap_passwords, password_of
from tests.web.pages.history import StoredHistory

NOW = berlin(2027, 3, 3, 11)  # a Wednesday, inside business hours
API_TOKEN = "pages-test-token"

RULES = """
rules:
  - name: disk_nearly_full
    metric: disk.used_percent
    labels: {mount: "/"}
    when: value > 90
    clear: value < 85
    severity: P2
    ticket: {title: "Disk {labels.mount} on {device} at {value:.0f}%", team: hardware}
    diagnostics: [disk_usage, clear_spool]
  - name: disk_filling
    metric: disk.used_percent
    when: predict_linear(6h, 24h) >= 100 and value > 50
    severity: P3
    ticket: {title: "Disk filling"}
  - name: temp_out_of_range
    metric: temp.celsius
    when: value < 5 or value > 70
    severity: P2
    ticket: {title: "Temperature {value}"}
"""

USERS = (User("ada", "supervisor"), User("eng", "engineer", frozenset({"hq"})),
         User("vic", "viewer"), User("lin", "engineer", language="zh"))


class Client:
    """Requests to the app in-process (httpx over ASGI), as the user whose API token is given
    (None: anonymous)."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app, self.token = app, token

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://127.0.0.1:8080",
                                         headers=headers) as client:
                return await client.request(method, path, **kw)

        return asyncio.run(go())

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json={} if body is None else body, **kw)


@dataclass
class Desk:
    """The app under test and what it runs on."""

    app: Any
    desk: ServiceDesk
    store: Store
    clock: FakeClock
    history: StoredHistory  # the embedded store the charts read
    accounts: AccountStore
    pages: Pages
    ruleset: RuleSet
    made: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def add_user(self, name: str, role: str, sites: list[str], language: str = "en") -> None:
        self.accounts.add(name, role, password_of(name), sites=sites, language=language)
        self.tokens[name] = self.accounts.new_token(name, "test")

    def client(self, user: str | None) -> Client:
        return Client(self.app, None if user is None else self.tokens[user])

    def device(self, site: str, name: str, inventory: dict[str, Any] | None = None) -> None:
        now = self.clock.now()
        self.store.write(BatchWrite(devices={(site, name): DeviceSeen(
            site, name, now, now, 1, 1, "0.1", "online", "", now, inventory)}), now)

    def fire(self, rule: str, site: str, device: str, value: float, title: str,
             severity: str = "P2", team: str | None = None, **labels: str) -> int:
        """A rule-made ticket, as the collector opens one (its `opened` event carries the
        triggering value)."""
        now = self.clock.now()
        ids = self.store.write(BatchWrite(changes=[TicketChange(
            "fire", f"{rule}-{site}-{device}-{sorted(labels.items())}", rule, site, device,
            labels, severity, title, "", team, value, now, now)]), now)
        return ids[0]


def serve(app: Any) -> HttpServer:
    """The real server (uvicorn in a thread) on a free port, once it accepts connections."""
    server = HttpServer(app, port=0)
    server.start()
    deadline = time.monotonic() + 30
    while not server.server.started:  # bounded: uvicorn starts within a second here
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("the HTTP server did not start within 30 s")
        time.sleep(0.01)
    return server


def build(tmp_path: Path, poll_seconds: float = 0.0) -> Desk:
    clock = FakeClock(NOW)
    store = Store(open_engine(f"sqlite:///{tmp_path / 'desk.db'}"), desk_policy())
    desk = ServiceDesk(store, clock)
    accounts = AccountStore(store.engine, cheap_passwords(), clock)
    history = StoredHistory(store, clock)
    ruleset = ruleset_from_text(RULES, "rules.yaml")
    app = make_app(desk, Stats(), tokens=lambda: frozenset({API_TOKEN}), accounts=accounts)
    pages = add_pages(app, desk, lambda: history.backend, rules=lambda: ruleset,
                      poll_seconds=poll_seconds)
    d = Desk(app, desk, store, clock, history, accounts, pages, ruleset)
    for u in USERS:
        d.add_user(u.name, u.role, ["*"] if u.sites is None else sorted(u.sites), u.language)
    return d


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Desk]:
    d = build(tmp_path)
    yield d
    d.store.engine.dispose()
