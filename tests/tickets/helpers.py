"""Shared builders for the service-desk tests: a policy from YAML text, Berlin instants."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fieldwatch.collector.sla.policy import SlaPolicy, SlaSpec, build_policy
from fieldwatch.collector.tickets.config import DeskPolicy
from fieldwatch.collector.tickets.routing import TeamsSpec

from fieldwatch.models import validate
from fieldwatch.yamlmarks import load_yaml

BERLIN = ZoneInfo("Europe/Berlin")

SLA = """
calendars:
  business:
    timezone: Europe/Berlin
    hours: {mon-fri: ["09:00-17:00"]}
    holidays: [2027-01-01]
priorities:
  P1: {respond: 15m, resolve: 4h, calendar: 24x7}
  P2: {respond: 2h, resolve: 8h, calendar: business}
  P3: {respond: 8h, resolve: 40h, calendar: business}
verify_window: 7d
escalation:
  - {name: response_80, clock: response, at: 80%, notify: team}
  - {name: response_breach, clock: response, at: 100%, notify: lead, raise_priority: true}
  - {name: resolution_breach, clock: resolution, at: 100%, notify: lead, raise_priority: true}
"""

TEAMS = """
default_team: desk
teams:
  desk:
    lead: dana
    assign: least_loaded
    members: [{name: dana}, {name: eli}]
  hardware:
    lead: alex
    assign: round_robin
    members:
      - {name: alex, skills: [disk]}
      - {name: bo, skills: [disk]}
      - {name: cy, skills: [disk], available: false}
routes:
  - {match: {rule: disk_full}, team: hardware, skills: [disk]}
"""


def sla_policy(text: str = SLA) -> SlaPolicy:
    return build_policy(validate(SlaSpec, load_yaml(text, "sla.yaml")))


def teams(text: str = TEAMS) -> TeamsSpec:
    return validate(TeamsSpec, load_yaml(text, "teams.yaml"))


def desk_policy(update_every: float = 3600.0) -> DeskPolicy:
    return DeskPolicy(sla_policy(), teams(), update_every)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).timestamp()
