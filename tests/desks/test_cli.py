"""`fieldwatch outbox list|retry` and the outbox API over a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fieldwatch.collector.desks import outbox
from fieldwatch.collector.desks.config import WebhookDesk
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch.cli import main
from fieldwatch.errors import DeskRejected
from tests.desks.helpers import fire


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fw.db'}"
    store = Store(open_engine(url))
    outbox.register_desks(store.engine, "fw", [
        WebhookDesk(type="webhook", name="hook", url="http://127.0.0.1:9/")], 0.0)
    fire(store, "a", 1.0)
    fire(store, "b", 2.0)
    q = outbox.Queue(store.engine)
    items = q.due("hook", 5.0)
    q.dead(items[0], DeskRejected("POST 127.0.0.1/hook: 422 {\"error\": \"bad team\"}"))
    store.engine.dispose()
    return url


def test_list_shows_dead_letters_with_the_desks_answer(
        db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["outbox", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "bad team" in out and "hook: 1 dead, 1 pending" in out
    assert main(["outbox", "list", "--db", db, "--state", "all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["state"], r["action"], r["key"]) for r in rows] == [
        ("pending", "open", "fw-2-2"), ("dead", "open", "fw-1-1")]


def test_retry_puts_dead_letters_back(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["outbox", "retry", "--db", db]) == 2  # says what to give
    assert main(["outbox", "retry", "999", "--db", db]) == 1
    assert main(["outbox", "retry", "--desk", "hook", "--db", db]) == 0
    assert "requeued 1 dead letter" in capsys.readouterr().out
    store = Store(open_engine(db, create=False))
    assert outbox.Queue(store.engine).counts() == {"hook": {"pending": 2}}
    store.engine.dispose()


def test_outbox_api_lists_and_retries_behind_the_token(db: str) -> None:
    import httpx
    from fieldwatch.collector.desks.config import IntegrationsConfig
    from fieldwatch.collector.desks.routes import routes
    from fieldwatch.collector.telemetry.stats import Stats
    from fieldwatch.collector.web.api.app import HttpServer
    from starlette.applications import Starlette

    from fieldwatch.clock import FakeClock
    from tests.desks.server import answers, wait_for

    store = Store(open_engine(db, create=False))
    app = Starlette(routes=routes(store, IntegrationsConfig(), FakeClock(), Stats(),
                                  tokens=lambda: {"api-token"}))
    server = HttpServer(app, port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}/api/v1/outbox"
    auth = {"Authorization": "Bearer api-token"}
    try:
        wait_for(lambda: answers(base))
        assert httpx.get(base).status_code == 401
        listed = httpx.get(base, headers=auth).json()
        assert listed["counts"] == {"hook": {"dead": 1, "pending": 1}}
        [dead] = listed["items"]
        assert "bad team" in dead["last_error"] and dead["next_at"] is None
        assert httpx.get(base + "?state=nope", headers=auth).status_code == 422
        assert httpx.post(base + "/retry", json={"ids": ["x"]}, headers=auth).status_code == 422
        r = httpx.post(base + "/retry", json={"ids": [dead["id"]]}, headers=auth)
        assert r.json() == {"retried": 1}
    finally:
        server.stop()
        store.engine.dispose()

