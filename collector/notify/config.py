"""Notifications to people through Apprise: the `notifications:` section of collector.yaml.

Channels are Apprise URLs (Slack, Microsoft Teams, Telegram, WeCom, DingTalk, SMS gateways,
email… — https://github.com/caronc/apprise/wiki). A URL carries the service's token, so it is
best given as `{env: NAME}` or `{file: PATH}` (read at start-up, never logged). A channel with
`contact:` is personal: one message per person, to the address in their teams.yaml entry
(`contacts: {phone: ...}`), put where the URL says `{to}`; without it the channel is a room
(a Slack channel, a Teams chat, a group robot) that gets one message per change.

Routes say which changes go where, first match wins (`continue: true` goes on to the next):
by severity, site (glob patterns), team, action and local time of day (`hours`, in `timezone`).
"""

from __future__ import annotations

import re
from typing import Literal

from fieldwatch.collector.desks.config import Secret
from fieldwatch.collector.desks.model import ACTIONS, Action
from fieldwatch.collector.notify.oncall import zone
from fieldwatch.collector.notify.templates import Text, check_template
from fieldwatch.collector.sla.policy import parse_days, parse_span
from pydantic import Field, field_validator, model_validator

from fieldwatch.models import StrictModel

NAME = r"^[A-Za-z0-9_.-]{1,64}$"
LANGUAGE = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"
WHO = r"^(oncall|next|lead|team|assignee|escalation)$|^(oncall|next):[A-Za-z0-9_.-]+$|^[^:\s]+$"


class TemplateSpec(StrictModel):
    title: str = Field(max_length=2000)
    body: str = Field(max_length=20000)

    @model_validator(mode="after")
    def _placeholders(self) -> TemplateSpec:
        problems = [f"{k}: {p}" for k in ("title", "body")
                    for p in check_template(getattr(self, k))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def text(self) -> Text:
        return Text(self.title, self.body)


class ChannelSpec(StrictModel):
    name: str = Field(pattern=NAME)  # also its outbox desk name: unique among desks too
    url: str | Secret  # an Apprise URL; `{to}` where a personal channel puts the address
    contact: str | None = Field(None, pattern=NAME)  # personal: which of a person's contacts
    language: str | None = Field(None, pattern=LANGUAGE)  # a room's language (default: config's)
    templates: dict[str, TemplateSpec] = {}  # language → text; others fall back to the shipped

    @model_validator(mode="after")
    def _to(self) -> ChannelSpec:
        if isinstance(self.url, str):
            if "://" not in self.url:
                raise ValueError("url: expected an Apprise URL such as slack://… or tgram://…")
            if self.contact and "{to}" not in self.url:
                raise ValueError("url: a personal channel (with `contact`) needs `{to}` in its "
                                 "URL, where each person's address goes")
            if not self.contact and "{to}" in self.url:
                raise ValueError("url: `{to}` is for personal channels: add `contact: phone` "
                                 "(or whichever contact the URL takes)")
        return self

    @field_validator("templates")
    @classmethod
    def _languages(cls, v: dict[str, TemplateSpec]) -> dict[str, TemplateSpec]:
        bad = [k for k in v if not re.match(LANGUAGE, k)]
        if bad:
            raise ValueError(f"not language tags (en, zh, zh-CN): {', '.join(bad)}")
        return v


class MatchSpec(StrictModel):
    severity: list[Literal["P1", "P2", "P3"]] = []  # the ticket's current priority; empty: any
    sites: list[str] = []  # glob patterns (plant-*); empty: any
    teams: list[str] = []  # empty: any
    actions: list[Action] = ["open", "reopen", "escalate"]

    @field_validator("actions")
    @classmethod
    def _some(cls, v: list[Action]) -> list[Action]:
        if not v:
            raise ValueError(f"list at least one of {', '.join(ACTIONS)}")
        return v


class RouteSpec(StrictModel):
    name: str | None = Field(None, pattern=NAME)
    match: MatchSpec = MatchSpec()
    timezone: str | None = None  # of `hours`; default: the section's timezone
    hours: dict[str, list[str]] = {}  # local hours it applies in: {mon-fri: ["08:00-18:00"]}
    # who: oncall, next, oncall:<team>, next:<team>, lead, team, assignee, escalation (the
    # people an escalation step named), or a person's name. Empty: on call, or for escalations
    # the step's people.
    notify: list[str] = []
    channels: list[str] = Field(min_length=1)
    continue_: bool = Field(False, alias="continue")  # go on to later routes after this one

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            zone(v)
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, spans in v.items():
            parse_days(key)
            for s in spans:
                parse_span(s)
        return v

    @field_validator("notify")
    @classmethod
    def _who(cls, v: list[str]) -> list[str]:
        bad = [w for w in v if not re.match(WHO, w)]
        if bad:
            raise ValueError(f"cannot notify {', '.join(map(repr, bad))} (oncall, next, "
                             "oncall:<team>, next:<team>, lead, team, assignee, escalation, "
                             "or a person's name)")
        return v


class NotificationsConfig(StrictModel):
    language: str = Field("en", pattern=LANGUAGE)  # for people and rooms that set none
    timezone: str = "UTC"  # of routes' `hours` unless a route sets its own
    channels: list[ChannelSpec] = []
    routes: list[RouteSpec] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)
        return v

    @field_validator("channels")
    @classmethod
    def _unique(cls, v: list[ChannelSpec]) -> list[ChannelSpec]:
        names = [c.name for c in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"channel names must be unique: {', '.join(dup)}")
        return v

    @model_validator(mode="after")
    def _refs(self) -> NotificationsConfig:
        known = {c.name for c in self.channels}
        for i, r in enumerate(self.routes):
            missing = [c for c in r.channels if c not in known]
            if missing:
                raise ValueError(f"routes.{i}.channels: no channel named "
                                 f"{', '.join(map(repr, missing))} "
                                 f"(defined: {', '.join(sorted(known)) or 'none'})")
        return self
