"""PagerDuty v3 webhooks (a webhook subscription): verify, parse, and the incident read the
reconcile uses (REST API, needs an API key).

Signature: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>[,v1=…]` — one per
signing secret while a secret is rotated; any match will do. Delivery id: `event.id`. Incident
events carry the incident as it is now: `status` (triggered / acknowledged / resolved) and
`incident_key`, the Events API `dedup_key` fieldwatch sent (its reference, also the stored
external id). A note (`incident.annotated`) names only the incident's id, which fieldwatch
learns from the incident's earlier events (the alias).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fieldwatch.collector.desks.inbound.model import (
    Comment,
    Delivery,
    Inbound,
    Keys,
    State,
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

STATES: dict[str, State] = {"triggered": "open", "acknowledged": "acknowledged",
                            "resolved": "resolved"}
ASSIGNING = ("incident.reassigned", "incident.delegated")  # the events that name an assignee


def verify(headers: Mapping[str, str], body: bytes, keys: Keys) -> bool:
    expected = "v1=" + hmac_hex(keys.secret, body)
    given = [s.strip() for s in header(headers, "x-pagerduty-signature").split(",")]
    return any([same(s, expected) for s in given[:10]])  # every one compared: constant time


def _assignee(data: Mapping[str, Any]) -> str | None:
    people = data.get("assignees")
    if isinstance(people, list) and people and isinstance(people[0], dict):
        return text(people[0].get("summary")) or text(people[0].get("id"))
    return None


def incident_change(desk: str, kind: str, data: Mapping[str, Any], at: float, actor: str,
                    states: Mapping[str, State], assigning: bool) -> Inbound:
    key = text(data.get("incident_key"))
    return Inbound(desk=desk, kind=kind, at=at, actor=actor, external_id=key,
                   references=(key,) if key else (), alias=text(data.get("id")),
                   status=state_of(text(data.get("status")), {**STATES, **states}),
                   assignee=_assignee(data) if assigning else None,
                   resolution=text(data.get("resolve_reason"), 2000) or "")


def parse(desk: str, headers: Mapping[str, str], body: bytes,
          states: Mapping[str, State]) -> Delivery:
    event = obj(load(body), "event")
    eid, etype = text(event.get("id")), text(event.get("event_type"))
    if eid is None or etype is None:
        raise WireFormatError("bad_field", "event.id and event.event_type are required")
    at = timestamp(event.get("occurred_at"), "event.occurred_at")
    agent = event.get("agent")
    actor = (text(agent.get("summary")) if isinstance(agent, dict) else None) or "pagerduty"
    data = obj(event, "data", "event.")
    if data.get("type") == "incident":
        change = incident_change(desk, etype, data, at, actor, states, etype in ASSIGNING)
    elif data.get("type") == "incident_note" and isinstance(data.get("incident"), dict):
        nid, words = text(data.get("id")), plain(data.get("content"))
        if nid is None or not words:
            return Delivery(eid, at, ())
        change = Inbound(desk=desk, kind=etype, at=at, actor=actor,
                         alias=text(data["incident"].get("id")), comment=Comment(nid, words))
    else:
        return Delivery(eid, at, ())  # services, responders: nothing fieldwatch follows
    return Delivery(eid, at, (change,))


def state_request(api_url: str, api_token: str, key: str) -> httpx.Request:
    """REST API: the incident of this dedup key (`incident_key`)."""
    return httpx.Request("GET", f"{api_url.rstrip('/')}/incidents", params={
        "incident_key": key, "statuses[]": ["triggered", "acknowledged", "resolved"],
        "sort_by": "created_at:desc", "limit": "1", "date_range": "all"},
        headers={"Authorization": f"Token token={api_token}",
                 "Accept": "application/vnd.pagerduty+json;version=2"})


def state(desk: str, doc: Any, states: Mapping[str, State]) -> Inbound | None:
    """GET /incidents?incident_key=… (newest first) → what the newest incident of the key
    says now; None: there is none."""
    found = doc.get("incidents") if isinstance(doc, dict) else None
    if not isinstance(found, list):
        raise WireFormatError("bad_field", "expected {\"incidents\": [...]}")
    if not found:
        return None
    inc = found[0]
    if not isinstance(inc, dict):
        raise WireFormatError("bad_field", "incidents[]: expected an object")
    at = timestamp(inc.get("last_status_change_at") or inc.get("created_at"),
                   "last_status_change_at")
    people = [a.get("assignee") for a in inc.get("assignments") or [] if isinstance(a, dict)]
    return incident_change(desk, "reconcile", {**inc, "assignees": people}, at, "reconcile",
                           states, assigning=True)
