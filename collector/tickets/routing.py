"""Routing (config/teams.yaml): which team takes a ticket and which member gets it. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fieldwatch.collector.notify.oncall import Rotation, RotationSpec, build_rotation, chain
from pydantic import AnyHttpUrl, Field, model_validator

from fieldwatch.config import load_config
from fieldwatch.models import StrictModel

Name = str


class MemberSpec(StrictModel):
    name: str = Field(min_length=1, max_length=128)
    skills: list[str] = []
    available: bool = True
    language: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")
    contacts: dict[str, str] = {}  # kind → address, e.g. {phone: "+4917…", telegram: "1234"}


class TeamSpec(StrictModel):
    lead: str | None = None
    assign: Literal["least_loaded", "round_robin", "none"] = "least_loaded"
    members: list[MemberSpec] = []
    webhook: AnyHttpUrl | None = None
    oncall: RotationSpec | None = None  # weekly on-call rotation (collector/notify/oncall.py)


class MatchSpec(StrictModel):
    rule: str | None = None
    device_type: str | None = None
    site: str | None = None
    device: str | None = None
    labels: dict[str, str] = {}


class RouteSpec(StrictModel):
    match: MatchSpec
    team: str
    skills: list[str] = []


class TeamsSpec(StrictModel):
    default_team: str | None = None
    teams: dict[str, TeamSpec] = {}
    routes: list[RouteSpec] = []

    @model_validator(mode="after")
    def _refs(self) -> TeamsSpec:
        for i, r in enumerate(self.routes):
            if r.team not in self.teams:
                raise ValueError(f"routes.{i}.team: no team named {r.team!r}")
        if self.default_team and self.default_team not in self.teams:
            raise ValueError(f"default_team: no team named {self.default_team!r}")
        for name, t in self.teams.items():
            if t.oncall is None:
                continue
            members = {m.name for m in t.members}
            strangers = sorted({n for n in t.oncall.order if n not in members}
                               | {o.who for o in t.oncall.overrides if o.who not in members})
            if strangers:
                raise ValueError(f"teams.{name}.oncall: not members of the team: "
                                 f"{', '.join(strangers)}")
            if not (t.oncall.order or t.members):
                raise ValueError(f"teams.{name}.oncall: the team has nobody to put on call")
        return self

    def rotation(self, team: str | None) -> Rotation | None:
        """The team's on-call rotation, or None when it has none."""
        t = self.teams.get(team or "")
        if t is None or t.oncall is None:
            return None
        return build_rotation(t.oncall, [m.name for m in t.members],
                              [m.name for m in t.members if not m.available])

    def member(self, name: str) -> MemberSpec | None:
        """A person's entry (the first team listing them)."""
        for t in self.teams.values():
            for m in t.members:
                if m.name == name:
                    return m
        return None


@dataclass(frozen=True)
class Facts:
    """What routing may look at: never readings or times."""

    rule: str
    site: str
    device: str
    device_type: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    team: str
    skills: tuple[str, ...] = ()


def _fits(m: MatchSpec, f: Facts) -> bool:
    return ((m.rule is None or m.rule == f.rule) and (m.site is None or m.site == f.site)
            and (m.device is None or m.device == f.device)
            and (m.device_type is None or m.device_type == f.device_type)
            and all(f.labels.get(k) == v for k, v in m.labels.items()))


def route(spec: TeamsSpec, facts: Facts, rule_team: str | None) -> Route | None:
    """First matching route; else the rule's own team; else the default team; else none."""
    for r in spec.routes:
        if _fits(r.match, facts):
            return Route(r.team, tuple(r.skills))
    team = rule_team or spec.default_team
    return Route(team) if team else None


def pick_member(spec: TeamsSpec, chosen: Route, load: Mapping[Name, int],
                last: Name | None) -> Name | None:
    """An available member with the skills (everyone available if nobody has them).

    least_loaded: fewest open tickets, ties by roster order; round_robin: the next after `last`.
    """
    team = spec.teams.get(chosen.team)
    if team is None or team.assign == "none":
        return None
    people = [m for m in team.members if m.available]
    skilled = [m for m in people if set(chosen.skills) <= set(m.skills)]
    pool = [m.name for m in (skilled or people)]
    if not pool:
        return None
    if team.assign == "least_loaded":
        return min(pool, key=lambda n: (load.get(n, 0), pool.index(n)))
    roster = [m.name for m in team.members]
    if last in roster:
        start = roster.index(last) + 1
        for n in roster[start:] + roster[:start]:
            if n in pool:
                return n
    return pool[0]


def recipients(spec: TeamsSpec, team: str | None, who: str,
               assignee: str | None, now: float | None = None) -> Sequence[Name]:
    """The people an escalation step notifies. `oncall` / `next` (of the ticket's team, or of
    `oncall:<team>` / `next:<team>`) resolve through the team's rotation at `now`; a team
    without one pages its lead (else its available members)."""
    kind, _, named = who.partition(":")
    if who == "none":
        return []
    if kind in ("oncall", "next"):
        return _on_call(spec, named or team, kind, now)
    t = spec.teams.get(team or "")
    if who == "assignee":
        return [assignee] if assignee else ([t.lead] if t and t.lead else [])
    if t is None:
        return []
    if who == "lead":
        return [t.lead] if t.lead else [m.name for m in t.members]
    return [m.name for m in t.members if m.available]


def _on_call(spec: TeamsSpec, team: str | None, kind: str, now: float | None) -> list[Name]:
    rot = spec.rotation(team)
    if rot is None or now is None:
        return list(recipients(spec, team, "lead", None))
    people = chain(rot, now)
    pick = people[:1] if kind == "oncall" else people[1:2]
    return pick or list(recipients(spec, team, "lead", None))


def load_teams(path: str | Path | None) -> TeamsSpec:
    """Teams from `path`, or none (every ticket keeps its rule's team, nobody assigned)."""
    return load_config(TeamsSpec, path) if path else TeamsSpec()
