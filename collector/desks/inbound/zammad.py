"""Zammad webhooks (a trigger whose action is a webhook): verify, parse, and the ticket read
the reconcile uses.

Signature: `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body>` keyed with the webhook's
signature token. Delivery id: `X-Zammad-Delivery`. The default payload is `{"ticket": {…},
"article": {…}}`: the ticket as it is now (state name, owner, updated_at, updated_by) and its
latest article, which becomes a comment unless it is internal-system noise or our own note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx
from fieldwatch.collector.desks.inbound.model import (
    Comment,
    Delivery,
    Inbound,
    Keys,
    State,
    body_hash,
    header,
    hmac_hex,
    load,
    obj,
    plain,
    same,
    state_of,
    text,
    timestamp,
)

from fieldwatch.errors import WireFormatError

STATES: dict[str, State] = {"new": "open", "open": "acknowledged",
                            "pending reminder": "acknowledged", "pending close": "acknowledged",
                            "closed": "resolved", "merged": "resolved"}
SYSTEM_USER = 1  # Zammad's "-": nobody


def verify(headers: Mapping[str, str], body: bytes, keys: Keys) -> bool:
    return same(header(headers, "x-hub-signature"), "sha1=" + hmac_hex(keys.secret, body, "sha1"))


def _user(u: Any, uid: Any = None) -> str | None:
    if uid == SYSTEM_USER:
        return None
    if isinstance(u, dict):
        if u.get("id") == SYSTEM_USER:
            return None
        return text(u.get("login")) or text(u.get("email"))
    name = text(u)
    return None if name in (None, "-") else name


def _reference(title: Any) -> tuple[str, ...]:
    t = text(title, 500) or ""
    return (t[1:t.index("]")],) if t.startswith("[") and "]" in t else ()


def ticket_change(desk: str, kind: str, t: Mapping[str, Any], at: float, actor: str,
                  states: Mapping[str, State]) -> Inbound:
    tid = text(t.get("id"))
    if tid is None:
        raise WireFormatError("bad_field", "ticket.id: missing")
    state = t.get("state")
    name = text(state.get("name")) if isinstance(state, dict) else text(state)
    return Inbound(desk=desk, kind=kind, at=at, actor=actor, external_id=tid,
                   references=_reference(t.get("title")),
                   status=state_of(name, {**STATES, **states}),
                   assignee=_user(t.get("owner"), t.get("owner_id")))


def parse(desk: str, headers: Mapping[str, str], body: bytes,
          states: Mapping[str, State]) -> Delivery:
    doc = load(body)
    t = obj(doc, "ticket")
    at = timestamp(t.get("updated_at"), "ticket.updated_at")
    actor = _user(t.get("updated_by"), t.get("updated_by_id")) or "zammad"
    change = ticket_change(desk, header(headers, "x-zammad-trigger") or "trigger", t, at,
                           actor, states)
    a = doc.get("article")
    if isinstance(a, dict) and text(a.get("id")) and a.get("sender") != "System":
        words = plain(a.get("body"), "html" in str(a.get("content_type", "")))
        if words:
            who = _user(a.get("created_by"), a.get("created_by_id")) or actor
            change = replace(change, actor=who, comment=Comment(str(a["id"]), words))
    return Delivery(header(headers, "x-zammad-delivery") or body_hash(body), at, (change,))


def state_request(base: str, auth_headers: Mapping[str, str], tid: str) -> httpx.Request:
    return httpx.Request("GET", f"{base}/api/v1/tickets/{tid}", headers=dict(auth_headers),
                         params={"expand": "true"})


def state(desk: str, doc: Any, states: Mapping[str, State]) -> Inbound:
    """GET /api/v1/tickets/ID?expand=true → what it says now (state and owner by name)."""
    if not isinstance(doc, dict):
        raise WireFormatError("bad_field", "expected a ticket")
    at = timestamp(doc.get("updated_at"), "updated_at")
    return ticket_change(desk, "reconcile", doc, at, "reconcile", states)
