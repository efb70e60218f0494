"""The desk's web app for real: a collector app (make_app, as `fieldwatch up` builds it) on
127.0.0.1 port 0 over SQLite, with desk users of two sites, and Debian's headless Chromium
driven by Playwright, logged in as one of them.

Shared by the accounts tests and the pages' tests:

    web            WebDesk: base URL, the desk, its accounts, seeded tickets, API clients
    browser        one headless Chromium for the session (starting one costs seconds)
    login          login("ana") → a Playwright Page logged in as ana, in a fresh context
    page           login("ana"): an engineer of site plant-a

Users (password: `password_of(name)`):

    root  admin                 every site
    sue   supervisor            every site (granted *)
    ana   engineer              plant-a
    vic   viewer                plant-a
    bo    engineer              plant-b
    li    engineer (Chinese)    plant-a
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fieldwatch.collector.desks.config import AlertmanagerConfig, IntegrationsConfig
from fieldwatch.collector.desks.routes import add_routes, routes
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web.accounts.passwords import Passwords
from fieldwatch.collector.web.accounts.store import AccountStore
from fieldwatch.collector.web.api.app import HttpServer, make_app
from fieldwatch.collector.web.pages import add_pages

from fieldwatch.clock import FakeClock
from tests.tickets.helpers import desk_policy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SITE_A, SITE_B = "plant-a", "plant-b"
SHARED_TOKEN = "shared-api-token"  # desk.api_token_file's: the admin `api-token`
USERS: dict[str, tuple[str, list[str], str]] = {  # name: (role, sites, language)
    "root": ("admin", [], "en"),
    "sue": ("supervisor", ["*"], "en"),
    "ana": ("engineer", [SITE_A], "en"),
    "vic": ("viewer", [SITE_A], "en"),
    "bo": ("engineer", [SITE_B], "en"),
    "li": ("engineer", [SITE_A], "zh"),
}


def password_of(name: str) -> str:
    return f"pw-of-{name}-long-enough"


def cheap_passwords() -> Passwords:
    """argon2id at its cheapest: a login costs a millisecond, not half a second."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class WebDesk:
    base: str
    desk: ServiceDesk
    accounts: AccountStore
    stats: Stats
    server: HttpServer
    tickets: dict[str, int]  # site → a seeded open ticket's id
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def clock(self) -> FakeClock:
        return self.desk.clock  # type: ignore[return-value]

    def url(self, path: str) -> str:
        return self.base + path

    def api(self, name: str | None = None) -> httpx.Client:
        """An API client with `name`'s own token (None: the shared token, admin `api-token`)."""
        token = SHARED_TOKEN if name is None else self.accounts.new_token(name, "test")
        c = httpx.Client(base_url=self.base, timeout=20,
                         headers={"Authorization": f"Bearer {token}"})
        self._clients.append(c)
        return c

    def anonymous(self) -> httpx.Client:
        c = httpx.Client(base_url=self.base, timeout=20)
        self._clients.append(c)
        return c


def serve_desk(db: Path, clock: FakeClock | None = None) -> WebDesk:
    """The app on 127.0.0.1 port 0, users and two tickets (one per site) in place."""
    clock = clock or FakeClock(time.time())
    store = Store(open_engine(f"sqlite:///{db}"), desk_policy())
    desk = ServiceDesk(store, clock)
    accounts = AccountStore(store.engine, cheap_passwords(), clock)
    for name, (role, sites, language) in USERS.items():
        accounts.add(name, role, password_of(name), sites=sites, language=language)
    tickets = {site: desk.create(device=f"pump-{site[-1]}", site=site, title=f"noisy {site}",
                                 actor="seed")["id"] for site in (SITE_A, SITE_B)}
    stats = Stats()
    app = make_app(desk, stats, tokens=lambda: frozenset({SHARED_TOKEN}), accounts=accounts)
    add_pages(app, desk, poll_seconds=0)  # the desk's pages, as `fieldwatch up` mounts them
    add_routes(app, routes(store, IntegrationsConfig(alertmanager=AlertmanagerConfig(
        enabled=False)), clock, stats, tokens=lambda: {SHARED_TOKEN}))
    server = HttpServer(app, port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    deadline = time.monotonic() + 30
    while True:  # bounded wait for uvicorn to accept
        try:
            httpx.get(base + "/healthz", timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    return WebDesk(base, desk, accounts, stats, server, tickets)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebDesk]:
    w = serve_desk(tmp_path / "desk.db")
    yield w
    for c in w._clients:
        c.close()
    w.server.stop()
    w.desk.store.engine.dispose()


def _need_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing = "chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; .ci/run must install it")
        pytest.skip(missing)


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop: not past a module
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (no browser is ever downloaded)."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=120_000)
        yield b
        b.close()


@pytest.fixture
def login(web: WebDesk, browser: Any) -> Iterator[Callable[..., Any]]:
    """login(name) → a Page logged in as `name` through the login form, in its own context
    (own cookies), on the desk's front page."""
    contexts: list[Any] = []

    def go(name: str, password: str | None = None) -> Any:
        ctx = browser.new_context(base_url=web.base, locale="en-US")
        ctx.set_default_timeout(30_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto("/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", password or password_of(name))
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "/login" not in page.url, f"{name} could not log in: {page.content()[:500]}"
        return page

    yield go
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(login: Callable[..., Any]) -> Any:
    """A page logged in as ana, an engineer of plant-a."""
    return login("ana")
