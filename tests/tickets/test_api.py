"""The HTTP API on a real server (127.0.0.1, port 0): auth, errors with messages, and
schemathesis against its own OpenAPI spec finding no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web.api.app import HttpServer, make_app
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from fieldwatch.clock import FakeClock
from tests.tickets.helpers import berlin, desk_policy

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    base: str
    desk: ServiceDesk
    http: httpx.Client


def _serve(db: Path, tokens: frozenset[str]) -> Iterator[Api]:
    store = Store(open_engine(f"sqlite:///{db}"), desk_policy())
    desk = ServiceDesk(store, FakeClock(berlin(2027, 1, 4, 9)))
    for i in range(3):
        desk.create(device=f"pump-{i}", site="plant", title="noisy", actor="seed")
    server = HttpServer(make_app(desk, Stats(), tokens=lambda: tokens), port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(200):  # bounded wait for uvicorn to accept
            try:
                http.get("/healthz")
                break
            except httpx.TransportError:
                import time
                time.sleep(0.02)
        yield Api(base, desk, http)
    server.stop()
    store.engine.dispose()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from _serve(tmp_path_factory.mktemp("api") / "fw.db", frozenset({TOKEN, "other"}))


def test_every_api_route_requires_a_token(api: Api) -> None:
    spec = api.http.get("/api/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, ops in spec["paths"].items():
        for method in ops:
            url = path.replace("{ticket_id}", "1").replace("{device}", "pump-1")
            r = api.http.request(method.upper(), url, json={})
            assert r.status_code == 401, (method, path)
            assert r.json()["detail"] == "missing or wrong bearer token"
            assert r.headers["www-authenticate"] == "Bearer"
    r = api.http.get("/api/v1/tickets", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_no_token_configured_refuses_with_a_hint(tmp_path: Path) -> None:
    for a in _serve(tmp_path / "x.db", frozenset()):
        r = a.http.get("/api/v1/tickets", headers=AUTH)
        assert r.status_code == 401 and "no API token is configured" in r.json()["detail"]


def test_work_a_ticket_over_the_api(api: Api) -> None:
    r = api.http.post("/api/v1/tickets", headers=AUTH, json={
        "device": "compressor-3", "site": "plant", "priority": "P1",
        "title": "compressor trips", "customer": "Ann, +49 30 1234"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["source"], t["priority"], t["state"]) == ("manual", "P1", "open")
    assert t["sla"]["response"]["target_s"] == 900
    tid = t["id"]
    for action, body in (("ack", {}), ("assign", {"assignee": "eli"}),
                         ("comment", {"text": "remote session started"}),
                         ("wait", {"text": "customer restarts it"}), ("resume", {}),
                         ("resolve", {"note": {"cause": "clogged filter", "fix": "cleaned",
                                               "parts": ["filter F2"], "minutes": 35,
                                               "mode": "on_site"}}),
                         ("close", {"satisfaction": 4})):
        r = api.http.post(f"/api/v1/tickets/{tid}/{action}", headers=AUTH,
                          json=body)
        assert r.status_code == 200, (action, r.text)
    shown = api.http.get(f"/api/v1/tickets/{tid}", headers=AUTH).json()
    assert (shown["state"], shown["satisfaction"], shown["assignee"]) == ("closed", 4, "eli")
    assert [e["kind"] for e in shown["timeline"]][-3:] == ["resumed", "resolved", "closed"]
    assert {e["actor"] for e in shown["timeline"]} - {"system"} == {"api-token"}  # the token's
    listed = api.http.get("/api/v1/tickets", params={"status": "closed"}, headers=AUTH).json()
    assert [x["id"] for x in listed] == [tid]
    hist = api.http.get("/api/v1/devices/compressor-3/history", params={"site": "plant"},
                        headers=AUTH).json()
    assert [x["id"] for x in hist["tickets"]] == [tid]
    api.desk.clock.t += 60  # type: ignore[attr-defined]
    k = api.http.get("/api/v1/kpi", params={"since": "7d"}, headers=AUTH).json()
    assert k["causes"][0]["cause"] == "clogged filter"


@pytest.mark.parametrize(("method", "url", "body", "code", "detail"), [
    ("get", "/api/v1/tickets/999999", None, 404, "no ticket 999999"),
    ("post", "/api/v1/tickets/1/reopen", {"text": "why"}, 409, "cannot reopen"),
    ("post", "/api/v1/tickets/1/close", {}, 409, "resolve it first"),
    ("post", "/api/v1/tickets/1/resume", {}, 409, "not waiting"),
    ("post", "/api/v1/tickets/1/comment", {"text": ""}, 422, "at least 1"),
    ("post", "/api/v1/tickets/1/resolve", {"note": {"cause": "c"}}, 422,
     "fix"),
    ("post", "/api/v1/tickets", {"device": "d", "title": "t", "priority": "P7"},
     422, "P1"),
    ("post", "/api/v1/tickets", {"device": "d", "title": "t", "team": "nobody"},
     409, "no team named 'nobody'"),
    ("get", "/api/v1/tickets?status=bogus", None, 422, "open"),
    ("post", "/api/v1/tickets/1/comment", {"by": "eve", "text": "x"}, 422,
     "`by` is not taken any more"),  # the actor is the caller, never self-declared
    ("get", "/api/v1/kpi?since=yesterday", None, 422, "expected a duration"),
    ("get", "/api/v1/devices/ghost/history", None, 404, "no device ghost"),
])
def test_bad_requests_get_4xx_with_a_message(api: Api, method: str, url: str,
                                             body: dict | None, code: int,
                                             detail: str) -> None:
    r = api.http.request(method.upper(), url, headers=AUTH, json=body)
    assert r.status_code == code, r.text
    assert detail in str(r.json()["detail"])


# The schemas are loaded at import, from the app's own spec, not through
# `schemathesis.pytest.from_fixture`: its lazy fixture reads `request.node._nodeid`, which
# pytest 9.2 removed (schemathesis 4.32.5 fails there). Building the spec needs no database.
SPEC = make_app(Store(open_engine("sqlite://", create=False)), Stats()).openapi()


def test_the_fuzzed_spec_is_the_served_one(api: Api) -> None:
    assert api.http.get("/api/v1/openapi.json").json() == SPEC


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


# Fuzzing over the real server; the many boundary cases of the coverage phase run in
# `asgi_schema` below, in-process, because each loopback request costs ~45 ms here.
schema = schemathesis.openapi.from_dict(SPEC)
schema.config.phases.coverage.enabled = False


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error(case: schemathesis.Case, api: Api,
                                            session: requests.Session) -> None:
    case.call_and_validate(base_url=api.base, session=session, headers=AUTH,
                           checks=[not_a_server_error])


@pytest.fixture(scope="module")
def asgi_app(api: Api) -> object:
    return make_app(api.desk, Stats(), tokens=lambda: frozenset({TOKEN}))


asgi = schemathesis.openapi.from_dict(SPEC)
asgi.config.phases.fuzzing.enabled = False  # boundary and negative cases only


@asgi.parametrize()
@settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schemathesis_boundaries_find_no_server_error(case: schemathesis.Case,
                                                      asgi_app: object) -> None:
    case.call_and_validate(app=asgi_app, headers=AUTH, checks=[not_a_server_error])
