"""Generic webhook: one signed JSON POST per change (payload documented in docs/desks.md).

Headers: `Idempotency-Key` (the change key: receivers drop repeats), `X-Fieldwatch-Event`
(the action) and, with a secret, `X-Fieldwatch-Signature: sha256=<hex HMAC-SHA256 of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
from fieldwatch.collector.desks.http import send
from fieldwatch.collector.desks.model import Change, Receipt

PAYLOAD_VERSION = 1


def payload(change: Change) -> dict[str, Any]:
    return {"version": PAYLOAD_VERSION, "key": change.key, "reference": change.reference,
            "action": change.action, "ticket": dict(change.ticket), "event": dict(change.event),
            "external_id": change.external_id}


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def request(url: str, secret: bytes | None, change: Change) -> httpx.Request:
    body = json.dumps(payload(change), separators=(",", ":"), sort_keys=True,
                      default=str).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": change.key,
               "X-Fieldwatch-Event": change.action, "User-Agent": "fieldwatch"}
    if secret is not None:
        headers["X-Fieldwatch-Signature"] = signature(secret, body)
    return httpx.Request("POST", url, content=body, headers=headers)


def receipt(change: Change, response: httpx.Response) -> Receipt:
    """A receiver may answer `{"id": ...}` to name its ticket; otherwise our reference is it."""
    external = change.external_id or change.reference
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("id"), str | int):
        external = str(data["id"])
    return Receipt(external_id=external, detail=f"{response.status_code}")


class Webhook:
    def __init__(self, name: str, client: httpx.Client, url: str,
                 secret: bytes | None = None) -> None:
        self.name, self.client, self.url, self.secret = name, client, url, secret

    def deliver(self, change: Change) -> Receipt:
        return receipt(change, send(self.client, request(self.url, self.secret, change)))
