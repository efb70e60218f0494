"""Zammad REST API: ticket create (with a first article), article, state update.

The reference leads the ticket title; after an unclear failure the adapter searches for it
before creating, and looks for the change's marker among the articles before adding one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fieldwatch.collector.desks.http import body, field, send
from fieldwatch.collector.desks.model import Change, Receipt


class ZammadApi:
    def __init__(self, base: str, token: str, group: str, customer: str,
                 priorities: Mapping[str, str]) -> None:
        self.base, self.group, self.customer = base.rstrip("/"), group, customer
        self.priorities = dict(priorities)
        self.headers = {"Authorization": f"Token token={token}", "Accept": "application/json"}

    def _req(self, method: str, path: str, **kw: Any) -> httpx.Request:
        return httpx.Request(method, self.base + path, headers=self.headers, **kw)

    def search(self, change: Change) -> httpx.Request:
        return self._req("GET", "/api/v1/tickets/search",
                         params={"query": f'title:"{change.reference}"', "limit": "1"})

    @staticmethod
    def found(response: httpx.Response) -> str | None:
        ids = field(body(response), "tickets")
        return str(ids[0]) if ids else None

    def _article(self, change: Change, text: str, internal: bool) -> dict[str, Any]:
        return {"subject": change.title[:250], "body": text, "type": "note",
                "internal": internal, "content_type": "text/plain"}

    def create(self, change: Change) -> httpx.Request:
        data: dict[str, Any] = {
            "title": change.title[:250], "group": self.group, "customer": self.customer,
            "article": self._article(change, change.description(), internal=False)}
        prio = self.priorities.get(str(change.ticket.get("severity")))
        if prio:
            data["priority"] = prio
        return self._req("POST", "/api/v1/tickets", json=data)

    @staticmethod
    def created(response: httpx.Response) -> str:
        return str(field(body(response), "id"))

    def articles(self, ticket: str) -> httpx.Request:
        return self._req("GET", f"/api/v1/ticket_articles/by_ticket/{ticket}")

    @staticmethod
    def has_marker(response: httpx.Response, marker: str) -> bool:
        return any(marker in str(a.get("body", "")) for a in body(response))

    def article(self, ticket: str, change: Change) -> httpx.Request:
        return self._req("POST", "/api/v1/ticket_articles", json={
            "ticket_id": int(ticket) if ticket.isdigit() else ticket,
            **self._article(change, change.note(), internal=True)})

    def set_state(self, ticket: str, state: str, change: Change) -> httpx.Request:
        return self._req("PUT", f"/api/v1/tickets/{ticket}", json={
            "state": state, "article": self._article(change, change.note(), internal=True)})


class Zammad:
    def __init__(self, name: str, client: httpx.Client, api: ZammadApi, resolved_state: str,
                 reopened_state: str) -> None:
        self.name, self.client, self.api = name, client, api
        self.states = {"resolve": resolved_state, "close": resolved_state,
                       "reopen": reopened_state}

    def deliver(self, change: Change) -> Receipt:
        ticket, created = change.external_id, False
        if ticket is None and change.unclear:
            ticket = self.api.found(send(self.client, self.api.search(change)))
        if ticket is None:
            ticket = self.api.created(send(self.client, self.api.create(change)))
            created = True
        url = f"{self.api.base}/#ticket/zoom/{ticket}"
        if change.action == "open" or (created and change.action not in ("resolve", "close")):
            return Receipt(external_id=ticket, url=url, detail="created" if created else "found")
        if change.unclear and self.api.has_marker(
                send(self.client, self.api.articles(ticket)), change.marker):
            return Receipt(external_id=ticket, url=url, detail="already there")
        state = self.states.get(change.action)
        req = (self.api.set_state(ticket, state, change) if state
               else self.api.article(ticket, change))
        send(self.client, req)
        return Receipt(external_id=ticket, url=url, detail=f"state {state}" if state else "note")
