"""Config → Apprise channels, once at start-up: URLs read (a missing secret refuses to start),
checked with Apprise, and each channel's outbox registration (which actions and teams it hears
of: what its routes can match, so no outbox row is written for a change no route takes)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from fieldwatch.collector.desks.config import DeskBase
from fieldwatch.collector.desks.model import ACTIONS, Action
from fieldwatch.collector.notify.apprise_channel import AppriseChannel, Journal, personal_url
from fieldwatch.collector.notify.config import ChannelSpec, NotificationsConfig
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.routing import TeamsSpec

from fieldwatch.clock import Clock
from fieldwatch.errors import ConfigError, Problem

log = logging.getLogger(__name__)
WHERE = "<notifications>"


@dataclass
class Channels:
    desks: dict[str, AppriseChannel] = field(default_factory=dict)
    registrations: list[DeskBase] = field(default_factory=list)


def registration(cfg: NotificationsConfig, name: str) -> DeskBase | None:
    """What the outbox should queue for channel `name`; None when no route names it."""
    routes = [r for r in cfg.routes if name in r.channels]
    if not routes:
        return None
    actions: list[Action] = [a for a in ACTIONS if any(a in r.match.actions for r in routes)]
    teams = sorted({t for r in routes for t in r.match.teams}) \
        if all(r.match.teams for r in routes) else []
    return DeskBase(name=name, actions=actions, teams=teams)


def channel_url(spec: ChannelSpec) -> str:
    url = spec.url if isinstance(spec.url, str) else spec.url.value().get_secret_value()
    if spec.contact and "{to}" not in url:
        raise ConfigError([Problem(WHERE, 0, 0, f"channel {spec.name}: a personal channel's URL "
                                                "needs `{to}` where the address goes")])
    return url


def check_url(spec: ChannelSpec, url: str, teams: TeamsSpec) -> None:
    """Refuse at start-up a URL Apprise cannot use (checked with a real address where a team
    member has one; the URL itself is never printed: it holds a token)."""
    import apprise

    sample = url
    if spec.contact:
        address = next((m.contacts[spec.contact] for t in teams.teams.values()
                        for m in t.members if spec.contact in m.contacts), None)
        if address is None:
            log.warning("notifications: nobody in the teams file has a %r contact: channel %s "
                        "will reach nobody", spec.contact, spec.name)
            return
        sample = personal_url(url, address)
    if apprise.Apprise.instantiate(sample) is None:
        scheme = sample.split("://", 1)[0]
        raise ConfigError([Problem(WHERE, 0, 0, f"channel {spec.name}: Apprise cannot use this "
                                                f"{scheme}:// URL (see the Apprise wiki)")])


def unknown_people(cfg: NotificationsConfig, teams: TeamsSpec) -> list[str]:
    special = ("oncall", "next", "lead", "team", "assignee", "escalation")
    return sorted({w for r in cfg.routes for w in r.notify
                   if w.partition(":")[0] not in special and teams.member(w) is None})


def build_channels(cfg: NotificationsConfig, teams: TeamsSpec, journal: Journal, clock: Clock,
                   stats: Stats, taken: Sequence[str] = ()) -> Channels:
    """The channels as outbox desks. `taken`: desk names already in use (a clash refuses to
    start: a channel is a desk in the outbox)."""
    clash = sorted({c.name for c in cfg.channels} & set(taken))
    problems = [Problem(WHERE, 0, 0, f"channel {n}: an integrations target has this name; "
                                     "channels and desks share the outbox") for n in clash]
    for name in unknown_people(cfg, teams):
        problems.append(Problem(WHERE, 0, 0, f"routes notify {name!r}: nobody of that name in "
                                             "the teams file"))
    if problems:
        raise ConfigError(problems)
    out = Channels()
    for spec in cfg.channels:
        reg = registration(cfg, spec.name)
        if reg is None:
            log.warning("notifications: no route names channel %s; it gets nothing", spec.name)
            continue
        url = channel_url(spec)
        check_url(spec, url, teams)
        out.desks[spec.name] = AppriseChannel(spec, url, cfg, teams, journal, clock, stats)
        out.registrations.append(reg)
    return out
