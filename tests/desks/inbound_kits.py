"""One kit per desk whose changes come back: how a person's change is made in the emulated desk
(`change`), the webhook that desk then sends, in its documented shape (the bodies come from
tests/fixtures/inbound), and how the desk signs it."""

from __future__ import annotations

import base64
import copy
import hmac
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.desks import emulators as emu
from tests.desks.emulators import iso_ms

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inbound"
SECRET = "whsec-3f9a0c"
JSON = "application/json"
ACTIONS = ("ack", "resolve", "reopen", "assign", "comment")
_ids = itertools.count(5000)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, indent=1).encode()


@dataclass
class Said:
    """A desk-side change: who, and what (text for a comment, the assignee for assign)."""

    action: str
    who: str = "Ines Engineer"
    text: str = "Bearing noise confirmed on site."


@dataclass
class InKit:
    kind: str
    emulator: Any
    target: Callable[[str], dict[str, Any]]  # desk target config, given the emulator's URL
    change: Callable[[Any, str, Said], None]  # the change in the desk (no webhook)
    payload: Callable[[Any, str, Said, float], tuple[dict[str, str], bytes]]  # its webhook
    sign: Callable[[dict[str, str], bytes, str], dict[str, str]]

    def webhook(self, ext: str, said: Said, at: float,
                secret: str = SECRET) -> tuple[dict[str, str], bytes]:
        """Make the change in the desk and return the signed webhook it sends."""
        self.change(self.emulator, ext, said)
        headers, body = self.payload(self.emulator, ext, said, at)
        return self.sign(headers, body, secret), body


def _mac(secret: str, data: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), data, digest).hexdigest()


# -- Jira ---------------------------------------------------------------------------------------

def _jira_change(e: emu.JiraEmu, key: str, s: Said) -> None:
    status = {"ack": "In Progress", "resolve": "Done", "reopen": "To Do"}.get(s.action)
    if status or s.action == "assign":
        e.act(key, status=status, assignee=s.who if s.action == "assign" else None)
    elif s.action == "comment":
        e.issues[key]["comments"].append(s.text)


def _jira_payload(e: emu.JiraEmu, key: str, s: Said, at: float) -> tuple[dict[str, str], bytes]:
    issue = e.issue_json(key)
    if s.action == "comment":
        doc = fixture("jira_comment_created.json")
        doc["comment"].update(id=str(next(_ids)), body=s.text)
        doc["comment"]["author"]["displayName"] = s.who
        doc["issue"].update(id=issue["id"], key=key)
        doc["issue"]["fields"]["status"] = issue["fields"]["status"]
    else:
        doc = fixture("jira_issue_updated.json")
        doc["user"]["displayName"] = s.who
        doc["issue"] = {**doc["issue"], **issue,
                        "fields": {**doc["issue"]["fields"], **issue["fields"]}}
    doc["timestamp"] = int(at * 1000)
    return {"Content-Type": JSON, "X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}, dumps(doc)


def _jira_sign(h: dict[str, str], body: bytes, secret: str) -> dict[str, str]:
    return {**h, "X-Hub-Signature": "sha256=" + _mac(secret, body)}


# -- Zammad -------------------------------------------------------------------------------------

def _zammad_change(e: emu.ZammadEmu, tid: str, s: Said) -> None:
    state = {"ack": "open", "resolve": "closed", "reopen": "open"}.get(s.action)
    if state or s.action == "assign":
        e.act(int(tid), state=state, owner="ines@example.com" if s.action == "assign" else None)
    elif s.action == "comment":
        e.tickets[int(tid)]["articles"].append({"id": next(_ids), "body": s.text})


def _zammad_payload(e: emu.ZammadEmu, tid: str, s: Said,
                    at: float) -> tuple[dict[str, str], bytes]:
    t = e.tickets[int(tid)]
    doc = fixture("zammad_trigger.json")
    tk = doc["ticket"]
    tk.update(id=int(tid), title=t["title"], state=t["state"], updated_at=iso_ms(at, "Z"))
    if t["owner"]:
        tk.update(owner_id=5, owner={"id": 5, "login": t["owner"], "firstname": "Ines",
                                     "lastname": "Engineer", "active": True})
    last = t["articles"][-1]
    art = doc["article"]
    art.update(id=last.get("id", 104), ticket_id=int(tid), body=last["body"],
               content_type="text/plain", created_at=iso_ms(at, "Z"))
    return {"Content-Type": JSON, "X-Zammad-Trigger": "fieldwatch",
            "X-Zammad-Delivery": uuid.uuid4().hex}, dumps(doc)


def _zammad_sign(h: dict[str, str], body: bytes, secret: str) -> dict[str, str]:
    return {**h, "X-Hub-Signature": "sha1=" + _mac(secret, body, "sha1")}


# -- PagerDuty ----------------------------------------------------------------------------------

def _pd_change(e: emu.PagerDutyEmu, key: str, s: Said) -> None:
    status = {"ack": "acknowledged", "resolve": "resolved", "reopen": "triggered"}.get(s.action)
    if status or s.action == "assign":
        e.act(key, status=status, assignee=s.who if s.action == "assign" else None)


def _pd_payload(e: emu.PagerDutyEmu, key: str, s: Said, at: float) -> tuple[dict[str, str], bytes]:
    inc = e.incidents[key]
    if s.action == "comment":
        doc = fixture("pagerduty_note.json")
        doc["event"]["data"]["incident"]["id"] = inc["id"]
        doc["event"]["data"].update(id=f"PN{next(_ids)}", content=s.text)
    else:
        doc = fixture("pagerduty_incident.json")
        doc["event"]["event_type"] = {"ack": "incident.acknowledged", "resolve":
                                      "incident.resolved", "reopen": "incident.reopened",
                                      "assign": "incident.reassigned"}[s.action]
        data = doc["event"]["data"]
        data.update(id=inc["id"], status=inc["status"], incident_key=key, title=inc["summary"])
        data["assignees"][0]["summary"] = inc["assignee"] or "Ines Engineer"
    doc["event"].update(id=str(uuid.uuid4()), occurred_at=iso_ms(at, "Z"))
    doc["event"]["agent"] = {**(doc["event"]["agent"] or {}), "summary": s.who}
    return {"Content-Type": JSON}, dumps(doc)


def _pd_sign(h: dict[str, str], body: bytes, secret: str) -> dict[str, str]:
    # two signatures, as while a secret is rotated: the old one first
    return {**h, "X-PagerDuty-Signature": f"v1={_mac('retired', body)},v1={_mac(secret, body)}"}


# -- GLPI ---------------------------------------------------------------------------------------

def _glpi_change(e: emu.GlpiEmu, tid: str, s: Said) -> None:
    status = {"ack": 2, "resolve": 5, "reopen": 2}.get(s.action)
    if status or s.action == "assign":
        e.act(int(tid), status=status, assignee=s.who if s.action == "assign" else None)
    elif s.action == "comment":
        e.tickets[int(tid)]["followups"].append(s.text)


def _glpi_payload(e: emu.GlpiEmu, tid: str, s: Said, at: float) -> tuple[dict[str, str], bytes]:
    t = e.tickets[int(tid)]
    if s.action == "comment":
        doc = fixture("glpi_followup.json")
        doc["item"].update(id=next(_ids), items_id=int(tid), content=f"<p>{s.text}</p>")
    else:
        doc = fixture("glpi_ticket.json")
        names = {1: "New", 2: "Processing (assigned)", 5: "Solved", 6: "Closed"}
        doc["item"].update(id=int(tid), name=t["name"], status={
            "id": t["status"], "name": names.get(t["status"], "Pending")})
        if t["assignee"]:
            doc["item"]["team"].append({"id": 9, "name": t["assignee"], "type": "User",
                                        "role": "assigned"})
    return {"X-GLPI-timestamp": str(int(at))}, dumps(doc)  # GLPI sends no Content-Type


def _glpi_sign(h: dict[str, str], body: bytes, secret: str) -> dict[str, str]:
    return {**h, "X-GLPI-signature": _mac(secret, body + h["X-GLPI-timestamp"].encode())}


# -- ServiceNow ---------------------------------------------------------------------------------

def _snow_change(e: emu.ServiceNowEmu, sys_id: str, s: Said) -> None:
    state = {"ack": "2", "resolve": "6", "reopen": "2"}.get(s.action)
    if s.action == "resolve":
        e.incidents[sys_id]["close_notes"] = "Replaced the bearing."
    e.act(sys_id, state=state, assigned_to=s.who if s.action == "assign" else None,
          work_note=f"2026-11-27 05:00:00 - {s.who} (Work notes)\n{s.text}"
          if s.action == "comment" else None)


def _snow_payload(e: emu.ServiceNowEmu, sys_id: str, s: Said,
                  at: float) -> tuple[dict[str, str], bytes]:
    doc = copy.deepcopy(fixture("servicenow_incident.json"))
    doc.update(e.record(sys_id))
    notes = e.incidents[sys_id]["work_notes"]
    if s.action == "comment":
        doc["work_notes"] = {"value": notes[-1], "display_value": notes[-1]}
    return {"Content-Type": JSON}, dumps(doc)


def _snow_sign(h: dict[str, str], body: bytes, secret: str) -> dict[str, str]:
    cred = base64.b64encode(f"snow:{secret}".encode()).decode()
    return {**h, "Authorization": f"Basic {cred}"}


def _inbound(**extra: Any) -> dict[str, Any]:
    return {"secret": {"env": "FW_IN_SECRET"}, "reconcile": 0, **extra}


def kits(now: Callable[[], float]) -> list[InKit]:
    return [
        InKit("jira", emu.JiraEmu("bot@example.com", "tok", now=now),
              lambda url: {"type": "jira", "name": "jira", "url": url, "project": "OPS",
                           "email": "bot@example.com", "api_token": {"env": "FW_JIRA"},
                           "inbound": _inbound()},
              _jira_change, _jira_payload, _jira_sign),
        InKit("zammad", emu.ZammadEmu("ztok", now=now),
              lambda url: {"type": "zammad", "name": "zammad", "url": url,
                           "token": {"env": "FW_ZAMMAD"}, "customer": "ops@example.com",
                           "inbound": _inbound()},
              _zammad_change, _zammad_payload, _zammad_sign),
        InKit("pagerduty", emu.PagerDutyEmu("R0UTING", now=now),
              lambda url: {"type": "pagerduty", "name": "pagerduty", "url": url + "/v2/enqueue",
                           "routing_key": {"env": "FW_PD"},
                           "inbound": _inbound(api_url=url, api_token={"env": "FW_PD_API"})},
              _pd_change, _pd_payload, _pd_sign),
        InKit("glpi", emu.GlpiEmu("app", "user", now=now),
              lambda url: {"type": "glpi", "name": "glpi", "url": url + "/apirest.php",
                           "app_token": {"env": "FW_GLPI_APP"},
                           "user_token": {"env": "FW_GLPI_USER"}, "inbound": _inbound()},
              _glpi_change, _glpi_payload, _glpi_sign),
        InKit("servicenow", emu.ServiceNowEmu("svc", "pw", now=now),
              lambda url: {"type": "servicenow", "name": "servicenow", "url": url,
                           "username": "svc", "password": {"env": "FW_SNOW"},
                           "inbound": _inbound(username="snow")},
              _snow_change, _snow_payload, _snow_sign),
    ]


KINDS = ("jira", "zammad", "pagerduty", "glpi", "servicenow")
ENV = {"FW_IN_SECRET": SECRET, "FW_JIRA": "tok", "FW_ZAMMAD": "ztok", "FW_PD": "R0UTING",
       "FW_PD_API": "pd-rest", "FW_GLPI_APP": "app", "FW_GLPI_USER": "user", "FW_SNOW": "pw"}

