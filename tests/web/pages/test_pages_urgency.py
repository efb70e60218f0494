"""The queue's SLA urgency, pure: breach instants, levels, order, and the cache of dues."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fieldwatch.collector.sla.clocks import clocks
from fieldwatch.collector.web.pages.urgency import (
    DueCache,
    Dues,
    OrderCache,
    Ordered,
    compute_dues,
    order,
    ordered,
    pauses_of,
    running_clock,
    urgency,
)

from tests.tickets.helpers import berlin, sla_policy

POLICY = sla_policy()  # P1 24x7 15m/4h; P2 2h/8h and P3 8h/40h on Berlin business hours


def ticket(tid: int = 1, prio: str = "P1", opened: float = 0.0, **kw: Any) -> dict[str, Any]:
    return {"id": tid, "state": "open", "severity": prio, "priority": prio, "sla_priority": prio,
            "opened_at": opened, "acknowledged_at": None, "resolved_at": None,
            "waiting_since": None, "pauses": [], **kw}


def test_dues_on_24x7_are_opening_plus_targets() -> None:
    t0 = berlin(2027, 3, 3, 22)
    assert compute_dues(POLICY, "P1", t0, ()) == Dues(t0 + 900, t0 + 4 * 3600)


def test_dues_on_business_hours_skip_nights_and_weekends() -> None:
    friday_16 = berlin(2027, 3, 5, 16)
    dues = compute_dues(POLICY, "P2", friday_16, ())
    assert dues.response == berlin(2027, 3, 8, 10)  # 1 h on Friday, 1 h on Monday
    assert dues.resolution == berlin(2027, 3, 8, 16)  # 1 h on Friday, 7 h on Monday


def test_a_pause_moves_the_due_instant_and_an_open_pause_has_none() -> None:
    t0 = berlin(2027, 3, 3, 22)
    closed = compute_dues(POLICY, "P1", t0, ((t0 + 60, t0 + 660),))
    assert closed.response == t0 + 900 + 600
    assert compute_dues(POLICY, "P1", t0, ((t0 + 60, None),)) == Dues(None, None)


def test_running_clock() -> None:
    assert running_clock(ticket()) == "response"
    assert running_clock(ticket(acknowledged_at=5.0)) == "resolution"
    assert running_clock(ticket(acknowledged_at=5.0, resolved_at=9.0)) is None
    assert running_clock(ticket(state="closed")) is None


@pytest.mark.parametrize(("kw", "now", "level"), [
    ({}, 100.0, "ok"),
    ({}, 900.0, "breached"),  # due exactly now: breached
    ({}, 5000.0, "breached"),
    ({"acknowledged_at": 60.0}, 5000.0, "ok"),  # resolution due at 4 h
    ({"acknowledged_at": 60.0}, 4 * 3600 + 1.0, "breached"),
    ({"waiting_since": 50.0, "pauses": [[50.0, None]]}, 5000.0, "paused"),
    ({"resolved_at": 70.0, "acknowledged_at": 60.0, "state": "resolved"}, 9e4, "stopped"),
])
def test_levels_without_clock_views(kw: dict[str, Any], now: float, level: str) -> None:
    t = ticket(**kw)
    assert urgency(t, compute_dues(POLICY, "P1", 0.0, pauses_of(t)), now).level == level


def test_at_risk_needs_the_percent_used() -> None:
    t = ticket()
    now = 0.85 * 900
    views = clocks(POLICY, "P1", 0.0, None, None, [], now)
    u = urgency(t, compute_dues(POLICY, "P1", 0.0, ()), now, views)
    assert u.level == "at_risk" and u.percent == pytest.approx(85.0)
    assert u.seconds_left(now) == pytest.approx(900 - now)
    assert urgency(t, compute_dues(POLICY, "P1", 0.0, ()), now, views, at_risk=90).level == "ok"


def test_unknown_when_dues_cannot_be_computed() -> None:
    assert urgency(ticket(), None, 0.0).level == "unknown"
    cache = DueCache(POLICY)
    assert cache.get(ticket(opened=math.nan)) is None
    assert cache.get(ticket(prio="P2", opened=1e300)) is None  # no calendar reaches it
    assert cache.get({"id": 1, "opened_at": "soon"}) is None


def test_queue_order_breached_first_then_nearest_breach_then_paused_stopped_unknown() -> None:
    now = 10_000.0
    rows = [ticket(1, "P3", opened=berlin(2027, 3, 3, 10)),  # far away (business hours)
            ticket(2, "P1", opened=0.0),  # breached long ago
            ticket(3, "P1", opened=now - 100),  # due in 800 s
            ticket(4, "P1", opened=now - 500),  # due in 400 s
            ticket(5, "P1", opened=5000.0),  # breached more recently than 2
            ticket(6, "P1", opened=now, waiting_since=now, pauses=[[now, None]]),
            ticket(7, "P1", opened=0.0, state="resolved", resolved_at=1.0),
            ticket(8, "P1", opened=math.nan)]
    cache = DueCache(POLICY)
    urg = {t["id"]: urgency(t, cache.get(t), now) for t in rows}
    assert [t["id"] for t in order(rows, urg)] == [2, 5, 4, 3, 1, 6, 7, 8]


def test_equal_due_instants_go_by_priority_then_age() -> None:
    now = 0.0
    rows = [ticket(3, "P2"), ticket(1, "P3"), ticket(2, "P2")]
    fixed = Dues(500.0, 900.0)
    urg = {t["id"]: urgency(t, fixed, now) for t in rows}
    assert [t["id"] for t in order(rows, urg)] == [2, 3, 1]


def test_the_cache_computes_once_per_ticket_version_and_stays_bounded() -> None:
    cache = DueCache(POLICY, limit=2)
    a = ticket(1)
    first = cache.get(a)
    assert cache.get(dict(a)) is first  # same inputs: the cached object
    paused = cache.get({**a, "pauses": [[10.0, 70.0]]})
    assert paused is not None and paused.response == first.response + 60  # type: ignore[union-attr]
    cache.get(ticket(2, opened=5.0))  # a third version: the cache starts afresh
    assert len(cache._known) == 1


def test_junk_pauses_are_left_out() -> None:
    assert pauses_of({"pauses": [[1, 2], "x", [None, 3], [4, None], [5]]}) == (
        (1.0, 2.0), (4.0, None))


def test_an_order_counts_breaches_at_any_instant_without_being_made_again() -> None:
    rows = [ticket(1, opened=0.0), ticket(2, opened=100.0),
            ticket(3, opened=0.0, waiting_since=5.0, pauses=[[5.0, None]]),
            ticket(4, opened=0.0, state="resolved", resolved_at=9.0)]
    q = ordered(rows, DueCache(POLICY))
    assert q.ids == [1, 2, 3, 4] and q.paused == 1 and q.dues == [900.0, 1000.0]
    assert [q.breached(t) for t in (899.0, 900.0, 999.0, 1e9)] == [0, 1, 1, 2]


def test_the_order_cache_reuses_and_forgets() -> None:
    cache = OrderCache(size=2)
    made: list[str] = []

    def make(name: str) -> Ordered:
        made.append(name)
        return Ordered([], [], 0)

    a = cache.get("a", lambda: make("a"))
    assert cache.get("a", lambda: make("a")) is a
    cache.get("b", lambda: make("b"))
    cache.get("c", lambda: make("c"))  # "a" is the oldest: forgotten
    cache.get("a", lambda: make("a"))
    assert made == ["a", "b", "c", "a"]
