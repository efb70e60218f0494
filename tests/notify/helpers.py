"""Builders shared by the notification tests: teams with a rotation, configs from YAML text,
ticket changes, a journal kept in memory (where the store is not the subject)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fieldwatch.collector.desks.model import Action, Change
from fieldwatch.collector.notify.config import NotificationsConfig
from fieldwatch.collector.tickets.routing import TeamsSpec

from fieldwatch.models import validate
from fieldwatch.yamlmarks import load_yaml

BERLIN = ZoneInfo("Europe/Berlin")

TEAMS = """
default_team: hardware
teams:
  hardware:
    lead: dana
    assign: none
    members:
      - {name: alex, language: en, contacts: {phone: "+4917000001", telegram: "1001",
                                               email: alex@example.com}}
      - {name: bo, language: zh-CN, contacts: {phone: "+8613800000002", telegram: "1002",
                                                email: bo@example.com}}
      - {name: cy, contacts: {phone: "+4917000003", telegram: "1003"}}
      - {name: dana, language: en, contacts: {phone: "+4917000004", email: dana@example.com}}
    oncall:
      order: [alex, bo, cy]
      handover: mon 09:00
      timezone: Europe/Berlin
      start: 2026-01-05
  network:
    lead: eli
    members: [{name: eli, contacts: {phone: "+4917000005"}}]
"""


def berlin(*args: int) -> float:
    return datetime(*args, tzinfo=BERLIN).timestamp()  # type: ignore[misc]


# Weeks from Monday 2026-01-05 09:00: 2026-03-09 is week 9 → order[9 % 3] = alex; the 16th
# starts bo's week, the 23rd cy's.
ALEX_WEEK = berlin(2026, 3, 10, 14)  # Tuesday afternoon


def teams(text: str = TEAMS) -> TeamsSpec:
    return validate(TeamsSpec, load_yaml(text, "teams.yaml"))


def notifications(text: str) -> NotificationsConfig:
    return validate(NotificationsConfig, load_yaml(text, "collector.yaml"))


def change(action: Action = "open", at: float = ALEX_WEEK, data: dict[str, Any] | None = None,
           key: str = "fieldwatch-7-1", unclear: bool = False, **ticket: Any) -> Change:
    t = {"id": 7, "title": "Pump hot", "description": "bearing temperature high",
         "severity": "P1", "priority": "P1", "site": "plant-north", "device": "pump-01",
         "team": "hardware", "rule": "pump_hot", "labels": {"sensor": "bearing"},
         "state": "open", "last_value": 93.5, "assignee": None, **ticket}
    kind = {"open": "opened", "escalate": "sla_escalation"}.get(action, action)
    return Change(key=key, reference="fieldwatch-7", action=action, ticket=t,
                  event={"id": 1, "kind": kind, "at": at, "actor": "rule:pump_hot",
                         "reason": "bearing at 93.5 °C", "data": data or {}},
                  unclear=unclear)


class ListJournal:
    """The timeline as a list (the store-backed one is tested in test_outbox_flow)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str, str, dict[str, Any]]] = []

    def record(self, ticket_id: int, at: float, kind: str, reason: str,
               data: dict[str, Any]) -> None:
        self.events.append((ticket_id, kind, reason, data))

    def done(self, ticket_id: int) -> set[str]:
        return {d["key"] for t, _, _, d in self.events if t == ticket_id}

    def kinds(self) -> list[tuple[str, str]]:
        return [(k, d["to"]) for _, k, _, d in self.events]
