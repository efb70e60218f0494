"""Routing, pure: severity, site, team, action and local time of day decide channels and
people; first match wins unless `continue`; on call resolved at the change's instant."""

from __future__ import annotations

import pytest
from fieldwatch.collector.notify.routing import plan

from tests.notify.helpers import ALEX_WEEK, berlin, change, notifications, teams

CONFIG = """
timezone: Europe/Berlin
channels:
  - {name: sms, url: "smseagle://t@127.0.0.1/{to}", contact: phone}
  - {name: slack, url: "json://127.0.0.1/slack"}
  - {name: wecom, url: "json://127.0.0.1/wecom", language: zh}
routes:
  - name: p1-night
    match: {severity: [P1]}
    hours: {mon-fri: ["00:00-08:00", "18:00-24:00"], sat-sun: ["00:00-24:00"]}
    channels: [sms, slack]
  - name: p1-day
    match: {severity: [P1]}
    channels: [slack]
    continue: true
  - name: china
    match: {sites: ["cn-*"], actions: [open, resolve]}
    notify: [team]
    channels: [wecom]
  - name: escalations
    match: {actions: [escalate]}
    notify: [escalation, lead]
    channels: [sms]
  - name: network
    match: {teams: [network], severity: [P2]}
    notify: [eli]
    channels: [sms]
"""


def sends(ch: object) -> list[tuple[str, str, str, str]]:
    return [(s.route, s.channel, s.target, s.language)
            for s in plan(notifications(CONFIG), teams(), ch)]  # type: ignore[arg-type]


def test_p1_at_night_pages_the_person_on_call_and_posts_to_the_room() -> None:
    assert sends(change(at=berlin(2026, 3, 10, 22))) == [
        ("p1-night", "sms", "alex", "en"), ("p1-night", "slack", "room", "en")]


def test_p1_in_the_day_goes_to_the_room_and_on() -> None:
    """p1-day matches and continues; no later route matches a P1 opened on plant-north."""
    assert sends(change(at=berlin(2026, 3, 10, 14))) == [("p1-day", "slack", "room", "en")]


def test_weekend_hours_and_dst_local_time() -> None:
    # Saturday noon is "night" for p1-night; 2026-03-29 is the spring change in Berlin
    assert sends(change(at=berlin(2026, 3, 28, 12)))[0][0] == "p1-night"
    assert sends(change(at=berlin(2026, 3, 30, 7, 59)))[0][0] == "p1-night"
    assert sends(change(at=berlin(2026, 3, 30, 8, 0)))[0][0] == "p1-day"


def test_site_glob_continue_and_room_language() -> None:
    got = sends(change(at=berlin(2026, 3, 10, 14), site="cn-shanghai"))
    assert got == [("p1-day", "slack", "room", "en"), ("china", "wecom", "room", "zh")]


def test_escalation_reaches_the_step_people_and_the_lead_in_their_languages() -> None:
    ch = change("escalate", at=berlin(2026, 3, 10, 14), severity="P2", priority="P2",
                data={"step": "p1_next", "recipients": ["bo"]})
    assert sends(ch) == [("escalations", "sms", "bo", "zh-CN"),
                         ("escalations", "sms", "dana", "en")]


def test_team_severity_and_named_person() -> None:
    assert sends(change(severity="P2", priority="P2", team="network")) == [
        ("network", "sms", "eli", "en")]
    assert sends(change(severity="P3", priority="P3", team="network")) == []


def test_action_not_listed_goes_nowhere() -> None:
    assert sends(change("resolve", at=berlin(2026, 3, 10, 22))) == []
    assert sends(change("acknowledge", site="cn-x")) == []


def test_on_call_is_taken_at_the_change_not_at_delivery() -> None:
    """The same change gives the same people however late it is delivered."""
    week_later = change(at=ALEX_WEEK + 7 * 86400 + 8 * 3600)  # Tue 22:00 of bo's week
    assert sends(week_later)[0][:3] == ("p1-night", "sms", "bo")


def test_priority_raised_by_escalation_counts() -> None:
    """A P2 raised to P1 routes as a P1."""
    assert sends(change(at=berlin(2026, 3, 10, 22), severity="P2", priority="P1"))[0][0] == \
        "p1-night"


@pytest.mark.parametrize("notify, want", [
    (["oncall"], ["alex"]), (["next"], ["bo"]), (["lead"], ["dana"]),
    (["team"], ["alex", "bo", "cy", "dana"]), (["oncall:network"], ["eli"]),
    (["next:network"], ["eli"]),  # one-person rotation-less team: its lead
    (["assignee"], ["dana"]),  # nobody assigned: the lead
    (["escalation"], []),  # not an escalation: nobody
    (["alex", "oncall"], ["alex"]),  # each person once
])
def test_who(notify: list[str], want: list[str]) -> None:
    cfg = notifications(f"""
channels: [{{name: sms, url: "smseagle://t@127.0.0.1/{{to}}", contact: phone}}]
routes: [{{notify: {notify}, channels: [sms]}}]
""")
    assert [s.to for s in plan(cfg, teams(), change())] == want


def test_a_step_that_notifies_none_names_nobody() -> None:
    """Its `sla_escalation` event once listed the whole team, whom `escalation` routes (and
    the email desk) would then page."""
    from fieldwatch.collector.tickets.routing import recipients

    assert recipients(teams(), "hardware", "none", None, ALEX_WEEK) == []
    assert recipients(teams(), "hardware", "oncall", None, ALEX_WEEK) == ["alex"]
    assert recipients(teams(), "hardware", "next:hardware", None, None) == ["dana"]  # no time
