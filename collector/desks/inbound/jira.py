"""Jira webhooks (Cloud admin webhooks with a secret; Data Center 10+): verify, parse, and the
issue read the reconcile uses.

Signature: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed with the secret
given when the webhook was registered. Delivery id: `X-Atlassian-Webhook-Identifier` (the same
on Jira's retries). Events used: `jira:issue_updated` (status, assignee) and `comment_created`;
`timestamp` (ms) is the time of the change. Status by the status category (new → open,
indeterminate → acknowledged, done → resolved) unless `states` names the status itself.
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

CATEGORIES: dict[str, State] = {"new": "open", "indeterminate": "acknowledged",
                                "done": "resolved"}
FIELDS = "status,assignee,updated,resolution,labels"


def verify(headers: Mapping[str, str], body: bytes, keys: Keys) -> bool:
    return same(header(headers, "x-hub-signature"), "sha256=" + hmac_hex(keys.secret, body))


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _person(p: Any) -> str | None:
    if not isinstance(p, dict):
        return None
    return text(p.get("displayName")) or text(p.get("name")) or text(p.get("accountId"))


def _status(fields: Mapping[str, Any], states: Mapping[str, State]) -> State | None:
    st = fields.get("status")
    if not isinstance(st, dict):
        return None
    named = state_of(text(st.get("name")), states)
    if named is not None:
        return named
    cat = st.get("statusCategory")
    return CATEGORIES.get(str(cat.get("key"))) if isinstance(cat, dict) else None


def issue_change(desk: str, kind: str, issue: Mapping[str, Any], at: float, actor: str,
                 states: Mapping[str, State]) -> Inbound:
    """What one issue (as a webhook or GET /issue returns it) says now."""
    key = text(issue.get("key"))
    if key is None:
        raise WireFormatError("bad_field", "issue.key: missing")
    fields = _dict(issue.get("fields"))
    labels = fields.get("labels")
    labels = labels if isinstance(labels, list) else []
    res = fields.get("resolution")
    return Inbound(desk=desk, kind=kind, at=at, actor=actor, external_id=key,
                   references=tuple(s for s in map(text, labels) if s),
                   status=_status(fields, states),
                   assignee=_person(fields.get("assignee")) if "assignee" in fields else None,
                   resolution=(text(res.get("name")) or "") if isinstance(res, dict) else "")


def parse(desk: str, headers: Mapping[str, str], body: bytes,
          states: Mapping[str, State]) -> Delivery:
    doc = load(body)
    event = text(doc.get("webhookEvent"))
    if event is None:
        raise WireFormatError("bad_field", "webhookEvent: missing")
    at = timestamp(doc.get("timestamp"), "timestamp")
    key = header(headers, "x-atlassian-webhook-identifier") or body_hash(body)
    if event not in ("jira:issue_updated", "jira:issue_created", "comment_created"):
        return Delivery(key, at, ())  # nothing fieldwatch follows (deleted, worklogs, …)
    actor = _person(doc.get("user")) or "jira"
    change = issue_change(desk, event, obj(doc, "issue"), at, actor, states)
    if event == "comment_created":
        c = obj(doc, "comment")
        cid = text(c.get("id"))
        if cid is None:
            raise WireFormatError("bad_field", "comment.id: missing")
        who = _person(c.get("author")) or actor
        change = replace(change, actor=who, comment=Comment(cid, plain(c.get("body"))))
    return Delivery(key, at, (change,))


def state_request(base: str, auth_headers: Mapping[str, str], key: str) -> httpx.Request:
    return httpx.Request("GET", f"{base}/rest/api/2/issue/{key}", headers=dict(auth_headers),
                         params={"fields": FIELDS})


def state(desk: str, doc: Any, states: Mapping[str, State]) -> Inbound:
    """GET /rest/api/2/issue/KEY → what it says now, dated by `fields.updated`."""
    if not isinstance(doc, dict):
        raise WireFormatError("bad_field", "expected an issue")
    at = timestamp(_dict(doc.get("fields")).get("updated"), "fields.updated")
    return issue_change(desk, "reconcile", doc, at, "reconcile", states)
