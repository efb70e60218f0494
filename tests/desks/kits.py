"""One kit per desk: its emulator, the adapter pointed at it, and how to read the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fieldwatch.collector.desks import glpi, jira, pagerduty, servicenow, webhook, zammad
from fieldwatch.collector.desks.model import Change, Desk

from tests.desks import emulators as emu

TICKET = {"id": 7, "title": "Pump pump-01 at 95 C", "description": "temperature high",
          "severity": "P1", "state": "open", "site": "plant", "device": "pump-01",
          "rule": "pump_hot", "labels": {"sensor": "t1"}, "team": "hardware",
          "fingerprint": "ab12", "last_value": 95.0, "opened_at": 1_800_000_000.0}


def change(action: str, n: int, external_id: str | None = None, unclear: bool = False,
           ticket_id: int = 7, state: str | None = None) -> Change:
    ticket = {**TICKET, "id": ticket_id,
              "state": state or {"resolve": "resolved", "close": "closed"}.get(action, "open")}
    return Change(key=f"fieldwatch-{ticket_id}-{n}", reference=f"fieldwatch-{ticket_id}",
                  action=action, ticket=ticket,  # type: ignore[arg-type]
                  event={"id": n, "kind": action, "at": 1_800_000_000.0 + n, "actor": "alice",
                         "reason": f"step {n}"}, external_id=external_id, unclear=unclear)


@dataclass
class Kit:
    name: str
    emulator: Any
    make: Callable[[str, httpx.Client], Desk]
    count: Callable[[Any], int]  # external tickets created
    status: Callable[[Any, str], str]  # of one external ticket: "open" | "resolved"
    notes: Callable[[Any, str], list[str]]  # notes on one external ticket, in order
    idempotent_by_key: bool = False  # the desk itself drops repeats (no look-up needed)


def _pd_status(e: emu.PagerDutyEmu, key: str) -> str:
    return "resolved" if e.incidents[key]["status"] == "resolved" else "open"


def kits() -> list[Kit]:
    hook = emu.WebhookReceiver(b"s3cret")
    pd = emu.PagerDutyEmu("R0UTING")
    ji = emu.JiraEmu("bot@example.com", "tok")
    za = emu.ZammadEmu("ztok")
    gl = emu.GlpiEmu("app", "user")
    sn = emu.ServiceNowEmu("svc", "pw")
    return [
        Kit("webhook", hook,
            lambda url, c: webhook.Webhook("webhook", c, url + "/hook", b"s3cret"),
            lambda e: len({x["reference"] for x in e.effects}),
            lambda e, ref: "resolved" if [x for x in e.effects if x["reference"] == ref][-1][
                "action"] in ("resolve", "close") else "open",
            lambda e, ref: [x["key"] for x in e.effects if x["reference"] == ref],
            idempotent_by_key=True),
        Kit("pagerduty", pd,
            lambda url, c: pagerduty.PagerDuty("pagerduty", c, url + "/v2/enqueue", "R0UTING",
                                               {"P1": "critical", "P2": "error"}),
            lambda e: len(e.incidents), _pd_status,
            lambda e, key: [a for a, k in e.log if k == key], idempotent_by_key=True),
        Kit("jira", ji,
            lambda url, c: jira.Jira("jira", c, jira.JiraApi(
                url, jira.auth_header("bot@example.com", "tok"), "OPS", "Task"),
                "Done", "Reopen", None),
            lambda e: len(e.issues),
            lambda e, key: "resolved" if e.issues[key]["status"] == "Done" else "open",
            lambda e, key: e.issues[key]["comments"]),
        Kit("zammad", za,
            lambda url, c: zammad.Zammad("zammad", c, zammad.ZammadApi(
                url, "ztok", "Users", "ops@example.com", {"P1": "3 high"}), "closed", "open"),
            lambda e: len(e.tickets),
            lambda e, tid: "resolved" if e.tickets[int(tid)]["state"] == "closed" else "open",
            lambda e, tid: [a["body"] for a in e.tickets[int(tid)]["articles"][1:]]),
        Kit("glpi", gl,
            lambda url, c: glpi.Glpi("glpi", c, glpi.GlpiApi(
                url + "/apirest.php", "app", "user", {"P1": 5})),
            lambda e: len(e.tickets),
            lambda e, tid: "resolved" if e.tickets[int(tid)]["status"] >= 5 else "open",
            lambda e, tid: e.tickets[int(tid)]["history"]),
        Kit("servicenow", sn,
            lambda url, c: servicenow.ServiceNow("servicenow", c, servicenow.ServiceNowApi(
                url, servicenow.auth_header("svc", "pw"), {"P1": "1"}, {"P1": "1"}),
                "6", "2", "Solved (Permanently)"),
            lambda e: len(e.incidents),
            lambda e, sid: "resolved" if e.incidents[sid]["state"] == "6" else "open",
            lambda e, sid: e.incidents[sid]["work_notes"]),
    ]


KIT_NAMES = [k.name for k in kits()]


def kit(name: str) -> Kit:
    return next(k for k in kits() if k.name == name)
