"""ServiceNow incidents pushed by an outbound REST message (a business rule on incident
update): verify, parse, and the incident read the reconcile uses.

ServiceNow signs nothing: the REST message authenticates with a shared secret, either as basic
auth (user `username`, password = the secret — a ServiceNow basic auth profile) or as
`Authorization: Bearer <secret>`. The body is the incident record as the Table API shows it —
plain values, or `{"value", "display_value"}` pairs (`sysparm_display_value=all`), optionally
under `result` — with at least `sys_id`, `state`, `sys_updated_on`, and what the business rule
adds: `correlation_id`, `assigned_to`, `sys_updated_by`, `sys_mod_count`, `close_notes` and
the latest journal entry as `work_notes` / `comments`. Delivery key: `sys_id:sys_mod_count`
(ServiceNow counts every update), else a hash of the body. docs/desks.md has the script.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
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
    load,
    plain,
    same,
    text,
    timestamp,
)

from fieldwatch.errors import WireFormatError

STATES: dict[str, State] = {"1": "open", "2": "acknowledged", "3": "acknowledged",
                            "6": "resolved", "7": "resolved", "8": "resolved"}
FIELDS = ("sys_id,number,state,correlation_id,assigned_to,sys_updated_on,sys_updated_by,"
          "close_notes")


def verify(headers: Mapping[str, str], body: bytes, keys: Keys) -> bool:
    scheme, _, cred = header(headers, "authorization").partition(" ")
    secret = keys.secret.decode("utf-8", "replace")
    if scheme.lower() == "bearer":
        return same(cred.strip(), secret)
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(cred.strip(), validate=True).decode().partition(":")
    except ValueError:  # not base64, not ASCII, not UTF-8 (binascii.Error is one too)
        return False
    return same(user, keys.username) & same(password, secret)  # both compared, always


def _value(v: Any) -> str | None:
    return text(v.get("value"), 4000) if isinstance(v, dict) else text(v, 4000)


def _display(v: Any) -> str | None:
    return (text(v.get("display_value")) or text(v.get("value"))) if isinstance(v, dict) \
        else text(v)


def record_change(desk: str, kind: str, rec: Mapping[str, Any],
                  states: Mapping[str, State]) -> Inbound:
    sys_id = _value(rec.get("sys_id"))
    if sys_id is None:
        raise WireFormatError("bad_field", "sys_id: missing")
    at = timestamp(_value(rec.get("sys_updated_on")), "sys_updated_on")
    corr = _value(rec.get("correlation_id"))
    comment = None
    for name in ("work_notes", "comments"):
        entry = plain(_value(rec.get(name)))
        if entry:
            digest = hashlib.sha256(entry.encode()).hexdigest()[:16]
            comment = Comment(f"{sys_id}:{name}:{digest}", entry)
            break
    return Inbound(desk=desk, kind=kind, at=at, actor=_display(rec.get("sys_updated_by"))
                   or "servicenow", external_id=sys_id, references=(corr,) if corr else (),
                   status={**STATES, **states}.get(_value(rec.get("state")) or ""),
                   assignee=_display(rec.get("assigned_to")), comment=comment,
                   resolution=_value(rec.get("close_notes")) or "")


def parse(desk: str, headers: Mapping[str, str], body: bytes,
          states: Mapping[str, State]) -> Delivery:
    doc = load(body)
    rec = doc["result"] if isinstance(doc.get("result"), dict) else doc
    change = record_change(desk, "incident.update", rec, states)
    count = _value(rec.get("sys_mod_count"))
    key = f"{change.external_id}:{count}" if count else body_hash(body)
    return Delivery(key, change.at, (change,))


def state_request(base: str, auth_headers: Mapping[str, str], sys_id: str) -> httpx.Request:
    return httpx.Request("GET", f"{base}/api/now/table/incident/{sys_id}",
                         headers=dict(auth_headers),
                         params={"sysparm_fields": FIELDS, "sysparm_display_value": "all",
                                 "sysparm_exclude_reference_link": "true"})


def state(desk: str, doc: Any, states: Mapping[str, State]) -> Inbound:
    """GET /api/now/table/incident/SYS_ID → what it says now (no journal: no comment)."""
    rec = doc.get("result") if isinstance(doc, dict) else None
    if not isinstance(rec, dict):
        raise WireFormatError("bad_field", "expected {\"result\": {...}}")
    return record_change(desk, "reconcile", {**rec, "work_notes": None, "comments": None},
                         states)
