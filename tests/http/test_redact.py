"""Issue 19.10: URLs are shown with their credentials hidden — in the log, on the ticket
timeline, in desk errors (the outbox's last_error) and in Alertmanager ticket descriptions."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.desks.http import send
from fieldwatch.collector.notify.notifier import WebhookNotifier
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch.clock import FakeClock
from fieldwatch.errors import DeskError, DeskRejected
from fieldwatch.redact import redact_logged_urls, redact_url
from tests.tickets.helpers import berlin, desk_policy
from tests.tickets.test_notifier import Hook

SECRET = "Zx9s3cretK3yQw7Lm2Np"


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.example.net/fieldwatch", "https://hooks.example.net/fieldwatch"),
    (f"https://ops:{SECRET}@hooks.example.net:8443/x", "https://***@hooks.example.net:8443/x"),
    (f"https://{SECRET}@hooks.example.net/x", "https://***@hooks.example.net/x"),
    (f"https://h.example/x?token={SECRET}&team=ops", "https://h.example/x?token=***&team=***"),
    (f"https://h.example/x?{SECRET}", "https://h.example/x?***=***"),
    (f"https://h.example/x#{SECRET}", "https://h.example/x"),
    ("https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF1/aBcDeFgHiJkLmNoPqRsTuVwX",
     "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF1/***"),
    ("https://discord.com/api/webhooks/123456789012345678/" + "a" * 68,
     "https://discord.com/api/webhooks/123456789012345678/***"),
    ("https://o.webhook.office.com/webhookb2/0b1c2d3e-1111-2222-3333-444455556666@"
     "0b1c2d3e-1111-2222-3333-444455556666/IncomingWebhook/abc",
     "https://o.webhook.office.com/webhookb2/***/IncomingWebhook/abc"),
    ("http://[::1]:8080/escalation-hook", "http://[::1]:8080/escalation-hook"),
    ("http://h:99999/", "<unparseable URL>"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@given(st.text(max_size=60), st.text(alphabet="abcdefXYZ0123456789", min_size=12, max_size=24))
@settings(max_examples=200, deadline=None)
def test_a_secret_in_the_user_part_or_query_never_shows(path: str, secret: str) -> None:
    for url in (f"https://u:{secret}@h.example/{path}", f"https://h.example/{path}?k={secret}"):
        shown = redact_url(url)
        assert secret not in shown or secret in path


def test_escalation_webhook_secret_stays_out_of_log_and_timeline(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The regression: a failing escalation webhook put its URL, key and all, on the
    timeline (`notify_failed`) and in the log."""
    redact_logged_urls()  # as the CLI does: httpx logs each request's URL at INFO
    hook = Hook()
    hook.status = 400
    url = hook.url.replace("http://", f"http://ops:{SECRET}@") + f"/{SECRET}?token={SECRET}"
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"), desk_policy())
    clock = FakeClock(berlin(2027, 1, 4, 9))
    try:
        with httpx.Client(timeout=5) as client, caplog.at_level(logging.INFO):
            desk = ServiceDesk(store, clock, WebhookNotifier(client, url))
            tid = desk.create(device="d", title="t", priority="P1", actor="x")["id"]
            clock.advance(12 * 60)
            assert desk.tick().notify_failed == 1  # answered 400: rejected
            hook.close()
            clock.advance(3 * 60)
            assert desk.tick().notify_failed == 1  # now unreachable
        events = [e for e in store.timeline(tid) if e["kind"] == "notify_failed"]
        assert len(events) == 2 and "HTTP 400" in events[0]["reason"]
        assert "***" in events[0]["reason"] and "127.0.0.1" in events[0]["reason"]
        shown = repr(store.timeline(tid)) + caplog.text
        assert SECRET not in shown
        assert "HTTP Request: POST http://***@127.0.0.1" in caplog.text
    finally:
        store.engine.dispose()


def test_desk_errors_show_the_path_without_its_key() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="no such hook")

    with httpx.Client(transport=httpx.MockTransport(answer)) as client, \
            pytest.raises(DeskRejected) as info:
        send(client, httpx.Request("POST", f"https://u:{SECRET}@hooks.example/services/{SECRET}"
                                           f"?sig={SECRET}"))
    assert str(info.value) == "POST hooks.example/services/***: 404 no such hook"
    assert isinstance(info.value, DeskError)


def test_alertmanager_generator_url_is_shown_redacted() -> None:
    from fieldwatch.collector.desks import alertmanager as am
    from fieldwatch.collector.desks.config import AlertmanagerConfig

    from tests.desks.test_alertmanager import alert, payload

    a = alert("1f")
    a["generatorURL"] = f"http://admin:{SECRET}@prometheus:9090/graph?g0.expr=up&token={SECRET}"
    [parsed] = am.parse(payload(a))
    description = am.change(parsed, AlertmanagerConfig()).description
    assert SECRET not in description and "http://***@prometheus:9090/graph" in description
