"""Escalation notifications: one protocol method, a webhook implementation over httpx.

Like the desk adapters (STYLE §4): a pure request builder, an injected `httpx.Client`, and
httpx errors mapped at this boundary into DeskUnavailable (retry) / DeskRejected (give up).
Messages show the URL redacted (`redact_url`): they reach the log and the ticket timeline, and
a webhook URL often carries its secret.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from fieldwatch.errors import DeskRejected, DeskUnavailable
from fieldwatch.redact import redact_in, redact_url


@dataclass(frozen=True)
class Notification:
    """One escalation step for one ticket, and who it is meant for."""

    ticket: dict[str, Any]
    step: str
    clock: str
    percent: float
    recipients: list[str] = field(default_factory=list)
    url: str | None = None  # the team's webhook, else the notifier's default
    key: str = ""  # idempotency key: ticket id + step

    def body(self) -> dict[str, Any]:
        return {"type": "sla_escalation", **asdict(self)}


class Notifier(Protocol):
    def notify(self, n: Notification) -> None:
        """Deliver or raise DeskUnavailable / DeskRejected."""
        ...


def webhook_request(n: Notification, url: str) -> httpx.Request:
    body = json.dumps(n.body(), default=str).encode()
    return httpx.Request("POST", url, content=body, headers={
        "content-type": "application/json", "idempotency-key": n.key,
        "user-agent": "fieldwatch-notifier"})


class WebhookNotifier:
    """POSTs the notification as JSON to the team's webhook or `default_url`."""

    def __init__(self, client: httpx.Client, default_url: str | None = None) -> None:
        self.client, self.default_url = client, default_url

    def notify(self, n: Notification) -> None:
        url = n.url or self.default_url
        if not url:
            raise DeskRejected("no webhook configured for this team (desk.webhook)")
        shown = redact_url(url)
        try:
            resp = self.client.send(webhook_request(n, url))
        except httpx.HTTPError as exc:
            raise DeskUnavailable(f"webhook {shown}: {type(exc).__name__}: "
                                  f"{redact_in(str(exc), url)}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise DeskUnavailable(f"webhook {shown}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise DeskRejected(f"webhook {shown}: HTTP {resp.status_code}: "
                               f"{redact_in(resp.text[:200], url)}")
