"""Jira (Cloud and Data Center REST API v2): create issue, comment, transition.

The issue carries the label `<reference>`; after an unclear failure the adapter searches for
that label before creating, and looks for the change's marker among the comments before
commenting. Transitions are idempotent by nature: one not offered (the issue is already there)
is taken as done.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
from fieldwatch.collector.desks.http import body, field, send
from fieldwatch.collector.desks.model import Change, Receipt


def auth_header(email: str | None, token: str) -> str:
    if email:
        return "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
    return f"Bearer {token}"


class JiraApi:
    """Pure request builders and response readers for the few endpoints used."""

    def __init__(self, base: str, auth: str, project: str, issue_type: str,
                 search_path: str = "/rest/api/2/search") -> None:
        self.base, self.project, self.issue_type = base.rstrip("/"), project, issue_type
        self.search_path = search_path
        self.headers = {"Authorization": auth, "Accept": "application/json"}

    def _req(self, method: str, path: str, **kw: Any) -> httpx.Request:
        return httpx.Request(method, self.base + path, headers=self.headers, **kw)

    def search(self, change: Change) -> httpx.Request:
        jql = f'project = "{self.project}" AND labels = "{change.reference}"'
        return self._req("GET", self.search_path,
                         params={"jql": jql, "fields": "key", "maxResults": "1"})

    @staticmethod
    def found(response: httpx.Response) -> str | None:
        issues = field(body(response), "issues")
        return str(field(issues, 0, "key")) if issues else None

    def create(self, change: Change) -> httpx.Request:
        t = change.ticket
        fields: dict[str, Any] = {
            "project": {"key": self.project}, "summary": change.title[:255],
            "description": change.description(), "issuetype": {"name": self.issue_type},
            "labels": ["fieldwatch", change.reference],
        }
        if t.get("severity"):
            fields["labels"].append(f"fieldwatch-{t['severity']}")
        return self._req("POST", "/rest/api/2/issue", json={"fields": fields})

    @staticmethod
    def created(response: httpx.Response) -> str:
        return str(field(body(response), "key"))

    def comments(self, key: str) -> httpx.Request:
        return self._req("GET", f"/rest/api/2/issue/{key}/comment",
                         params={"maxResults": "1000"})

    @staticmethod
    def has_marker(response: httpx.Response, marker: str) -> bool:
        return any(marker in str(c.get("body", "")) for c in
                   field(body(response), "comments"))

    def comment(self, key: str, change: Change) -> httpx.Request:
        return self._req("POST", f"/rest/api/2/issue/{key}/comment",
                         json={"body": change.note()})

    def transitions(self, key: str) -> httpx.Request:
        return self._req("GET", f"/rest/api/2/issue/{key}/transitions")

    @staticmethod
    def transition_id(response: httpx.Response, name: str) -> str | None:
        """The id of the transition named `name` (or leading to a status of that name)."""
        want = name.casefold()
        for t in field(body(response), "transitions"):
            if want in (str(t.get("name", "")).casefold(),
                        str((t.get("to") or {}).get("name", "")).casefold()):
                return str(t["id"])
        return None

    def transition(self, key: str, transition_id: str, change: Change) -> httpx.Request:
        return self._req("POST", f"/rest/api/2/issue/{key}/transitions", json={
            "transition": {"id": transition_id},
            "update": {"comment": [{"add": {"body": change.note()}}]}})


class Jira:
    def __init__(self, name: str, client: httpx.Client, api: JiraApi, resolve: str,
                 reopen: str, acknowledge: str | None = None) -> None:
        self.name, self.client, self.api = name, client, api
        self.to = {"resolve": resolve, "close": resolve, "reopen": reopen,
                   "acknowledge": acknowledge}

    def _issue(self, change: Change) -> tuple[str, bool]:
        """The issue's key, creating the issue if the desk has none; True when created now."""
        if change.external_id:
            return change.external_id, False
        if change.unclear:
            key = self.api.found(send(self.client, self.api.search(change)))
            if key:
                return key, False
        return self.api.created(send(self.client, self.api.create(change))), True

    def deliver(self, change: Change) -> Receipt:
        key, created = self._issue(change)
        url = f"{self.api.base}/browse/{key}"
        if change.action == "open" or (created and change.action not in ("resolve", "close")):
            return Receipt(external_id=key, url=url, detail="created" if created else "found")
        target = self.to.get(change.action)
        if target:
            tid = self.api.transition_id(send(self.client, self.api.transitions(key)), target)
            if tid is None:
                return Receipt(external_id=key, url=url, detail=f"already past {target!r}")
            send(self.client, self.api.transition(key, tid, change))
            return Receipt(external_id=key, url=url, detail=f"transition {target!r}")
        if change.unclear and self.api.has_marker(
                send(self.client, self.api.comments(key)), change.marker):
            return Receipt(external_id=key, url=url, detail="comment already there")
        send(self.client, self.api.comment(key, change))
        return Receipt(external_id=key, url=url, detail="comment")
