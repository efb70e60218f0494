"""Each desk adapter against a local server that checks the documented request shape and
answers like the real service."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fieldwatch.collector.desks import http as deskhttp
from fieldwatch.collector.desks import pagerduty, webhook

from fieldwatch.errors import DeskRejected, DeskUnavailable
from tests.desks.kits import KIT_NAMES, TICKET, Kit, change, kit
from tests.desks.server import DeskServer


@pytest.fixture(params=KIT_NAMES)
def desk(request: pytest.FixtureRequest) -> Iterator[tuple[Kit, DeskServer, httpx.Client]]:
    k = kit(request.param)
    server = DeskServer(k.emulator, hang_for=1.0).start()
    client = httpx.Client(timeout=0.4)
    yield k, server, client
    client.close()
    server.stop()


def test_lifecycle_reaches_one_external_ticket(desk: tuple[Kit, DeskServer, httpx.Client]) -> None:
    k, server, client = desk
    adapter = k.make(server.url, client)
    first = adapter.deliver(change("open", 1))
    ext = first.external_id
    assert ext
    for n, action in enumerate(["update", "acknowledge", "resolve", "reopen", "resolve"], 2):
        r = adapter.deliver(change(action, n, external_id=ext))
        assert r.external_id == ext
        if action == "resolve":
            assert k.status(k.emulator, ext) == "resolved"
        if action == "reopen":
            assert k.status(k.emulator, ext) == "open"
    assert k.count(k.emulator) == 1
    notes = k.notes(k.emulator, ext)
    if k.name not in ("webhook", "pagerduty"):
        # every later change is a note on the same ticket, in order, each carrying its marker
        markers = [f"[fieldwatch:fieldwatch-7-{n}]" for n in range(2, 7)]
        assert [m for note in notes for m in markers if m in note] == markers
    assert all(r.method in ("GET", "POST", "PUT", "PATCH") for r in server.seen)


def test_unclear_failure_then_retry_creates_once(
        desk: tuple[Kit, DeskServer, httpx.Client]) -> None:
    """The desk takes the create but the answer never comes (timeout after sending)."""
    k, server, client = desk
    adapter = k.make(server.url, client)
    server.mode = "hang"
    with pytest.raises(DeskUnavailable) as info:
        adapter.deliver(change("open", 1))
    assert info.value.unclear
    server.mode = "ok"
    receipt = adapter.deliver(change("open", 1, unclear=True))
    assert k.count(k.emulator) == 1
    # a note that landed before an unclear failure is not added twice
    server.mode = "hang"
    with pytest.raises(DeskUnavailable):
        adapter.deliver(change("update", 2, external_id=receipt.external_id))
    server.mode = "ok"
    adapter.deliver(change("update", 2, external_id=receipt.external_id, unclear=True))
    notes = k.notes(k.emulator, receipt.external_id or "")
    if k.name != "pagerduty":
        assert sum("fieldwatch-7-2" in str(n) for n in notes) == 1


def test_down_and_throttled_desks_are_retryable(
        desk: tuple[Kit, DeskServer, httpx.Client]) -> None:
    k, server, client = desk
    adapter = k.make(server.url, client)
    server.mode = "503"
    with pytest.raises(DeskUnavailable) as e503:
        adapter.deliver(change("open", 1))
    assert e503.value.unclear
    server.mode = "429"
    with pytest.raises(DeskUnavailable) as e429:
        adapter.deliver(change("open", 1))
    assert e429.value.retry_after == 7.0
    server.mode = "ok"
    server.stop()
    with pytest.raises(DeskUnavailable) as refused:
        adapter.deliver(change("open", 1))
    assert not refused.value.unclear
    assert k.count(k.emulator) == 0


def test_wrong_credentials_are_rejected_with_the_desks_answer(
        desk: tuple[Kit, DeskServer, httpx.Client]) -> None:
    k, server, client = desk
    for attr in ("secret", "routing_key", "token", "app_token", "password"):
        if hasattr(k.emulator, attr):
            setattr(k.emulator, attr, b"other" if attr == "secret" else "other")
    adapter = k.make(server.url, client)
    with pytest.raises(DeskRejected) as info:
        adapter.deliver(change("open", 1))
    assert any(code in str(info.value) for code in ("400", "401"))
    assert "ztok" not in str(info.value) and "R0UTING" not in str(info.value)


def test_webhook_request_is_signed_and_keyed() -> None:
    req = webhook.request("http://127.0.0.1:9/hook", b"k", change("open", 3))
    assert req.headers["Idempotency-Key"] == "fieldwatch-7-3"
    assert req.headers["X-Fieldwatch-Signature"] == webhook.signature(b"k", req.content)
    assert webhook.request("http://127.0.0.1:9/hook", None, change("open", 3)).headers.get(
        "X-Fieldwatch-Signature") is None


@pytest.mark.parametrize(("action", "state", "expected"), [
    ("open", "open", "trigger"), ("reopen", "reopened", "trigger"),
    ("acknowledge", "acknowledged", "acknowledge"), ("resolve", "resolved", "resolve"),
    ("close", "closed", "resolve"), ("update", "open", "trigger"), ("update", "resolved", None),
])
def test_pagerduty_event_actions(action: str, state: str, expected: str | None) -> None:
    assert pagerduty.event_action(change(action, 1, state=state)) == expected


def test_pagerduty_comment_on_resolved_ticket_sends_nothing() -> None:
    pd = pagerduty.PagerDuty("pd", httpx.Client(transport=httpx.MockTransport(
        lambda r: pytest.fail("nothing should be sent"))), "http://x/v2/enqueue", "k", {})
    assert pd.deliver(change("update", 1, state="resolved")).detail == "nothing to send"
    pd.client.close()


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "30"}, 30.0),
    ({"Retry-After": "Fri, 27 Nov 2026 06:00:30 GMT", "Date": "Fri, 27 Nov 2026 06:00:00 GMT"},
     30.0),
    ({"Retry-After": "soon"}, None), ({}, None),
])
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert deskhttp.retry_after(httpx.Response(429, headers=headers)) == expected


def test_answer_that_is_not_json_is_a_rejection() -> None:
    resp = httpx.Response(200, text="<html>login</html>",
                          request=httpx.Request("GET", "http://x/y"))
    with pytest.raises(DeskRejected, match="not JSON"):
        deskhttp.body(resp)


def test_ticket_fixture_is_complete() -> None:
    assert {"title", "severity", "device", "site"} <= TICKET.keys()
