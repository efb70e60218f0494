"""ServiceNow Table API: incident create, work note, resolve, reopen.

The incident's `correlation_id` is our reference; after an unclear failure the adapter queries
by it before creating, and looks for the change's marker in the incident's work-note journal
before adding a note.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx
from fieldwatch.collector.desks.http import body, field, send
from fieldwatch.collector.desks.model import Change, Receipt

TABLE = "/api/now/table/incident"


def auth_header(username: str | None, secret: str) -> str:
    if username:
        return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()
    return f"Bearer {secret}"


class ServiceNowApi:
    def __init__(self, base: str, auth: str, urgency: Mapping[str, str],
                 impact: Mapping[str, str], assignment_group: str | None = None,
                 caller_id: str | None = None) -> None:
        self.base, self.urgency, self.impact = base.rstrip("/"), dict(urgency), dict(impact)
        self.assignment_group, self.caller_id = assignment_group, caller_id
        self.headers = {"Authorization": auth, "Accept": "application/json"}

    def _req(self, method: str, path: str, **kw: Any) -> httpx.Request:
        return httpx.Request(method, self.base + path, headers=self.headers, **kw)

    def search(self, change: Change) -> httpx.Request:
        return self._req("GET", TABLE, params={
            "sysparm_query": f"correlation_id={change.reference}", "sysparm_limit": "1",
            "sysparm_fields": "sys_id,number"})

    @staticmethod
    def found(response: httpx.Response) -> str | None:
        rows = field(body(response), "result")
        return str(field(rows, 0, "sys_id")) if rows else None

    def create(self, change: Change) -> httpx.Request:
        sev = str(change.ticket.get("severity"))
        data: dict[str, Any] = {
            "short_description": change.title[:160], "description": change.description(),
            "correlation_id": change.reference, "correlation_display": "fieldwatch",
            "urgency": self.urgency.get(sev, "3"), "impact": self.impact.get(sev, "3")}
        if self.assignment_group:
            data["assignment_group"] = self.assignment_group
        if self.caller_id:
            data["caller_id"] = self.caller_id
        return self._req("POST", TABLE, json=data)

    @staticmethod
    def created(response: httpx.Response) -> tuple[str, str]:
        result = field(body(response), "result")
        return str(field(result, "sys_id")), str(result.get("number", ""))

    def journal(self, sys_id: str, marker: str) -> httpx.Request:
        return self._req("GET", "/api/now/table/sys_journal_field", params={
            "sysparm_query": f"element_id={sys_id}^element=work_notes^valueLIKE{marker}",
            "sysparm_limit": "1", "sysparm_fields": "sys_id"})

    @staticmethod
    def has_entry(response: httpx.Response) -> bool:
        return bool(field(body(response), "result"))

    def update(self, sys_id: str, values: Mapping[str, str]) -> httpx.Request:
        return self._req("PATCH", f"{TABLE}/{sys_id}", json=dict(values))


class ServiceNow:
    def __init__(self, name: str, client: httpx.Client, api: ServiceNowApi, resolved_state: str,
                 reopened_state: str, close_code: str) -> None:
        self.name, self.client, self.api = name, client, api
        self.resolved_state, self.reopened_state = resolved_state, reopened_state
        self.close_code = close_code

    def deliver(self, change: Change) -> Receipt:
        api, sys_id, created = self.api, change.external_id, False
        if sys_id is None and change.unclear:
            sys_id = api.found(send(self.client, api.search(change)))
        if sys_id is None:
            sys_id, _number = api.created(send(self.client, api.create(change)))
            created = True
        url = f"{api.base}/nav_to.do?uri=incident.do?sys_id={sys_id}"
        if change.action == "open" or (created and change.action not in ("resolve", "close")):
            return Receipt(external_id=sys_id, url=url, detail="created" if created else "found")
        if change.unclear and api.has_entry(send(self.client, api.journal(sys_id,
                                                                          change.marker))):
            return Receipt(external_id=sys_id, url=url, detail="already there")
        values = {"work_notes": change.note()}
        if change.action in ("resolve", "close"):
            values.update(state=self.resolved_state, close_code=self.close_code,
                          close_notes=str(change.event.get("reason") or "resolved in fieldwatch"))
        elif change.action == "reopen":
            values["state"] = self.reopened_state
        send(self.client, api.update(sys_id, values))
        return Receipt(external_id=sys_id, url=url, detail=values.get("state", "work note"))
