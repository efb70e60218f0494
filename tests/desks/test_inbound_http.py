"""The inbound routes as HTTP: the guard's one exception (GLPI sends no Content-Type), each
refusal with its status and audit row, the audit's rate limit, the listing behind the API
token, start-up without a secret, a real server, and the reconcile's schedule."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fieldwatch.collector.desks.config import IntegrationsConfig
from fieldwatch.collector.desks.inbound.audit import BURST
from fieldwatch.collector.desks.inbound.reconcile import Reconciler
from fieldwatch.collector.desks.inbound.routes import MAX_BYTES, routes
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.api.app import HttpServer
from fieldwatch.collector.web.api.guard import check
from starlette.applications import Starlette

from fieldwatch.clock import FakeClock
from fieldwatch.errors import ConfigError
from tests.desks.inbound_kits import SECRET, Said
from tests.desks.inbound_rig import API_TOKEN, Rig
from tests.desks.server import answers, wait_for


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/api/v1/inbound/glpi", {"content-length": "9"}, None),  # no Content-Type: the route's
    ("/api/v1/inbound/glpi", {"content-length": "9", "content-type": "text/plain"}, 415),
    ("/api/v1/inbound/x", {"content-length": "9",
                           "content-type": "application/x-www-form-urlencoded"}, 415),
    ("/api/v1/tickets", {"content-length": "9"}, 415),  # elsewhere: JSON as before
    ("/api/v1/inboundx", {"content-length": "9"}, 415),
])
def test_the_guard_leaves_a_missing_media_type_to_inbound_routes_only(
        path: str, headers: dict[str, str], status: int | None) -> None:
    got = check("POST", headers, 1 << 20, path)
    assert (got.status if got else None) == status


def test_media_types_per_desk(rig_factory: Any) -> None:
    jira: Rig = rig_factory("jira")
    tid, ext = jira.open_ticket()
    headers, body = jira.kit.webhook(ext, Said("ack"), jira.clock.now())
    bare = {k: v for k, v in headers.items() if k != "Content-Type"}
    r = jira.post(bare, body)  # Jira always says JSON: a body without a type is not Jira's
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    assert jira.post({**headers, "Content-Type": "text/plain"}, body).status_code == 415
    assert [a["reason"] for a in jira.refusals()] == ["media_type"]  # the guard's own: counted
    assert jira.stats.get("http_refused_total", "media_type") == 1
    glpi: Rig = rig_factory("glpi")
    tid, ext = glpi.open_ticket()
    headers, body = glpi.kit.webhook(ext, Said("ack"), glpi.clock.now())
    assert "Content-Type" not in headers
    assert glpi.post({**headers, "Content-Type": "application/json"}, body).status_code == 200
    assert glpi.ticket(tid)["state"] == "acknowledged"


def test_refusals_too_large_malformed_too_old(rig_factory: Any) -> None:
    rig: Rig = rig_factory("jira")
    tid, ext = rig.open_ticket()
    big = b'{"x": "' + b"a" * MAX_BYTES + b'"}'
    assert rig.post(rig.kit.sign({"Content-Type": "application/json"}, big, SECRET),
                    big).status_code == 413
    junk = b'{"webhookEvent": "jira:issue_updated", "timestamp": "yesterday"}'
    r = rig.post(rig.kit.sign({"Content-Type": "application/json"}, junk, SECRET), junk)
    assert r.status_code == 400 and "timestamp" in r.json()["detail"]
    rig.clock.advance(8 * 86400)  # past the 7-day replay window
    old_at = rig.clock.now() - 7 * 86400 - 1
    headers, body = rig.kit.webhook(ext, Said("resolve"), old_at)
    r = rig.post(headers, body)
    assert r.status_code == 400 and "replay window" in r.json()["detail"]
    assert [(a["reason"], a["status"]) for a in rig.refusals()] == [
        ("too_large", 413), ("bad_time", 400), ("too_old", 400)]
    assert rig.ticket(tid)["state"] == "open"


def test_a_desk_ticket_fieldwatch_does_not_know_is_taken_and_counted(rig_factory: Any) -> None:
    rig: Rig = rig_factory("zammad")
    tid, ext = rig.open_ticket()
    rig.kit.emulator.tickets[99] = {**rig.kit.emulator.tickets[int(ext)],
                                    "title": "printer jam", "articles": [{"body": "jam"}]}
    r = rig.said("99", "ack")
    assert r.status_code == 200 and r.json() == {"status": "ok", "unknown": 1}
    assert rig.stats.get("inbound_changes_total", "zammad:unknown") == 1
    assert rig.ticket(tid)["state"] == "open"


def test_the_audit_keeps_a_burst_a_minute_and_counts_every_one(rig_factory: Any) -> None:
    rig: Rig = rig_factory("pagerduty")
    for _ in range(BURST + 5):
        assert rig.post({"Content-Type": "application/json",
                         "X-PagerDuty-Signature": "v1=00"}, b"{}").status_code == 401
    assert len(rig.refusals()) == BURST
    assert rig.stats.get("inbound_refused_total", "pagerduty:signature") == BURST + 5
    rig.clock.advance(61)
    rig.post({"Content-Type": "application/json"}, b"{}")
    assert len(rig.refusals()) == BURST + 1


def test_the_listing_shows_routes_and_refusals_to_api_token_holders(rig_factory: Any) -> None:
    rig: Rig = rig_factory("servicenow")
    rig.post({"Content-Type": "application/json", "Authorization": "Bearer nope"}, b"{}")

    async def get(headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app),
                                     base_url="http://fieldwatch") as client:
            return await client.get("/api/v1/inbound", headers=headers)

    import asyncio
    assert asyncio.run(get({})).status_code == 401
    r = asyncio.run(get({"Authorization": f"Bearer {API_TOKEN}"}))
    assert r.status_code == 200
    body = r.json()
    assert body["desks"] == [{"name": "servicenow", "type": "servicenow",
                              "path": "/api/v1/inbound/servicenow"}]
    [refused] = body["refused"]
    assert (refused["desk"], refused["reason"], refused["status"]) == (
        "servicenow", "signature", 401)
    assert refused["at"].endswith("Z") and "nope" not in json.dumps(body)


def test_a_missing_secret_refuses_to_start(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FW_IN_SECRET", raising=False)
    monkeypatch.setenv("FW_JIRA", "tok")
    cfg = IntegrationsConfig.model_validate({"targets": [{
        "type": "jira", "name": "jira", "url": "http://127.0.0.1:9", "project": "OPS",
        "api_token": {"env": "FW_JIRA"}, "inbound": {"secret": {"env": "FW_IN_SECRET"}}}]})
    with pytest.raises(ConfigError, match="FW_IN_SECRET is not set"):
        routes(store, cfg, FakeClock(), Stats(), tokens=lambda: {"t"})


def test_over_a_real_socket(rig_factory: Any) -> None:
    rig: Rig = rig_factory("jira")
    tid, ext = rig.open_ticket()
    server = HttpServer(rig.app, port=0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        wait_for(lambda: answers(base + "/api/v1/inbound"))
        rig.clock.advance(30)
        headers, body = rig.kit.webhook(ext, Said("resolve"), rig.clock.now())
        r = httpx.post(f"{base}/api/v1/inbound/jira", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["applied"] == 1
        assert httpx.post(f"{base}/api/v1/inbound/jira", content=body,
                          headers=headers).json() == {"status": "replay"}
    finally:
        server.stop()
    assert rig.ticket(tid)["state"] == "resolved"


def test_the_api_server_answers_without_waiting_for_delayed_acks() -> None:
    """uvicorn writes a response's head and body apart: with Nagle on the accepted socket the
    body waited out the client's delayed ACK, 40 ms on every answer (bench/inbound.py)."""
    import socket

    server = HttpServer(Starlette(), port=0)
    try:
        assert server.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.sock.close()




def test_the_reconciler_runs_each_desk_on_its_period(rig_factory: Any) -> None:
    rig: Rig = rig_factory("zammad", reconcile=300)
    tid, ext = rig.open_ticket()
    pd: Rig = rig_factory("pagerduty", reconcile=300, api_token=None)
    rec = Reconciler(rig.store, "fieldwatch", [rig.target(), pd.target()], rig.clock, rig.stats)
    assert [t.name for t in rec.targets] == ["zammad"]  # PagerDuty without an API key: no
    due = rec.run_due({})
    assert due == {"zammad": rig.clock.now() + 300}
    rig.kit.change(rig.kit.emulator, ext, Said("ack"))
    rig.clock.advance(100)
    assert rec.run_due(due) == due  # not yet
    assert rig.ticket(tid)["state"] == "open"
    rig.clock.advance(200)
    rec.run_due(due)
    assert rig.ticket(tid)["state"] == "acknowledged"
    rig.server.stop()  # the desk down: counted, the round ends, the loop lives on
    rig.clock.advance(300)
    rec.run_due({"zammad": 0.0})
    assert rig.stats.get("inbound_reconcile_errors_total", "zammad") == 1
    rec.start()
    rec.stop()


def test_inbound_config_mistakes_are_located(tmp_path: Any) -> None:
    from fieldwatch.collector.config import CollectorConfig

    from fieldwatch.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("integrations:\n  targets:\n    - type: glpi\n      name: g\n"
                    "      url: https://glpi/apirest.php\n      app_token: {env: A}\n"
                    "      user_token: {env: U}\n      inbound:\n        secret: {env: S}\n"
                    "        states: {4: open, 5: finished}\n")
    with pytest.raises(ConfigError) as info:
        load_config(CollectorConfig, path)
    assert "c.yaml:" in str(info.value) and "inbound.states.5" in str(info.value)
    path.write_text(path.read_text().replace("finished", "resolved"))
    [target] = load_config(CollectorConfig, path).integrations.targets
    assert target.inbound.states == {"4": "open", "5": "resolved"}  # type: ignore[union-attr]


def test_the_inbound_example_in_docs_validates() -> None:
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[2] / "docs" / "desks.md").read_text()
    block = text[text.index("Give a PagerDuty, Jira"):]
    block = block[block.index("```yaml\n") + 8:block.index("```", block.index("```yaml") + 8)]
    doc = yaml.safe_load(block.replace("      ...\n", ""))[0]
    IntegrationsConfig.model_validate({"targets": [{
        **doc, "url": "https://x", "project": "P", "api_token": {"env": "J"},
        "inbound": {k: v for k, v in doc["inbound"].items()
                    if k not in ("username", "api_url", "api_token")}}]})


def test_the_desk_runtime_runs_the_reconcile(rig_factory: Any) -> None:
    from fieldwatch.collector.desks.runtime import DeskRuntime

    rig: Rig = rig_factory("zammad", reconcile=300)
    runtime = DeskRuntime(rig.cfg, rig.store.engine, rig.clock, rig.stats)
    assert [t.name for t in runtime.reconciler.targets] == ["zammad"]
    runtime.start()
    assert runtime.reconciler._thread.is_alive()
    runtime.stop()
    assert not runtime.reconciler._thread.is_alive()


def test_a_store_that_fails_answers_503_and_the_desks_retry_applies(rig_factory: Any) -> None:
    from fieldwatch.collector.store.schema import inbound_seen

    rig: Rig = rig_factory("pagerduty")
    tid, ext = rig.open_ticket()
    request = rig.kit.webhook(ext, Said("ack"), rig.clock.now())
    inbound_seen.drop(rig.store.engine)  # the store refuses the write (no such table)
    r = rig.post(*request)
    assert r.status_code == 503 and "retry" in r.json()["detail"]
    assert rig.stats.get("inbound_errors_total", "pagerduty") == 1
    assert rig.ticket(tid)["state"] == "open"  # nothing half-applied
    inbound_seen.create(rig.store.engine)
    assert rig.post(*request).json() == {"status": "ok", "applied": 1}
