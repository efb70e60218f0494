"""On-call rotation: a week with overrides by example, and properties across week boundaries
and daylight-saving changes in several time zones (hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fieldwatch.collector.notify.oncall import (
    Rotation,
    RotationSpec,
    build_rotation,
    chain,
    handover_instant,
    next_up,
    on_call,
    scheduled,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch.errors import ConfigError
from fieldwatch.models import validate
from fieldwatch.yamlmarks import load_yaml
from tests.notify.helpers import BERLIN, berlin, teams

H = 3600.0


def rotation(text: str, members: tuple[str, ...] = ("alex", "bo", "cy"),
             away: tuple[str, ...] = ()) -> Rotation:
    return build_rotation(validate(RotationSpec, load_yaml(text, "teams.yaml")), members, away)


WEEK = """
order: [alex, bo, cy]
handover: mon 09:00
timezone: Europe/Berlin
start: 2026-03-09
overrides:
  - {from: "2026-03-11 18:00", until: "2026-03-12 08:00", who: cy}   # cy covers alex's night
  - {from: "2026-03-16 09:00", until: "2026-03-17 09:00", who: alex} # alex keeps Monday of bo
  - {from: "2026-03-16 12:00", until: "2026-03-16 13:00", who: cy}   # listed last: wins
"""


@pytest.mark.parametrize("when, who", [
    ((2026, 3, 9, 8, 59), "cy"),     # before the first handover: the week before (order wraps)
    ((2026, 3, 9, 9, 0), "alex"),    # handover at 09:00 sharp
    ((2026, 3, 11, 17, 59), "alex"),
    ((2026, 3, 11, 18, 0), "cy"),    # override from …
    ((2026, 3, 12, 7, 59), "cy"),
    ((2026, 3, 12, 8, 0), "alex"),   # … until (exclusive)
    ((2026, 3, 16, 8, 59), "alex"),  # Sunday night into Monday: still alex's week
    ((2026, 3, 16, 9, 0), "alex"),   # bo's week, but alex's override for Monday
    ((2026, 3, 16, 12, 30), "cy"),   # the later-listed override wins where they overlap
    ((2026, 3, 17, 9, 0), "bo"),     # override over: bo
    ((2026, 3, 23, 9, 0), "cy"),
    ((2026, 3, 30, 9, 0), "alex"),   # across the DST change of 2026-03-29: still 09:00 local
])
def test_a_week_with_overrides(when: tuple[int, ...], who: str) -> None:
    assert on_call(rotation(WEEK), berlin(*when)) == who


def test_the_handover_stays_at_local_time_across_dst() -> None:
    rot = rotation(WEEK)
    before, after = handover_instant(rot, date(2026, 3, 23)), handover_instant(rot, date(2026, 3,
                                                                                        30))
    assert after - before == 7 * 24 * H - H  # the week with the spring change is an hour short
    assert datetime.fromtimestamp(after, BERLIN).time() == time(9, 0)


def test_chain_walks_the_rotation_from_the_one_on_call() -> None:
    rot = rotation(WEEK)
    assert chain(rot, berlin(2026, 3, 10, 12)) == ["alex", "bo", "cy"]
    assert next_up(rot, berlin(2026, 3, 10, 12)) == "bo"
    # during cy's override of alex's night: cy first, then alex's scheduled order
    assert chain(rot, berlin(2026, 3, 11, 20)) == ["cy", "alex", "bo"]
    assert next_up(rot, berlin(2026, 3, 11, 20)) == "alex"


def test_unavailable_people_are_skipped() -> None:
    rot = rotation(WEEK, away=("alex",))
    assert on_call(rot, berlin(2026, 3, 10, 12)) == "bo"  # alex's week, alex away
    assert chain(rot, berlin(2026, 3, 10, 12)) == ["bo", "cy"]
    assert on_call(rotation(WEEK, away=("alex", "bo", "cy")), berlin(2026, 3, 10, 12)) is None


def test_order_defaults_to_the_roster() -> None:
    rot = rotation("{handover: tue 00:00, start: 2026-03-10}", members=("x", "y"))
    assert [scheduled(rot, datetime(2026, 3, d, 1, tzinfo=ZoneInfo("UTC")).timestamp())
            for d in (10, 17, 24)] == ["x", "y", "x"]


@pytest.mark.parametrize("text, message", [
    ("{handover: monday 9am}", "expected a weekday and a local time"),
    ("{handover: mon 25:00}", "expected a weekday and a local time"),
    ("{timezone: Mars/Olympus}", "unknown time zone"),
    ("{order: [a, a]}", "appears twice"),
    ('{overrides: [{from: "2026-03-02 10:00", until: "2026-03-02 09:00", who: a}]}',
     "must come after"),
    ("{overrides: [{from: 2026-03-02, who: a}]}", "until: required"),
])
def test_bad_rotations_are_located(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(RotationSpec, load_yaml(text, "teams.yaml"), error=ConfigError)
    assert message in str(err.value) and "teams.yaml:1:" in str(err.value)


def test_rotation_names_must_be_team_members() -> None:
    text = """
teams:
  hw:
    members: [{name: alex}, {name: bo}]
    oncall:
      order: [alex, zed]
      overrides: [{from: "2026-03-02 10:00", until: "2026-03-02 12:00", who: yan}]
"""
    with pytest.raises(Exception, match="not members of the team: yan, zed"):
        teams(text)


# -- properties -------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Santiago",
         "Asia/Shanghai", "UTC", "Pacific/Chatham"]


@st.composite
def rotations(draw: st.DrawFn) -> Rotation:
    n, weekday = draw(st.integers(1, 4)), draw(st.integers(0, 6))
    return Rotation(order=tuple(f"p{i}" for i in range(n)), weekday=weekday,
                    at=time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 59]))),
                    tz=ZoneInfo(draw(st.sampled_from(ZONES))),
                    first=date(2024, 1, 1) + timedelta(days=weekday))  # 2024-01-01: a Monday


def brute_force(rot: Rotation, now: float) -> str:
    """Walk the handovers week by week from long before `now`: the last one at or before it."""
    day, week = rot.first - timedelta(days=7 * 200), -200
    while handover_instant(rot, day + timedelta(days=7)) <= now:
        day += timedelta(days=7)
        week += 1
    return rot.order[week % len(rot.order)]


NOW = st.floats(datetime(2024, 1, 1).timestamp(), datetime(2027, 12, 31).timestamp())


@settings(max_examples=150, deadline=None)
@given(rotations(), NOW)
def test_schedule_matches_walking_the_weeks(rot: Rotation, now: float) -> None:
    assert scheduled(rot, now) == brute_force(rot, now)


@settings(max_examples=150, deadline=None)
@given(rotations(), NOW)
def test_turns_change_exactly_at_handovers(rot: Rotation, now: float) -> None:
    """Around every handover: the previous person until just before, the next one from it; in
    between, one person for the whole week, and the handover at the configured local time
    (or the time a DST jump turned it into)."""
    local = datetime.fromtimestamp(now, rot.tz)
    day = local.date() + timedelta(days=(rot.weekday - local.weekday()) % 7)
    t = handover_instant(rot, day)
    prev = handover_instant(rot, day - timedelta(days=7))
    assert 6 * 24 * H < t - prev < 8 * 24 * H
    before, at = scheduled(rot, t - 0.001), scheduled(rot, t)
    n = len(rot.order)
    assert rot.order.index(at) == (rot.order.index(before) + 1) % n
    assert scheduled(rot, prev) == before == scheduled(rot, (prev + t) / 2)
    wall = datetime.fromtimestamp(t, rot.tz)
    assert wall.weekday() == rot.weekday
    gap = abs((wall.hour * 60 + wall.minute) - (rot.at.hour * 60 + rot.at.minute))
    assert gap == 0 or gap <= 60  # 0, or shifted by a DST jump (≤ 1 h in these zones)


@settings(max_examples=100, deadline=None)
@given(rotations(), NOW, st.floats(0, 3 * 86400.0), st.floats(60.0, 5 * 86400.0))
def test_an_override_holds_exactly_its_span(rot: Rotation, now: float, lead: float,
                                            span: float) -> None:
    start = now - lead
    with_cover = Rotation(rot.order + ("sub",), rot.weekday, rot.at, rot.tz, rot.first,
                          ((start, start + span, "sub"),))
    plain = Rotation(rot.order + ("sub",), rot.weekday, rot.at, rot.tz, rot.first)
    inside = start <= now < start + span
    assert (on_call(with_cover, now) == "sub") == (inside or on_call(plain, now) == "sub")
    if not inside:
        assert on_call(with_cover, now) == on_call(plain, now)
    assert sorted(chain(with_cover, now)) == sorted(set(with_cover.order))
