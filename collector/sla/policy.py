"""The SLA policy (config/sla.yaml): targets per priority, calendars, escalation steps.

Validated once at the door into frozen values; every problem reads `file:line:col: message`.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fieldwatch.collector.sla.calendar import ALWAYS, Calendar, Span
from pydantic import Field, field_validator, model_validator

from fieldwatch.config import load_config
from fieldwatch.durations import Duration
from fieldwatch.models import StrictModel

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITIES = ("P1", "P2", "P3")
_SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


def parse_days(key: str) -> list[int]:
    """`mon`, `mon-fri`, `sat,sun` → weekday numbers (0 = Monday)."""
    out: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        a, dash, b = part.partition("-")
        if a not in DAYS or (dash and b not in DAYS):
            raise ValueError(f"{key!r}: days are mon..sun, a range such as mon-fri, or a list")
        i, j = DAYS.index(a), DAYS.index(b or a)
        if j < i:
            raise ValueError(f"{key!r}: a day range runs forward (mon-fri, not fri-mon)")
        out.extend(range(i, j + 1))
    return out


def parse_span(text: str) -> Span:
    """`09:00-17:30` → seconds after midnight; `24:00` may end a span, overnight spans may not."""
    m = _SPAN.match(text.strip())
    if not m:
        raise ValueError(f"{text!r}: expected HH:MM-HH:MM such as 09:00-17:00")
    h1, m1, h2, m2 = map(int, m.groups())
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if m1 > 59 or m2 > 59 or h1 > 23 or end > 86400 or end <= start:
        raise ValueError(f"{text!r}: start must be before end within one day (split overnight "
                         "hours into two spans: 22:00-24:00 and 00:00-06:00)")
    return start, end


class CalendarSpec(StrictModel):
    timezone: str = "UTC"
    hours: dict[str, list[str]]
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name: Europe/Berlin)") from None
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("a calendar needs working hours on at least one day")
        for key, spans in v.items():
            parse_days(key)
            for s in spans:
                parse_span(s)
        return v

    def build(self, name: str) -> Calendar:
        week: list[list[Span]] = [[] for _ in range(7)]
        for key, spans in self.hours.items():
            for d in parse_days(key):
                week[d].extend(parse_span(s) for s in spans)
        return Calendar(name=name, tz=ZoneInfo(self.timezone),
                        week=tuple(tuple(sorted(w)) for w in week),
                        holidays=frozenset(self.holidays))


class TargetSpec(StrictModel):
    respond: Duration = Field(gt=0)
    resolve: Duration = Field(gt=0)
    calendar: str = "24x7"


def _percent(v: object) -> float:
    text = str(v).strip()
    try:
        n = float(text[:-1]) if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"{v!r}: expected a percentage such as 80% or 100%") from None
    if not 0 < n <= 1000:
        raise ValueError(f"{v!r}: a percentage between 0% and 1000%")
    return n


NOTIFY = re.compile(r"^(team|lead|assignee|none|oncall|next)$|^(oncall|next):[A-Za-z0-9_.-]+$")


class StepSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=64)
    clock: Literal["response", "resolution"]
    at: float  # percent of the target
    # team | lead | assignee | none | oncall | next | oncall:<team> | next:<team>
    notify: str = "team"
    raise_priority: bool = False
    priorities: list[Literal["P1", "P2", "P3"]] = []  # only tickets of these; empty: all

    @field_validator("notify")
    @classmethod
    def _notify(cls, v: str) -> str:
        if not NOTIFY.match(v):
            raise ValueError(f"{v!r}: notify one of team, lead, assignee, none, oncall, next, "
                             "oncall:<team>, next:<team>")
        return v

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: object) -> float:
        return _percent(v)


class SlaSpec(StrictModel):
    calendars: dict[str, CalendarSpec] = {}
    priorities: dict[Literal["P1", "P2", "P3"], TargetSpec]
    escalation: list[StepSpec] = []
    verify_window: Duration = 7 * 86400.0

    @model_validator(mode="after")
    def _refs(self) -> SlaSpec:
        missing = [p for p in PRIORITIES if p not in self.priorities]
        if missing:
            raise ValueError(f"priorities: targets missing for {', '.join(missing)}")
        for p, t in self.priorities.items():
            if t.calendar != "24x7" and t.calendar not in self.calendars:
                raise ValueError(f"priorities.{p}.calendar: no calendar named {t.calendar!r} "
                                 f"(defined: 24x7, {', '.join(self.calendars) or 'none'})")
        names = [s.name for s in self.escalation]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"escalation: step names must be unique: {', '.join(dup)}")
        return self


@dataclass(frozen=True)
class Target:
    respond: float
    resolve: float
    calendar: Calendar


@dataclass(frozen=True)
class Step:
    name: str
    clock: Literal["response", "resolution"]
    at: float  # percent
    notify: str = "team"
    raise_priority: bool = False
    priorities: tuple[str, ...] = ()  # only tickets of these priorities; empty: every ticket


@dataclass(frozen=True)
class SlaPolicy:
    targets: dict[str, Target]
    steps: tuple[Step, ...] = ()
    verify_window: float = 7 * 86400.0

    def target(self, priority: str) -> Target:
        return self.targets.get(priority) or self.targets["P3"]


def build_policy(spec: SlaSpec) -> SlaPolicy:
    cals = {name: c.build(name) for name, c in spec.calendars.items()}
    cals["24x7"] = ALWAYS
    return SlaPolicy(
        targets={p: Target(t.respond, t.resolve, cals[t.calendar])
                 for p, t in spec.priorities.items()},
        steps=tuple(Step(s.name, s.clock, s.at, s.notify, s.raise_priority,
                         tuple(s.priorities)) for s in spec.escalation),
        verify_window=spec.verify_window)


def shipped(name: str) -> Path:
    """A config file shipped with fieldwatch (config/ installed as package data)."""
    return Path(str(importlib.resources.files("fieldwatch.default_config") / name))


def load_sla(path: str | Path | None = None) -> SlaPolicy:
    """The SLA policy from `path`, or the shipped defaults (DESIGN §1). Raises ConfigError."""
    return build_policy(load_config(SlaSpec, path or shipped("sla.yaml")))
