"""GLPI REST API (apirest.php): initSession, Ticket, ITILFollowup, ITILSolution, killSession.

Every delivery opens a session with the user and app tokens and kills it afterwards. The ticket
name starts with the reference; after an unclear failure the adapter searches for it before
creating, and looks for the change's marker among the follow-ups before adding one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from fieldwatch.collector.desks.http import body, field, send
from fieldwatch.collector.desks.model import Change, Receipt

from fieldwatch.errors import DeskError

log = logging.getLogger(__name__)

STATUS_ASSIGNED, STATUS_SOLVED, STATUS_CLOSED = 2, 5, 6
FIELD_NAME, FIELD_ID = 1, 2  # GLPI search option ids of Ticket: name, id


class GlpiApi:
    def __init__(self, base: str, app_token: str, user_token: str,
                 urgency: Mapping[str, int], entity: int | None = None) -> None:
        self.base, self.urgency, self.entity = base.rstrip("/"), dict(urgency), entity
        self._app, self._user = app_token, user_token

    def init_session(self) -> httpx.Request:
        return httpx.Request("GET", self.base + "/initSession", headers={
            "Authorization": f"user_token {self._user}", "App-Token": self._app,
            "Accept": "application/json"})

    @staticmethod
    def session(response: httpx.Response) -> str:
        return str(field(body(response), "session_token"))

    def _req(self, session: str, method: str, path: str, **kw: Any) -> httpx.Request:
        return httpx.Request(method, self.base + path, headers={
            "Session-Token": session, "App-Token": self._app, "Accept": "application/json"}, **kw)

    def kill_session(self, session: str) -> httpx.Request:
        return self._req(session, "GET", "/killSession")

    def search(self, session: str, change: Change) -> httpx.Request:
        return self._req(session, "GET", "/search/Ticket", params={
            "criteria[0][field]": str(FIELD_NAME), "criteria[0][searchtype]": "contains",
            "criteria[0][value]": f"[{change.reference}]", "forcedisplay[0]": str(FIELD_ID),
            "range": "0-0"})

    @staticmethod
    def found(response: httpx.Response) -> str | None:
        data = body(response)
        rows = data.get("data") or [] if isinstance(data, dict) else []
        return str(field(rows, 0, str(FIELD_ID))) if rows else None

    def create(self, session: str, change: Change) -> httpx.Request:
        data: dict[str, Any] = {"name": change.title[:250], "content": change.description(),
                                "type": 1,  # incident
                                "urgency": self.urgency.get(str(change.ticket.get("severity")), 3)}
        if self.entity is not None:
            data["entities_id"] = self.entity
        return self._req(session, "POST", "/Ticket", json={"input": data})

    @staticmethod
    def created(response: httpx.Response) -> str:
        return str(field(body(response), "id"))

    def followups(self, session: str, ticket: str) -> httpx.Request:
        return self._req(session, "GET", f"/Ticket/{ticket}/ITILFollowup")

    @staticmethod
    def has_marker(response: httpx.Response, marker: str) -> bool:
        return any(marker in str(f.get("content", "")) for f in body(response))

    def followup(self, session: str, ticket: str, change: Change) -> httpx.Request:
        return self._req(session, "POST", "/ITILFollowup", json={"input": {
            "itemtype": "Ticket", "items_id": int(ticket), "content": change.note()}})

    def solution(self, session: str, ticket: str, change: Change) -> httpx.Request:
        return self._req(session, "POST", "/ITILSolution", json={"input": {
            "itemtype": "Ticket", "items_id": int(ticket), "content": change.note()}})

    def get_ticket(self, session: str, ticket: str) -> httpx.Request:
        return self._req(session, "GET", f"/Ticket/{ticket}")

    @staticmethod
    def status(response: httpx.Response) -> int:
        return int(field(body(response), "status"))

    def set_status(self, session: str, ticket: str, status: int) -> httpx.Request:
        return self._req(session, "PUT", f"/Ticket/{ticket}",
                         json={"input": {"id": int(ticket), "status": status}})


class Glpi:
    def __init__(self, name: str, client: httpx.Client, api: GlpiApi) -> None:
        self.name, self.client, self.api = name, client, api

    def deliver(self, change: Change) -> Receipt:
        session = self.api.session(send(self.client, self.api.init_session()))
        try:
            return self._deliver(session, change)
        finally:
            try:
                send(self.client, self.api.kill_session(session))
            except DeskError as exc:  # the session expires on its own; the change is done
                log.warning("desk %s: killSession failed: %s", self.name, exc)

    def _deliver(self, s: str, change: Change) -> Receipt:
        api, ticket, created = self.api, change.external_id, False
        if ticket is None and change.unclear:
            ticket = api.found(send(self.client, api.search(s, change)))
        if ticket is None:
            ticket = api.created(send(self.client, api.create(s, change)))
            created = True
        url = f"{api.base.removesuffix('/apirest.php')}/front/ticket.form.php?id={ticket}"
        if change.action == "open" or (created and change.action not in ("resolve", "close")):
            return Receipt(external_id=ticket, url=url, detail="created" if created else "found")
        if change.action in ("resolve", "close"):
            status = api.status(send(self.client, api.get_ticket(s, ticket)))
            if status >= STATUS_SOLVED:
                return Receipt(external_id=ticket, url=url, detail="already solved")
            send(self.client, api.solution(s, ticket, change))
            return Receipt(external_id=ticket, url=url, detail="solution")
        if change.unclear and api.has_marker(send(self.client, api.followups(s, ticket)),
                                             change.marker):
            return Receipt(external_id=ticket, url=url, detail="already there")
        if change.action == "reopen":
            send(self.client, api.set_status(s, ticket, STATUS_ASSIGNED))
        send(self.client, api.followup(s, ticket, change))
        return Receipt(external_id=ticket, url=url, detail="followup")
