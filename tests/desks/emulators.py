"""Desk emulators: each checks the documented request shape (method, path, auth, body fields)
and answers the way the real service does, keeping the state a test asserts on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.desks.server import Reply, Req


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def missing(data: Any, *keys: str) -> list[str]:
    return [k for k in keys if not isinstance(data, dict) or data.get(k) in (None, "")]


@dataclass
class WebhookReceiver:
    """A receiver that verifies the signature and drops repeats by Idempotency-Key."""

    secret: bytes
    effects: list[dict[str, Any]] = field(default_factory=list)  # each accepted change, once
    keys: set[str] = field(default_factory=set)

    def __call__(self, req: Req) -> Reply:
        if req.method != "POST" or req.path != "/hook":
            return Reply(404, {"error": "not found"})
        sig = "sha256=" + hmac.new(self.secret, req.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(req.headers.get("x-fieldwatch-signature", ""), sig):
            return Reply(401, {"error": "bad signature"})
        data = req.json
        bad = missing(data, "version", "key", "reference", "action", "ticket")
        if bad or req.headers.get("idempotency-key") != data["key"]:
            return Reply(422, {"error": f"missing {bad}"})
        if data["key"] not in self.keys:
            self.keys.add(data["key"])
            self.effects.append(data)
        return Reply(200, {"id": data["reference"]})

    def actions(self) -> dict[str, list[str]]:
        """Ticket reference → the actions accepted for it, in order."""
        out: dict[str, list[str]] = {}
        for e in self.effects:
            out.setdefault(e["reference"], []).append(e["action"])
        return out


@dataclass
class PagerDutyEmu:
    routing_key: str
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    api_token: str = "pd-rest"  # the REST API key (GET /incidents)
    now: Callable[[], float] = time.time

    def __call__(self, req: Req) -> Reply:
        if req.method == "GET" and req.path == "/incidents":
            if req.headers.get("authorization") != f"Token token={self.api_token}":
                return Reply(401, {"error": {"message": "Unauthorized", "code": 2006}})
            key = req.query.get("incident_key")
            return Reply(200, {"incidents": [self.incident_json(key)] if key in self.incidents
                               else [], "limit": 25, "offset": 0, "more": False})
        if req.method != "POST" or req.path != "/v2/enqueue":
            return Reply(404, {"status": "not found"})
        ev = req.json or {}
        errors = []
        if ev.get("routing_key") != self.routing_key:
            return Reply(400, {"status": "invalid event", "message": "Event object is invalid",
                               "errors": ["'routing_key' is invalid"]})
        action = ev.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        key = ev.get("dedup_key")
        if action in ("acknowledge", "resolve") and not key:
            errors.append("'dedup_key' is required")
        if action == "trigger":
            p = ev.get("payload") or {}
            errors += [f"'payload.{k}' is missing" for k in missing(p, "summary", "source",
                                                                    "severity")]
            if p.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        if errors:
            return Reply(400, {"status": "invalid event", "message": "Event object is invalid",
                               "errors": errors})
        inc = self.incidents.get(key)
        if action == "trigger":
            if inc is None or inc["status"] == "resolved":
                n = len(self.incidents) + 1
                inc = self.incidents[key] = {"status": "triggered", "triggers": 0,
                                             "summary": ev["payload"]["summary"], "number": n,
                                             "id": f"PINC{n:03d}", "assignee": None,
                                             "changed_at": self.now()}
            inc["triggers"] += 1
        elif inc is not None and inc["status"] != "resolved":
            inc["status"] = "acknowledged" if action == "acknowledge" else "resolved"
            inc["changed_at"] = self.now()
        self.log.append((action, key))
        return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": key})


    def act(self, key: str, status: str | None = None, assignee: str | None = None) -> None:
        inc = self.incidents[key]
        if status is not None:
            inc["status"] = status
        if assignee is not None:
            inc["assignee"] = assignee
        inc["changed_at"] = self.now()

    def incident_json(self, key: str) -> dict[str, Any]:
        """An incident as the REST API (GET /incidents) shows it."""
        inc = self.incidents[key]
        who = [{"at": iso_ms(inc["changed_at"], "Z"), "assignee": {
            "id": "PTUXL6G", "summary": inc["assignee"], "type": "user_reference"}}] \
            if inc["assignee"] else []
        return {"id": inc["id"], "type": "incident", "incident_number": inc["number"],
                "title": inc["summary"], "status": inc["status"], "incident_key": key,
                "created_at": iso_ms(inc["changed_at"], "Z"),
                "last_status_change_at": iso_ms(inc["changed_at"], "Z"), "assignments": who}


@dataclass
class JiraEmu:
    email: str
    token: str
    project: str = "OPS"
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(10001))
    now: Callable[[], float] = time.time  # the desk's clock
    CATEGORIES = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}
    TRANSITIONS = {"To Do": [("21", "Start", "In Progress"), ("31", "Done", "Done")],
                   "In Progress": [("31", "Done", "Done")],
                   "Done": [("41", "Reopen", "To Do")]}

    def __call__(self, req: Req) -> Reply:
        if req.headers.get("authorization") != basic(self.email, self.token):
            return Reply(401, {"errorMessages": ["You are not authenticated."]})
        parts = req.path.split("/")
        if req.method == "POST" and req.path == "/rest/api/2/issue":
            f = (req.json or {}).get("fields") or {}
            bad = missing(f, "summary", "project", "issuetype")
            if bad or f["project"].get("key") != self.project:
                return Reply(400, {"errorMessages": [], "errors": {k: "required" for k in bad}})
            num = next(self.ids)
            key = f"{self.project}-{num - 10000}"
            self.issues[key] = {"id": str(num), "fields": f, "status": "To Do", "comments": [],
                                "assignee": None, "updated": self.now()}
            return Reply(201, {"id": str(num), "key": key,
                               "self": f"http://jira/rest/api/2/issue/{num}"})
        if req.method == "GET" and req.path == "/rest/api/2/search":
            label = req.query["jql"].split('labels = "')[1].rstrip('"')
            found = [{"id": i["id"], "key": k} for k, i in self.issues.items()
                     if label in i["fields"].get("labels", [])]
            return Reply(200, {"issues": found[: int(req.query.get("maxResults", 50))],
                               "total": len(found)})
        if len(parts) >= 6 and parts[5] in self.issues:
            issue = self.issues[parts[5]]
            tail = parts[6] if len(parts) > 6 else ""
            if tail == "comment" and req.method == "POST":
                if missing(req.json, "body"):
                    return Reply(400, {"errors": {"comment": "required"}})
                issue["comments"].append(req.json["body"])
                return Reply(201, {"id": str(len(issue["comments"])), "body": req.json["body"]})
            if tail == "comment" and req.method == "GET":
                return Reply(200, {"comments": [{"body": b} for b in issue["comments"]],
                                   "total": len(issue["comments"])})
            if tail == "" and req.method == "GET":
                return Reply(200, self.issue_json(parts[5]))
            offered = self.TRANSITIONS[issue["status"]]
            if tail == "transitions" and req.method == "GET":
                return Reply(200, {"transitions": [{"id": i, "name": n, "to": {"name": to}}
                                                   for i, n, to in offered]})
            if tail == "transitions" and req.method == "POST":
                tid = ((req.json or {}).get("transition") or {}).get("id")
                match = [to for i, _, to in offered if i == tid]
                if not match:
                    return Reply(400, {"errorMessages": [f"Transition id '{tid}' is not valid "
                                                         "for this issue."]})
                issue["status"] = match[0]
                issue["updated"] = self.now()
                for c in ((req.json.get("update") or {}).get("comment") or []):
                    issue["comments"].append(c["add"]["body"])
                return Reply(204)
        return Reply(404, {"errorMessages": ["Issue does not exist"]})


    def act(self, key: str, status: str | None = None, assignee: str | None = None) -> None:
        """A person's change in Jira itself."""
        issue = self.issues[key]
        if status is not None:
            issue["status"] = status
        if assignee is not None:
            issue["assignee"] = assignee
        issue["updated"] = self.now()

    def issue_json(self, key: str) -> dict[str, Any]:
        """The issue as GET /rest/api/2/issue/KEY (and a webhook) shows it."""
        i = self.issues[key]
        st = i["status"]
        return {"id": i["id"], "key": key, "fields": {
            **i["fields"], "status": {"name": st, "statusCategory": {
                "key": self.CATEGORIES[st], "name": st}},
            "assignee": {"displayName": i["assignee"]} if i["assignee"] else None,
            "resolution": {"name": "Done"} if st == "Done" else None,
            "updated": iso_ms(i["updated"], "+0000")}}


@dataclass
class ZammadEmu:
    token: str
    now: Callable[[], float] = time.time
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, req: Req) -> Reply:
        if req.headers.get("authorization") != f"Token token={self.token}":
            return Reply(401, {"error": "authentication failed"})
        if req.method == "POST" and req.path == "/api/v1/tickets":
            d = req.json or {}
            bad = missing(d, "title", "group", "customer") + missing(d.get("article"), "body")
            if bad:
                return Reply(422, {"error": f"missing {bad}"})
            tid = next(self.ids)
            self.tickets[tid] = {"title": d["title"], "state": "new", "articles": [d["article"]],
                                 "priority": d.get("priority"), "owner": None,
                                 "updated_at": self.now()}
            return Reply(201, {"id": tid, "number": str(31000 + tid), "title": d["title"]})
        if req.method == "GET" and req.path == "/api/v1/tickets/search":
            needle = req.query["query"].split('"')[1]
            return Reply(200, {"tickets": [i for i, t in self.tickets.items()
                                           if needle in t["title"]], "tickets_count": 1})
        if req.method == "POST" and req.path == "/api/v1/ticket_articles":
            d = req.json or {}
            t = self.tickets.get(d.get("ticket_id"))
            if t is None or missing(d, "body"):
                return Reply(422, {"error": "ticket_id and body required"})
            t["articles"].append(d)
            return Reply(201, {"id": len(t["articles"]), "ticket_id": d["ticket_id"]})
        if req.path.startswith("/api/v1/ticket_articles/by_ticket/"):
            t = self.tickets.get(int(req.path.rsplit("/", 1)[1]))
            return Reply(200, t["articles"]) if t else Reply(404, {"error": "not found"})
        if req.method == "GET" and req.path.startswith("/api/v1/tickets/"):
            tid = int(req.path.rsplit("/", 1)[1])
            return Reply(200, self.ticket_json(tid)) if tid in self.tickets else Reply(
                404, {"error": "not found"})
        if req.method == "PUT" and req.path.startswith("/api/v1/tickets/"):
            t = self.tickets.get(int(req.path.rsplit("/", 1)[1]))
            if t is None:
                return Reply(404, {"error": "not found"})
            d = req.json or {}
            if "state" in d:
                t["state"] = d["state"]
                t["updated_at"] = self.now()
            if d.get("article"):
                t["articles"].append(d["article"])
            return Reply(200, {"id": int(req.path.rsplit("/", 1)[1]), "state": t["state"]})
        return Reply(404, {"error": "no route"})


    def act(self, tid: int, state: str | None = None, owner: str | None = None) -> None:
        t = self.tickets[tid]
        if state is not None:
            t["state"] = state
        if owner is not None:
            t["owner"] = owner
        t["updated_at"] = self.now()

    def ticket_json(self, tid: int) -> dict[str, Any]:
        """GET /api/v1/tickets/ID?expand=true: state and owner by name."""
        t = self.tickets[tid]
        return {"id": tid, "title": t["title"], "state": t["state"],
                "owner": t["owner"] or "-", "updated_at": iso_ms(t["updated_at"], "Z")}


@dataclass
class GlpiEmu:
    app_token: str
    user_token: str
    now: Callable[[], float] = time.time
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    opened: int = 0
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, req: Req) -> Reply:
        if req.headers.get("app-token") != self.app_token:
            return Reply(400, ["ERROR_WRONG_APP_TOKEN_PARAMETER", "missing app token"])
        path = req.path.removeprefix("/apirest.php")
        if path == "/initSession":
            if req.headers.get("authorization") != f"user_token {self.user_token}":
                return Reply(401, ["ERROR_LOGIN_PARAMETERS_MISSING", "bad user token"])
            self.opened += 1
            token = f"s{self.opened}"
            self.sessions.add(token)
            return Reply(200, {"session_token": token})
        session = req.headers.get("session-token")
        if session not in self.sessions:
            return Reply(401, ["ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid"])
        if path == "/killSession":
            self.sessions.discard(session)
            return Reply(200, True)
        inp = (req.json or {}).get("input") if req.json else None
        if req.method == "POST" and path == "/Ticket":
            if missing(inp, "name", "content"):
                return Reply(400, ["ERROR_GLPI_ADD", "name and content required"])
            tid = next(self.ids)
            self.tickets[tid] = {**inp, "status": 1, "followups": [], "solutions": [],
                                 "history": [], "date_mod": self.now(), "assignee": None}
            return Reply(201, {"id": tid, "message": f"Item successfully added: {tid}"})
        if req.method == "GET" and path == "/search/Ticket":
            needle = req.query["criteria[0][value]"]
            rows = [{"1": t["name"], "2": i} for i, t in self.tickets.items()
                    if needle in t["name"]]
            return Reply(200, {"totalcount": len(rows), "count": len(rows), "data": rows})
        if req.method == "POST" and path in ("/ITILFollowup", "/ITILSolution"):
            if missing(inp, "itemtype", "items_id", "content") or inp["itemtype"] != "Ticket":
                return Reply(400, ["ERROR_GLPI_ADD", "itemtype, items_id, content required"])
            t = self.tickets.get(inp["items_id"])
            if t is None:
                return Reply(400, ["ERROR_GLPI_ADD", "no such ticket"])
            if path == "/ITILSolution":
                if t["status"] >= 5:
                    return Reply(400, ["ERROR_GLPI_ADD", "ticket already solved"])
                t["solutions"].append(inp["content"])
                t["status"] = 5
                t["date_mod"] = self.now()
            else:
                t["followups"].append(inp["content"])
            t["history"].append(inp["content"])
            return Reply(201, {"id": len(t["followups"]) + len(t["solutions"]),
                               "message": "Item successfully added"})
        parts = path.split("/")
        if len(parts) >= 3 and parts[1] == "Ticket" and int(parts[2]) in self.tickets:
            t = self.tickets[int(parts[2])]
            if len(parts) == 4 and parts[3] == "ITILFollowup":
                return Reply(200, [{"content": c} for c in t["followups"]])
            if req.method == "GET":
                return Reply(200, {"id": int(parts[2]), "name": t["name"], "status": t["status"],
                                   "date_mod": iso_s(t["date_mod"]).replace("T", " ")})
            if req.method == "PUT":
                t["status"] = inp["status"]
                t["date_mod"] = self.now()
                return Reply(200, [{parts[2]: True, "message": ""}])
        return Reply(404, ["ERROR_ITEM_NOT_FOUND", path])


    def act(self, tid: int, status: int | None = None, assignee: str | None = None) -> None:
        t = self.tickets[tid]
        if status is not None:
            t["status"] = status
        if assignee is not None:
            t["assignee"] = assignee
        t["date_mod"] = self.now()


@dataclass
class ServiceNowEmu:
    user: str
    password: str
    now: Callable[[], float] = time.time
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, req: Req) -> Reply:
        if req.headers.get("authorization") != basic(self.user, self.password):
            return Reply(401, {"error": {"message": "User Not Authenticated"},
                               "status": "failure"})
        if req.path == "/api/now/table/incident" and req.method == "POST":
            d = req.json or {}
            if missing(d, "short_description", "correlation_id"):
                return Reply(400, {"error": {"message": "missing fields"}, "status": "failure"})
            n = next(self.ids)
            sys_id = hashlib.md5(str(n).encode()).hexdigest()
            self.incidents[sys_id] = {**d, "state": "1", "number": f"INC{n:07d}",
                                      "work_notes": [], "assigned_to": "", "mod_count": 0,
                                      "updated": self.now()}
            return Reply(201, {"result": {"sys_id": sys_id, "number": f"INC{n:07d}",
                                          "state": "1"}})
        if req.path == "/api/now/table/incident" and req.method == "GET":
            corr = req.query["sysparm_query"].split("correlation_id=")[1]
            rows = [{"sys_id": s, "number": i["number"]} for s, i in self.incidents.items()
                    if i["correlation_id"] == corr]
            return Reply(200, {"result": rows[: int(req.query.get("sysparm_limit", 100))]})
        if req.path == "/api/now/table/sys_journal_field":
            q = req.query["sysparm_query"]
            sys_id = q.split("element_id=")[1].split("^")[0]
            needle = q.split("valueLIKE")[1]
            notes = self.incidents.get(sys_id, {}).get("work_notes", [])
            return Reply(200, {"result": [{"sys_id": "j"} for n in notes if needle in n][:1]})
        if req.path.startswith("/api/now/table/incident/") and req.method == "GET":
            sys_id = req.path.rsplit("/", 1)[1]
            if sys_id not in self.incidents:
                return Reply(404, {"error": {"message": "No Record found"}, "status": "failure"})
            return Reply(200, {"result": self.record(sys_id)})
        if req.path.startswith("/api/now/table/incident/") and req.method == "PATCH":
            inc = self.incidents.get(req.path.rsplit("/", 1)[1])
            if inc is None:
                return Reply(404, {"error": {"message": "No Record found"}, "status": "failure"})
            d = dict(req.json or {})
            if d.get("state") == "6" and missing(d, "close_code", "close_notes"):
                return Reply(400, {"error": {"message": "close_code and close_notes required"}})
            if "work_notes" in d:
                inc["work_notes"].append(d.pop("work_notes"))
            inc.update(d)
            inc["mod_count"] += 1
            inc["updated"] = self.now()
            return Reply(200, {"result": {"sys_id": req.path.rsplit("/", 1)[1],
                                          "state": inc["state"]}})
        return Reply(404, {"error": {"message": "Invalid table"}, "status": "failure"})


    def act(self, sys_id: str, state: str | None = None, assigned_to: str | None = None,
            work_note: str | None = None) -> None:
        inc = self.incidents[sys_id]
        if state is not None:
            inc["state"] = state
        if assigned_to is not None:
            inc["assigned_to"] = assigned_to
        if work_note is not None:
            inc["work_notes"].append(work_note)
        inc["mod_count"] += 1
        inc["updated"] = self.now()

    def record(self, sys_id: str) -> dict[str, Any]:
        """The incident as the Table API shows it with sysparm_display_value=all."""
        inc = self.incidents[sys_id]

        def f(v: Any, shown: Any = None) -> dict[str, Any]:
            return {"value": v, "display_value": v if shown is None else shown}

        return {"sys_id": f(sys_id), "number": f(inc["number"]), "state": f(inc["state"]),
                "correlation_id": f(inc["correlation_id"]),
                "assigned_to": f(inc["assigned_to"]),
                "sys_updated_on": f(iso_s(inc["updated"]).replace("T", " ")),
                "sys_updated_by": f("ines.engineer"), "sys_mod_count": f(str(inc["mod_count"])),
                "close_notes": f(inc.get("close_notes", ""))}


def iso_ms(ts: float, zone: str) -> str:
    """2026-11-27T05:00:00.123 + zone (`Z`, `+0000`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + zone


def iso_s(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)
