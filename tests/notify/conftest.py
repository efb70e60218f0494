"""Fixtures for notification tests: loopback only, receivers, and the services' endpoints.

Slack, Telegram, DingTalk and WeCom have fixed hosts in Apprise: their plugin's endpoint class
attribute is pointed at a local receiver for the test (monkeypatch restores it) — the only seam
Apprise offers for them. Services that take a host in the URL (SMSEagle, Microsoft Teams
Workflows, json://, email) need no seam: their URL names the receiver.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.notify.receivers import Receiver, Req

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail a test, rather than reach the internet, if a request leaves 127.0.0.1."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in LOOPBACK:
            raise OSError(f"notify tests talk to loopback only, not {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def service_answer(req: Req) -> tuple[int, Any]:
    """What each real service answers on success."""
    if req.path.startswith("/bot"):  # Telegram Bot API
        return 200, {"ok": True, "result": {"message_id": 1}}
    if req.path == "/jsonrpc/sms":  # SMSEagle
        return 200, {"result": {"message_id": 4753, "status": "ok"}}
    if req.path.startswith("/services/"):  # Slack incoming webhook
        return 200, "ok"
    if req.path.startswith("/workflows/"):  # Teams Workflows (Power Automate)
        return 202, b""
    return 200, {"errcode": 0, "errmsg": "ok"}  # DingTalk, WeCom robots; json://


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(service_answer).start()
    yield r
    r.stop()


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Receiver:
    """Fixed-host services sent to `receiver` (see the module docstring)."""
    from apprise.plugins.dingtalk import NotifyDingTalk
    from apprise.plugins.slack import NotifySlack
    from apprise.plugins.telegram import NotifyTelegram
    from apprise.plugins.wecombot import NotifyWeComBot

    monkeypatch.setattr(NotifySlack, "webhook_url", receiver.url + "/services")
    monkeypatch.setattr(NotifyTelegram, "notify_url", receiver.url + "/bot")
    monkeypatch.setattr(NotifyDingTalk, "notify_url",
                        receiver.url + "/robot/send?access_token={token}")
    monkeypatch.setattr(NotifyWeComBot, "notify_url",
                        receiver.url + "/cgi-bin/webhook/send?key={key}")
    return receiver
