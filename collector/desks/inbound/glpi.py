"""GLPI webhooks (GLPI 10.0+, Setup → Notifications → Webhooks): verify, parse, and the
ticket read the reconcile uses.

Signature: `X-GLPI-signature: <hex HMAC-SHA256 of the raw body followed by the
X-GLPI-timestamp value>` keyed with the webhook's secret; `X-GLPI-timestamp` is when GLPI
raised the event (epoch seconds) and the time of the change. GLPI keeps the headers with a
queued webhook, so a resend carries the same signature: the delivery key is a hash of
timestamp and body. GLPI sends no Content-Type unless one is added as a custom header: this
route takes a body without one (docs/desks.md).

Default payload: `{"event": "new|update|…", "item": {…}}` — a Ticket (`status: {id, name}`,
`team` with the assigned technicians) or a follow-up / solution (`itemtype: Ticket`,
`items_id`, `content`), which becomes a comment. The payload names no author: `glpi:unknown`
on the timeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

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
    text,
    timestamp,
)

from fieldwatch.errors import WireFormatError

STATES: dict[str, State] = {"1": "open", "2": "acknowledged", "3": "acknowledged",
                            "4": "acknowledged", "5": "resolved", "6": "resolved"}
ACTOR = "unknown"


def verify(headers: Mapping[str, str], body: bytes, keys: Keys) -> bool:
    stamp = header(headers, "x-glpi-timestamp")
    return bool(stamp) and same(header(headers, "x-glpi-signature").lower(),
                                hmac_hex(keys.secret, body + stamp.encode()))


def _reference(name: Any) -> tuple[str, ...]:
    n = text(name, 500) or ""
    return (n[1:n.index("]")],) if n.startswith("[") and "]" in n else ()


def _assignee(team: Any) -> str | None:
    for m in team if isinstance(team, list) else []:
        if isinstance(m, dict) and m.get("type") == "User" and m.get("role") == "assigned":
            return text(m.get("name"))
    return None


def ticket_change(desk: str, kind: str, item: Mapping[str, Any], at: float,
                  states: Mapping[str, State], actor: str = ACTOR) -> Inbound:
    tid = text(item.get("id"))
    if tid is None:
        raise WireFormatError("bad_field", "item.id: missing")
    st = item.get("status")
    code = text(st.get("id")) if isinstance(st, dict) else text(st)
    return Inbound(desk=desk, kind=kind, at=at, actor=actor, external_id=tid,
                   references=_reference(item.get("name")),
                   status={**STATES, **states}.get(code or ""),
                   assignee=_assignee(item.get("team")))


def parse(desk: str, headers: Mapping[str, str], body: bytes,
          states: Mapping[str, State]) -> Delivery:
    doc = load(body)
    stamp = header(headers, "x-glpi-timestamp")
    at = timestamp(int(stamp) if stamp.isdigit() else stamp, "X-GLPI-timestamp")
    key = body_hash(stamp.encode(), body)
    event = text(doc.get("event")) or "event"
    item = obj(doc, "item")
    if "items_id" in item:  # a follow-up or a solution on a ticket
        tid, words = text(item.get("items_id")), plain(item.get("content"), html_body=True)
        if item.get("itemtype") != "Ticket" or tid is None or not words or event != "new":
            return Delivery(key, at, ())
        cid = f"{tid}:{text(item.get('id'))}:{hashlib.sha256(words.encode()).hexdigest()[:16]}"
        return Delivery(key, at, (Inbound(desk=desk, kind=f"followup.{event}", at=at,
                                          actor=ACTOR, external_id=tid,
                                          comment=Comment(cid, words)),))
    return Delivery(key, at, (ticket_change(desk, f"ticket.{event}", item, at, states),))


def state(desk: str, doc: Any, states: Mapping[str, State]) -> Inbound:
    """GET /apirest.php/Ticket/ID → what it says now (status number), dated by date_mod."""
    if not isinstance(doc, dict):
        raise WireFormatError("bad_field", "expected a ticket")
    at = timestamp(doc.get("date_mod"), "date_mod")
    return ticket_change(desk, "reconcile", {**doc, "team": None}, at, states, "reconcile")
