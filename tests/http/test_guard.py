"""Issue 19.3: HttpGuard in front of every route — body size before auth (declared and
streamed), JSON only, no writes from other origins' pages — in-process, on the whole app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fieldwatch.collector.desks import alertmanager as am
from fieldwatch.collector.desks.config import AlertmanagerConfig, IntegrationsConfig, Secret
from fieldwatch.collector.desks.routes import add_routes, routes
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web.api.app import make_app
from fieldwatch.collector.web.api.guard import HttpGuard, Refusal, check
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fieldwatch.clock import FakeClock
from tests.desks.test_alertmanager import alert, payload

API, AM = "api-token", "am-token"
JSON = {"Content-Type": "application/json"}
LIMIT = 64 * 1024


@pytest.mark.parametrize(("method", "headers", "expected"), [
    ("POST", {"content-length": "10", "content-type": "application/json"}, None),
    ("POST", {"content-length": "10", "content-type": "Application/JSON; charset=utf-8"}, None),
    ("POST", {"content-length": "0"}, None),  # no body: no media type needed
    ("POST", {}, None),
    ("GET", {"origin": "http://evil.example", "host": "127.0.0.1:8080"}, None),  # reads stay
    ("POST", {"content-length": str(LIMIT + 1), "content-type": "application/json"}, 413),
    ("POST", {"content-length": "9" * 40}, 413),
    ("POST", {"content-length": "12abc"}, 400),
    ("POST", {"content-length": "²"}, 400),
    ("POST", {"content-length": "5", "content-type": "text/plain"}, 415),
    ("POST", {"content-length": "5"}, 415),
    ("POST", {"transfer-encoding": "chunked", "content-type": "text/plain"}, 415),
    ("POST", {"transfer-encoding": "chunked", "content-type": "multipart/form-data; b=x"}, 415),
    ("POST", {"content-length": "5", "content-type": "application/x-www-form-urlencoded"}, 415),
    ("POST", {"origin": "http://evil.example", "host": "127.0.0.1:8080"}, 403),
    ("DELETE", {"origin": "http://127.0.0.1:9999", "host": "127.0.0.1:8080"}, 403),
    ("POST", {"origin": "null", "host": "127.0.0.1:8080"}, 403),
    ("POST", {"sec-fetch-site": "cross-site"}, 403),
    ("POST", {"sec-fetch-site": "same-site"}, 403),
    ("POST", {"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8080",
              "host": "127.0.0.1:8080", "content-length": "2",
              "content-type": "application/json"}, None),
])
def test_check(method: str, headers: dict[str, str], expected: int | None) -> None:
    got = check(method, headers, LIMIT)
    assert (got.status if got else None) == expected
    assert got is None or isinstance(got, Refusal) and got.detail


@dataclass
class App:
    app: Any
    store: Store
    stats: Stats

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://127.0.0.1:8080") as client:
                return await client.request(method, path, **kw)

        return asyncio.run(go())


def full_app(store: Store, max_body: int = LIMIT, am_cfg: AlertmanagerConfig | None = None
             ) -> App:
    """The app as `fieldwatch up` builds it: desk API, diagnostics, silences, integrations."""
    stats = Stats()
    clock = FakeClock()
    app = make_app(ServiceDesk(store, clock), stats, tokens=lambda: frozenset({API}),
                   max_body=max_body)
    cfg = IntegrationsConfig(alertmanager=am_cfg or AlertmanagerConfig(
        token=Secret(env="FW_TEST_AM_TOKEN")))
    add_routes(app, routes(store, cfg, clock, stats, tokens=lambda: {API}))
    return App(app, store, stats)


@pytest.fixture
def app(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("FW_TEST_AM_TOKEN", AM)
    yield full_app(store)


BODY_ROUTES = [  # every route that takes a body
    ("POST", am.PATH), ("POST", "/api/v1/tickets"), ("POST", "/api/v1/tickets/1/comment"),
    ("POST", "/api/v1/silences"), ("POST", "/api/v1/outbox/retry"),
    ("POST", "/api/v1/tickets/1/approvals"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_every_body_route_refuses_before_auth(app: App, method: str, path: str) -> None:
    big = app.request(method, path, content=b"x" * (LIMIT + 1), headers=JSON)
    assert big.status_code == 413 and "over" in big.json()["detail"]
    plain = app.request(method, path, content=b'{"a": 1}', headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    evil = app.request(method, path, content=b"{}", headers={**JSON, "Origin": "http://evil.io"})
    assert evil.status_code == 403
    assert app.stats.get("http_refused_total", "too_large") == 1
    assert app.stats.get("http_refused_total", "media_type") == 1
    assert app.stats.get("http_refused_total", "cross_origin") == 1


async def _chunks(n: int, size: int, sent: list[int]) -> AsyncIterator[bytes]:
    for _ in range(n):
        sent[0] += size
        yield b"x" * size


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_a_streamed_body_is_cut_off_at_the_limit(app: App, method: str, path: str) -> None:
    """No Content-Length (chunked): counted as it arrives; 413 once past the limit, whatever
    the route — the FastAPI ones, which read the body before their auth, included."""
    sent = [0]
    token = AM if path == am.PATH else API
    r = app.request(method, path, content=_chunks(1000, 4096, sent),
                    headers={**JSON, "Authorization": f"Bearer {token}"})
    assert r.status_code == 413, r.text
    assert sent[0] <= LIMIT + 4096  # read up to the limit, not the 4 MB sent
    assert app.stats.get("http_refused_total", "too_large") == 1


def test_the_limit_is_a_parameter_and_a_body_at_it_passes(store: Store) -> None:
    a = full_app(store, max_body=len(payload(alert("a1"))),
                 am_cfg=AlertmanagerConfig(auth="none"))
    assert a.request("POST", am.PATH, content=payload(alert("a1")), headers=JSON
                     ).status_code == 200
    assert a.request("POST", am.PATH, content=payload(alert("a12")), headers=JSON
                     ).status_code == 413


def test_an_app_without_exception_handling_still_answers_413() -> None:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"n": len(await request.body())})

    from starlette.routing import Router

    guarded = HttpGuard(Router([Route("/", echo, methods=["POST"])]), max_body=10)
    a = App(guarded, None, Stats())  # type: ignore[arg-type]
    assert a.request("POST", "/", content=b"{}", headers=JSON).json() == {"n": 2}
    assert a.request("POST", "/", content=_chunks(3, 5, [0]), headers=JSON).status_code == 413


def test_valid_requests_pass(app: App) -> None:
    ok = app.request("POST", am.PATH, content=payload(alert("b1")),
                     headers={**JSON, "Authorization": f"Bearer {AM}",
                              "Origin": "http://127.0.0.1:8080"})
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    r = app.request("POST", "/api/v1/silences", headers={"Authorization": f"Bearer {API}"},
                    json={"matchers": {"device": "x"}, "duration": "1h", "reason": "r"})
    assert r.status_code == 201
    assert app.request("GET", "/healthz", headers={"Origin": "http://evil.io"}).status_code == 200


def test_starlette_app_is_guarded_too() -> None:
    """HttpGuard is plain ASGI: any app can be wrapped, not only make_app's."""
    app = Starlette(routes=[])
    app.add_middleware(HttpGuard, max_body=1)
    a = App(app, None, Stats())  # type: ignore[arg-type]
    assert a.request("POST", "/x", content=b"{}", headers=JSON).status_code == 413
