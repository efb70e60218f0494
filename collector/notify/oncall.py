"""On-call rotation, pure: (rotation, instant) → who is on call, and who comes next.

A team's people take weekly turns in `order`. The handover is at a local weekday and time in
the rotation's time zone, kept across daylight saving (09:00 stays 09:00 local, so a week may
last 167 or 169 hours). An override (someone covers a span: a swap, a sick day) wins over the
schedule; where overrides overlap, the one listed last wins. Members marked unavailable in
teams.yaml are skipped: their turn goes to the next available person in order.

`chain` is the escalation order at an instant: the person on call, then the others in rotation
order after the scheduled one — a page nobody answers walks it (`next` in config/sla.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from fieldwatch.models import StrictModel

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HANDOVER = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)\s+(\d\d):(\d\d)$")


def parse_handover(text: str) -> tuple[int, time]:
    """`mon 09:00` → (0, 09:00)."""
    m = _HANDOVER.match(text.strip().lower())
    if not m or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise ValueError(f"{text!r}: expected a weekday and a local time, such as 'mon 09:00'")
    return DAYS.index(m.group(1)), time(int(m.group(2)), int(m.group(3)))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name: Europe/Berlin)") from None


class OverrideSpec(StrictModel):
    """`who` is on call from `from` until `until` (local times in the rotation's zone, unless
    they carry an offset)."""

    start: datetime = Field(alias="from")
    until: datetime
    who: str = Field(min_length=1, max_length=128)

    @model_validator(mode="after")
    def _order(self) -> OverrideSpec:
        a, b = self.start, self.until
        if (a.tzinfo is None) == (b.tzinfo is None) and b <= a:
            raise ValueError("an override's `until` must come after its `from`")
        return self


class RotationSpec(StrictModel):
    """A team's weekly rotation (`oncall:` of a team in teams.yaml)."""

    order: list[str] = []  # default: the team's members in roster order
    handover: str = "mon 09:00"  # weekday and local time the next person takes over
    timezone: str = "UTC"
    start: date = date(2024, 1, 1)  # order[0] takes the first handover on or after this date
    overrides: list[OverrideSpec] = []

    @field_validator("handover")
    @classmethod
    def _handover(cls, v: str) -> str:
        parse_handover(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)
        return v

    @field_validator("order")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({n for n in v if v.count(n) > 1})
        if dup:
            raise ValueError(f"a person appears twice in the order: {', '.join(dup)}")
        return v


@dataclass(frozen=True)
class Rotation:
    """A rotation ready to answer: times as epoch seconds, people as names."""

    order: tuple[str, ...]
    weekday: int
    at: time
    tz: ZoneInfo
    first: date  # the local date of order[0]'s first handover
    overrides: tuple[tuple[float, float, str], ...] = ()  # (from, until, who)
    away: frozenset[str] = frozenset()  # members not available: never paged


def _epoch(dt: datetime, tz: ZoneInfo) -> float:
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)).timestamp()


def build_rotation(spec: RotationSpec, members: Sequence[str],
                   away: Iterable[str] = ()) -> Rotation:
    weekday, at = parse_handover(spec.handover)
    tz = zone(spec.timezone)
    first = spec.start + timedelta(days=(weekday - spec.start.weekday()) % 7)
    return Rotation(order=tuple(spec.order or members), weekday=weekday, at=at, tz=tz,
                    first=first, away=frozenset(away),
                    overrides=tuple((_epoch(o.start, tz), _epoch(o.until, tz), o.who)
                                    for o in spec.overrides))


def handover_instant(rot: Rotation, day: date) -> float:
    """The handover on local date `day` (a time skipped by a DST jump counts as the wall-clock
    reading before the jump: 02:30 on a spring-forward night is 03:30 summer time)."""
    return datetime.combine(day, rot.at, tzinfo=rot.tz).timestamp()


def last_handover(rot: Rotation, now: float) -> date:
    """The local date of the last handover at or before `now`."""
    local = datetime.fromtimestamp(now, rot.tz)
    day = local.date() - timedelta(days=(local.weekday() - rot.weekday) % 7)
    if handover_instant(rot, day) > now:
        day -= timedelta(days=7)
    return day


def scheduled(rot: Rotation, now: float) -> str | None:
    """Whose week it is by the schedule alone (no overrides, availability ignored)."""
    if not rot.order:
        return None
    week = (last_handover(rot, now) - rot.first).days // 7
    return rot.order[week % len(rot.order)]


def override(rot: Rotation, now: float) -> str | None:
    for start, until, who in reversed(rot.overrides):
        if start <= now < until:
            return who
    return None


def chain(rot: Rotation, now: float) -> list[str]:
    """Who is paged, in order: the one on call, then the rest of the rotation after the
    scheduled person; unavailable people left out, nobody twice."""
    out: list[str] = []
    covering = override(rot, now)
    if covering is not None:
        out.append(covering)
    first = scheduled(rot, now)
    if first is not None:
        i = rot.order.index(first)
        for name in rot.order[i:] + rot.order[:i]:
            if name not in rot.away and name not in out:
                out.append(name)
    return out


def on_call(rot: Rotation, now: float) -> str | None:
    """The person on call at `now`: an override's, else the scheduled one (or, when they are
    unavailable, the next available in order); None when nobody is."""
    people = chain(rot, now)
    return people[0] if people else None


def next_up(rot: Rotation, now: float, step: int = 1) -> str | None:
    """The person `step` places after the one on call in the escalation chain."""
    people = chain(rot, now)
    return people[step] if len(people) > step else None
