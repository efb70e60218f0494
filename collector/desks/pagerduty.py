"""PagerDuty Events API v2: trigger / acknowledge / resolve on `dedup_key` = our reference.

PagerDuty deduplicates on the key itself, so a repeated event changes nothing: this desk needs
no look-up after an unclear failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from fieldwatch.collector.desks.http import body, send
from fieldwatch.collector.desks.model import OPEN_STATES, Change, Receipt

SUMMARY_MAX = 1024  # PagerDuty truncates longer summaries


def event_action(change: Change) -> str | None:
    """The Events API action for a change, or None when PagerDuty has nothing to hear."""
    if change.action in ("acknowledge",):
        return "acknowledge"
    if change.action in ("resolve", "close"):
        return "resolve"
    if change.action in ("open", "reopen"):
        return "trigger"
    # a comment or escalation on an open ticket adds to the incident's log; on a resolved one a
    # trigger would open a new incident, so it is left out
    return "trigger" if change.ticket.get("state") in OPEN_STATES else None


def _iso(ts: Any) -> str | None:
    return None if ts is None else datetime.fromtimestamp(float(ts), UTC).isoformat()


def request(url: str, routing_key: str, severities: Mapping[str, str],
            change: Change) -> httpx.Request | None:
    action = event_action(change)
    if action is None:
        return None
    t = change.ticket
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                             "dedup_key": change.reference}
    if action == "trigger":
        event["payload"] = {
            "summary": change.title[:SUMMARY_MAX],
            "source": f"{t.get('site')}/{t.get('device')}",
            "severity": severities.get(str(t.get("severity")), "warning"),
            "timestamp": _iso(change.event.get("at") or t.get("opened_at")),
            "component": t.get("device"), "group": t.get("site"), "class": t.get("rule"),
            "custom_details": {"reference": change.reference, "description": t.get("description"),
                               "labels": t.get("labels"), "team": t.get("team"),
                               "last_value": t.get("last_value"), "change": change.key,
                               "note": change.event.get("reason")},
        }
        event["client"] = "fieldwatch"
    return httpx.Request("POST", url, json=event, headers={"Accept": "application/json"})


def receipt(change: Change, response: httpx.Response) -> Receipt:
    data = body(response)
    key = data.get("dedup_key") if isinstance(data, dict) else None
    return Receipt(external_id=str(key or change.reference),
                   detail=str(data.get("message", "")) if isinstance(data, dict) else "")


class PagerDuty:
    def __init__(self, name: str, client: httpx.Client, url: str, routing_key: str,
                 severities: Mapping[str, str]) -> None:
        self.name, self.client, self.url = name, client, url
        self._key, self.severities = routing_key, dict(severities)

    def deliver(self, change: Change) -> Receipt:
        req = request(self.url, self._key, self.severities, change)
        if req is None:
            return Receipt(external_id=change.external_id, detail="nothing to send")
        return receipt(change, send(self.client, req))
