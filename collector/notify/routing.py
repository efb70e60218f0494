"""Which channels and people a ticket change goes to, pure: (config, teams, change) → sends.

Everything is decided at the instant of the change (`event.at`), not at delivery: a retry an
hour later reaches the same people, and a change made during business hours keeps its
business-hours route however long a channel was down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from fieldwatch.collector.desks.model import Change
from fieldwatch.collector.notify.config import ChannelSpec, NotificationsConfig, RouteSpec
from fieldwatch.collector.notify.oncall import on_call, zone
from fieldwatch.collector.sla.policy import parse_days, parse_span
from fieldwatch.collector.tickets.routing import TeamsSpec, recipients


@dataclass(frozen=True)
class Send:
    """One message: to a channel's room (`to` None) or to one person on a personal channel."""

    channel: str
    to: str | None
    language: str
    route: str
    recipients: tuple[str, ...] = ()  # the people the route named (a room message names them)

    @property
    def target(self) -> str:
        return self.to or "room"


def severity(ticket: Mapping[str, Any]) -> str:
    return str(ticket.get("priority") or ticket.get("severity") or "")


def in_hours(route: RouteSpec, default_tz: str, at: float) -> bool:
    """True when `at` falls in the route's local hours (always, when it lists none)."""
    if not route.hours:
        return True
    local = datetime.fromtimestamp(at, zone(route.timezone or default_tz))
    second = local.hour * 3600 + local.minute * 60 + local.second
    for days, spans in route.hours.items():
        if local.weekday() in parse_days(days):
            for s in spans:
                start, end = parse_span(s)
                if start <= second < end:
                    return True
    return False


def matches(route: RouteSpec, change: Change, default_tz: str, at: float) -> bool:
    m, t = route.match, change.ticket
    return (change.action in m.actions
            and (not m.severity or severity(t) in m.severity)
            and (not m.sites or any(fnmatchcase(str(t.get("site") or ""), p) for p in m.sites))
            and (not m.teams or t.get("team") in m.teams)
            and in_hours(route, default_tz, at))


def people(route: RouteSpec, teams: TeamsSpec, change: Change, at: float) -> list[str]:
    """The people a route names for this change, in order, each once."""
    t = change.ticket
    data = change.event.get("data")
    named = data.get("recipients") if isinstance(data, dict) else None
    wanted = route.notify or (["escalation"] if change.action == "escalate" else ["oncall"])
    out: list[str] = []
    for who in wanted:
        if who == "escalation":
            found: Sequence[str] = [str(n) for n in named or () if isinstance(n, str)]
        elif who in ("lead", "team", "assignee") or who.partition(":")[0] in ("oncall", "next"):
            found = recipients(teams, t.get("team"), who, t.get("assignee"), at)
        else:
            found = [who]
        out += [p for p in found if p and p not in out]
    return out


def oncall_of(teams: TeamsSpec, team: str | None, at: float) -> str | None:
    rot = teams.rotation(team)
    return on_call(rot, at) if rot is not None else None


def language_of(teams: TeamsSpec, person: str | None, channel: ChannelSpec,
                default: str) -> str:
    """A person's language (teams.yaml), else the channel's, else the config's."""
    member = teams.member(person) if person else None
    return (member.language if member and member.language else None) \
        or channel.language or default


def plan(cfg: NotificationsConfig, teams: TeamsSpec, change: Change,
         only: str | None = None) -> list[Send]:
    """Every message this change causes (of channel `only`, when given): routes in order,
    first match wins unless it says `continue`; a channel or person reached twice, once."""
    at = float(change.event.get("at") or change.ticket.get("updated_at") or 0.0)
    channels = {c.name: c for c in cfg.channels}
    out: list[Send] = []
    seen: set[tuple[str, str | None]] = set()
    for i, route in enumerate(cfg.routes):
        if not matches(route, change, cfg.timezone, at):
            continue
        who = people(route, teams, change, at)
        for name in route.channels:
            if only is not None and name != only:
                continue
            ch = channels[name]
            targets: list[str | None] = list(who) if ch.contact else [None]
            for person in targets:
                if (name, person) in seen:
                    continue
                seen.add((name, person))
                out.append(Send(name, person, language_of(teams, person, ch, cfg.language),
                                route.name or f"routes[{i}]", tuple(who)))
        if not route.continue_:
            break
    return out
