"""Escalations go out through the webhook notifier to a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.notify.notifier import Notification, WebhookNotifier
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from fieldwatch.clock import FakeClock
from fieldwatch.errors import DeskRejected, DeskUnavailable
from tests.tickets.helpers import berlin, desk_policy


class Hook:
    """A webhook receiver on 127.0.0.1:0 that records bodies and answers `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.status = 204
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                n = int(self.headers["content-length"])
                hook.bodies.append(json.loads(self.rfile.read(n)))
                hook.headers.append(dict(self.headers))
                self.send_response(hook.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"no")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def note(url: str | None = None) -> Notification:
    return Notification({"id": 7, "title": "x"}, "response_breach", "response", 100.0,
                        ["dana"], url, key="fieldwatch-7-response_breach")


def test_webhook_delivers_json_with_an_idempotency_key(hook: Hook, client: httpx.Client) -> None:
    WebhookNotifier(client, hook.url).notify(note())
    [body] = hook.bodies
    assert body["type"] == "sla_escalation" and body["step"] == "response_breach"
    assert body["ticket"]["id"] == 7 and body["recipients"] == ["dana"]
    assert hook.headers[0]["idempotency-key"] == "fieldwatch-7-response_breach"


@pytest.mark.parametrize(("status", "error"), [(500, DeskUnavailable), (429, DeskUnavailable),
                                               (400, DeskRejected)])
def test_webhook_errors_are_mapped(hook: Hook, client: httpx.Client, status: int,
                                   error: type[Exception]) -> None:
    hook.status = status
    with pytest.raises(error, match=f"HTTP {status}"):
        WebhookNotifier(client, hook.url).notify(note())


def test_unreachable_webhook_is_unavailable(client: httpx.Client) -> None:
    with pytest.raises(DeskUnavailable, match="ConnectError"):
        WebhookNotifier(client).notify(note("http://127.0.0.1:1/nothing-here"))
    with pytest.raises(DeskRejected, match="no webhook configured"):
        WebhookNotifier(client).notify(note())


def test_escalation_reaches_the_webhook_and_failures_are_on_the_timeline(
        hook: Hook, client: httpx.Client, tmp_path: Path) -> None:
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"), desk_policy())
    clock = FakeClock(berlin(2027, 1, 4, 9))
    desk = ServiceDesk(store, clock, WebhookNotifier(client, hook.url))
    try:
        tid = desk.create(device="d", title="t", priority="P1", actor="x")["id"]
        clock.advance(12 * 60)  # 80 % of 15 min
        r = desk.tick()
        assert (r.escalated, r.notified) == ([(tid, "response_80")], 1)
        assert hook.bodies[0]["ticket"]["id"] == tid
        hook.status = 503
        clock.advance(3 * 60)
        r = desk.tick()
        assert (r.escalated, r.notify_failed) == ([(tid, "response_breach")], 1)
        kinds = [e["kind"] for e in store.timeline(tid)]
        assert kinds[-4:] == ["sla_escalation", "notified", "sla_escalation", "notify_failed"]
        assert "HTTP 503" in store.timeline(tid)[-1]["reason"]
    finally:
        store.engine.dispose()
