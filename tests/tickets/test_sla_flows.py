"""Lifecycle and SLA on a real store with an injected clock (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import prepare
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import rules_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from fieldwatch.errors import TicketNotFound, TransitionRefused
from fieldwatch.wire import Metrics, Sample, encode
from tests.tickets.conftest import Inbox
from tests.tickets.helpers import berlin

MIN, H, DAY = 60.0, 3600.0, 86400.0


def kinds(desk: ServiceDesk, tid: int, kind: str | None = None) -> list[str]:
    ev = desk.store.timeline(tid)
    if kind:
        return [e["data"]["step"] for e in ev if e["kind"] == kind]
    return [e["kind"] for e in ev]


def tick_at(desk: ServiceDesk, when: float) -> list[tuple[int, str]]:
    desk.clock.t = when  # type: ignore[attr-defined]
    return desk.tick().escalated


def test_each_escalation_step_fires_exactly_once_across_holiday_and_weekend(
        desk: ServiceDesk, inbox: Inbox) -> None:
    # Thu 31 Dec 16:00: one working hour left; Fri 1 Jan is a holiday; then the weekend.
    t = desk.create(device="pump-7", site="plant", title="pump vibrates", priority="P2",
                    customer="Ann, +49 30 1234", actor="phone-desk")
    tid = t["id"]
    assert t["team"] == "desk" and t["assignee"] == "dana"
    assert t["sla"]["response"]["due"] == "2027-01-04T09:00:00.000Z"  # Mon 10:00 Berlin
    assert tick_at(desk, berlin(2026, 12, 31, 16, 59)) == []
    assert tick_at(desk, berlin(2027, 1, 2, 12)) == []  # Saturday: the clock stands still
    assert tick_at(desk, berlin(2027, 1, 4, 9, 35)) == []
    assert tick_at(desk, berlin(2027, 1, 4, 9, 36)) == [(tid, "response_80")]  # 96 of 120 min
    assert tick_at(desk, berlin(2027, 1, 4, 9, 50)) == []
    assert tick_at(desk, berlin(2027, 1, 4, 10)) == [(tid, "response_breach")]
    for h in (10.5, 11, 12):
        assert tick_at(desk, berlin(2027, 1, 4) + h * H) == []
    assert tick_at(desk, berlin(2027, 1, 4, 16)) == [(tid, "resolution_breach")]  # 1 h + 7 h
    assert tick_at(desk, berlin(2027, 1, 5, 12)) == []

    assert kinds(desk, tid, "sla_escalation") == ["response_80", "response_breach",
                                                  "resolution_breach"]
    shown = desk.show(tid)
    assert (shown["priority"], shown["severity"]) == ("P1", "P2")  # raised once, targets kept
    assert [n.step for n in inbox.got] == ["response_80", "response_breach", "resolution_breach"]
    assert inbox.got[0].recipients == ["dana", "eli"] and inbox.got[1].recipients == ["dana"]
    assert kinds(desk, tid).count("notified") == 3
    breach = [e for e in desk.store.timeline(tid) if e["kind"] == "sla_escalation"][1]
    assert breach["actor"] == "system" and breach["data"]["priority"] == {"from": "P2",
                                                                           "to": "P1"}


def test_acknowledging_in_time_stops_response_escalations(desk: ServiceDesk) -> None:
    desk.clock.t = berlin(2027, 1, 4, 9)  # type: ignore[attr-defined]
    tid = desk.create(device="d", title="t", priority="P2", actor="x")["id"]
    desk.clock.t += 30 * MIN  # type: ignore[attr-defined]
    shown = desk.act(tid, "ack", "eli")
    assert shown["sla"]["response"]["breached"] is False
    assert shown["sla"]["response"]["elapsed_s"] == 30 * MIN
    assert tick_at(desk, berlin(2027, 1, 5, 12)) == [(tid, "resolution_breach")]


def test_waiting_on_the_customer_pauses_the_clock(desk: ServiceDesk) -> None:
    desk.clock.t = berlin(2027, 1, 4, 9)  # type: ignore[attr-defined]
    tid = desk.create(device="d", title="t", priority="P2", actor="x")["id"]
    desk.clock.t = berlin(2027, 1, 4, 9, 30)  # type: ignore[attr-defined]
    desk.act(tid, "ack", "eli")
    desk.clock.t = berlin(2027, 1, 4, 10)  # type: ignore[attr-defined]
    desk.act(tid, "wait", "eli", text="waiting for the customer to power-cycle")
    assert tick_at(desk, berlin(2027, 1, 6, 10)) == []
    paused = desk.show(tid)["sla"]["resolution"]
    assert (paused["elapsed_s"], paused["paused"], paused["due"]) == (H, True, None)
    with pytest.raises(TransitionRefused, match="already waiting"):
        desk.act(tid, "wait", "eli")
    desk.act(tid, "resume", "eli")  # Wed 10:00, 7 working hours left
    assert desk.show(tid)["sla"]["resolution"]["due"] == "2027-01-06T16:00:00.000Z"  # 17:00
    assert tick_at(desk, berlin(2027, 1, 6, 16, 59)) == []
    assert tick_at(desk, berlin(2027, 1, 6, 17)) == [(tid, "resolution_breach")]
    assert kinds(desk, tid)[:5] == ["opened", "assigned", "acknowledged", "waiting", "resumed"]


RULES = """
rules:
  - {name: hot, metric: temp.celsius, when: value > 80, clear: value < 70, severity: P1,
     ticket: {title: "{device} hot"}}
  - {name: hot_new, metric: temp2.celsius, when: value > 80, severity: P3,
     on_recurrence: new, ticket: {title: "{device} hot"}}
  - {name: hot_ignore, metric: temp3.celsius, when: value > 80, severity: P3,
     on_recurrence: ignore, verify_window: 1d, ticket: {title: "{device} hot"}}
  - {name: disk_full, metric: disk.used_percent, when: value > 90, severity: P3,
     ticket: {title: "{device} disk", team: storage}}
"""


class Feed:
    def __init__(self, desk: ServiceDesk) -> None:
        self.desk = desk
        self.engine = Engine(RuleSet(tuple(rules_from_text(RULES))))
        self.state = EngineState()
        self.seq = 0

    def __call__(self, value: float, metric: str = "temp.celsius", device: str = "a") -> None:
        self.seq += 1
        self.desk.clock.t += 1  # type: ignore[attr-defined]  # samples move forward in time
        now = self.desk.clock.now()
        msg = Metrics(device=device, site="hq", seq=self.seq, ts=now, agent="t",
                      samples=[Sample(metric, value, {"sensor": "cpu"})])
        self.desk.store.write(prepare([Received(msg, encode(msg), now)], self.engine,
                                      self.state), now)


def test_recurrence_inside_the_window_reopens_and_it_closes_after_the_window(
        desk: ServiceDesk) -> None:
    feed = Feed(desk)
    feed(90)
    feed(60)  # cleared: auto-resolved
    [t] = desk.list()
    assert t["state"] == "resolved"
    desk.clock.t += 3 * DAY  # type: ignore[attr-defined]
    feed(95)  # back inside the 7-day window: the same ticket reopens
    [t] = desk.list()
    assert (t["state"], t["recurrences"], t["reopen_count"]) == ("reopened", 1, 1)
    feed(50)
    resolved_at = desk.clock.now()
    assert tick_at(desk, resolved_at + 7 * DAY - 1) == [] and desk.list()[0]["state"] == \
        "resolved"
    desk.clock.t = resolved_at + 7 * DAY  # type: ignore[attr-defined]
    assert desk.tick().closed == [t["id"]]
    [t] = desk.list()
    assert (t["state"], t["close_reason"]) == ("closed", "verified")
    assert kinds(desk, t["id"]) == ["opened", "assigned", "resolved", "reopened", "resolved",
                                    "closed"], kinds(desk, t["id"])
    feed(99)  # after the window: a new fault, a new ticket
    assert [x["state"] for x in desk.list()] == ["open", "closed"]


def test_per_rule_recurrence_new_and_ignore(desk: ServiceDesk) -> None:
    feed = Feed(desk)
    feed(90, "temp2.celsius")
    feed(10, "temp2.celsius")
    desk.clock.t += DAY  # type: ignore[attr-defined]
    feed(90, "temp2.celsius")
    new, old = desk.list(rule="hot_new")
    assert (new["state"], new["recurrence_of"], old["recurrences"]) == ("open", old["id"], 1)
    assert old["state"] == "resolved"

    feed(90, "temp3.celsius")
    feed(10, "temp3.celsius")
    desk.clock.t += 3600  # type: ignore[attr-defined]
    feed(90, "temp3.celsius")
    feed(91, "temp3.celsius")
    [t] = desk.list(rule="hot_ignore")
    assert (t["state"], t["recurrences"]) == ("resolved", 1)
    assert kinds(desk, t["id"])[-1] == "recurred"


def test_wont_fix_is_not_reopened_by_a_recurrence(desk: ServiceDesk) -> None:
    feed = Feed(desk)
    feed(90)
    [t] = desk.list()
    desk.act(t["id"], "close", "dana", reason="wont_fix", text="end-of-life sensor")
    feed(10)
    feed(95)
    [t] = desk.list()
    assert (t["state"], t["close_reason"]) == ("closed", "wont_fix")
    with pytest.raises(TransitionRefused, match="won't fix"):
        desk.act(t["id"], "reopen", "dana", text="try again")


def test_routing_round_robin_skips_the_unavailable(desk: ServiceDesk) -> None:
    feed = Feed(desk)
    for dev in ("a", "b", "c", "d"):
        feed(95, "disk.used_percent", device=dev)
    got = [(t["team"], t["assignee"]) for t in desk.list(oldest_first=True)]
    assert got == [("hardware", "alex"), ("hardware", "bo"), ("hardware", "alex"),
                   ("hardware", "bo")]
    tid = desk.list(oldest_first=True)[0]["id"]
    assert kinds(desk, tid) == ["opened", "assigned"]


def test_reopening_when_another_ticket_is_open_for_the_fault_is_refused(
        desk: ServiceDesk) -> None:
    feed = Feed(desk)
    feed(90, "temp2.celsius")
    feed(10, "temp2.celsius")
    first = desk.list()[0]["id"]
    desk.act(first, "close", "dana")
    desk.clock.t += 60  # type: ignore[attr-defined]
    feed(90, "temp2.celsius")  # a new ticket for the same fault
    with pytest.raises(TransitionRefused, match="already open for this fault"):
        desk.act(first, "reopen", "dana", text="same thing")


def test_manual_actions_and_their_errors(desk: ServiceDesk) -> None:
    with pytest.raises(TicketNotFound):
        desk.act(12345, "ack", "dana")
    with pytest.raises(TransitionRefused, match="priority"):
        desk.create(device="d", title="t", priority="P9", actor="x")
    with pytest.raises(TransitionRefused, match="no team"):
        desk.create(device="d", title="t", team="nobody", actor="x")
    tid = desk.create(device="d", title="Pump stops, fuse blown", actor="x")["id"]
    with pytest.raises(TransitionRefused, match="actor"):
        desk.act(tid, "ack", " ")
    desk.act(tid, "assign", "dana", assignee="eli")
    desk.act(tid, "start", "eli")
    desk.act(tid, "comment", "eli", text="replaced the fuse")
    desk.act(tid, "resolve", "eli", note=Resolution(cause="fuse", fix="replaced the fuse",
                                                    parts=["fuse 5A"], minutes=20,
                                                    mode="on_site"))
    with pytest.raises(TransitionRefused, match="cannot ack"):
        desk.act(tid, "ack", "eli")
    shown = desk.act(tid, "close", "dana", satisfaction=5)
    assert (shown["state"], shown["satisfaction"]) == ("closed", 5)
    assert [e["kind"] for e in shown["timeline"]] == [
        "opened", "assigned", "assigned", "acknowledged", "in_progress", "comment", "resolved",
        "closed"]
    # the case library: a new similar ticket shows this fix
    other = desk.create(device="d2", title="Fuse blown on the pump", actor="x")
    [case] = other["similar"]
    assert case["id"] == tid and case["resolution"]["fix"] == "replaced the fuse"
    assert desk.create(device="d3", title="t", actor="x")["similar"] == []  # no likeness


def test_device_history_lists_every_ticket_of_the_device(desk: ServiceDesk) -> None:
    feed = Feed(desk)
    feed(90, device="pump")
    desk.create(device="pump", site="hq", title="phoned in", actor="x")
    h = desk.device_history("hq/pump")
    assert [t["rule"] for t in h["tickets"]] == ["hot", "manual"]
    with pytest.raises(TransitionRefused, match="no device"):
        desk.device_history("ghost")


def test_fire_clear_fire_in_one_batch_reopens_the_same_ticket(desk: ServiceDesk) -> None:
    feed = Feed(desk)
    msgs = []
    for value in (90, 60, 95):
        feed.seq += 1
        desk.clock.t += 1  # type: ignore[attr-defined]
        now = desk.clock.now()
        m = Metrics(device="a", site="hq", seq=feed.seq, ts=now, agent="t",
                    samples=[Sample("temp.celsius", value, {"sensor": "cpu"})])
        msgs.append(Received(m, encode(m), now))
    desk.store.write(prepare(msgs, feed.engine, feed.state), desk.clock.now())
    [t] = desk.list()
    assert (t["state"], t["reopen_count"]) == ("reopened", 1)
    assert [k for k in kinds(desk, t["id"]) if k != "assigned"] == ["opened", "resolved",
                                                                    "reopened"]
