"""What a desk's change does to the ticket: edges against what the desk said before, the
conflict rule (the latest change wins, each side by its own clock; won't-fix is final), stale
payloads, our own notes echoed back, and the database step (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from fieldwatch.collector.desks.inbound.apply import Plan, Sync, apply, plan
from fieldwatch.collector.desks.inbound.model import Comment, Delivery, Inbound
from fieldwatch.collector.desks.inbound.sync import read, told
from fieldwatch.collector.store.schema import desk_links, tickets
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from fieldwatch.clock import FakeClock
from tests.desks.helpers import fire

T = 1_800_000_000.0
FIX = Resolution(cause="bearing", fix="replaced the bearing")


def ch(status: str | None = None, at: float = T + 100, **kw: Any) -> Inbound:
    return Inbound(**{"desk": "jira", "kind": "test", "at": at, "actor": "ines",
                      "external_id": "OPS-1", "status": status, **kw})


def ticket(state: str = "open", **kw: Any) -> dict[str, Any]:
    return {"id": 1, "state": state, "assignee": None, "close_reason": None, **kw}


def actions(p: Plan) -> list[str]:
    return [s.action for s in p.steps]


@pytest.mark.parametrize(("state", "since", "last", "status", "want", "outcome"), [
    # the desk resolved it
    ("open", T, None, "resolved", ["resolve"], "applied"),
    ("acknowledged", T, Sync("acknowledged", T + 1), "resolved", ["resolve"], "applied"),
    ("in_progress", T, None, "resolved", ["resolve"], "applied"),
    ("open", T + 200, None, "resolved", [], "conflict"),  # reopened here after: stays open
    ("resolved", T, None, "resolved", [], "nothing"),  # already
    # the desk reopened it (it had said resolved)
    ("resolved", T, Sync("resolved", T + 1), "open", ["reopen"], "applied"),
    ("closed", T, Sync("resolved", T + 1), "acknowledged", ["reopen", "ack"], "applied"),
    ("closed", T + 200, Sync("resolved", T + 1), "open", [], "conflict"),  # closed here after
    ("open", T, Sync("resolved", T + 1), "open", [], "nothing"),  # already open here
    # the desk never said resolved: its "open" is only behind fieldwatch's resolve
    ("resolved", T, None, "open", [], "nothing"),
    ("resolved", T, Sync("open", T + 1), "acknowledged", [], "nothing"),
    # acknowledged in the desk
    ("open", T, None, "acknowledged", ["ack"], "applied"),
    ("reopened", T, Sync("resolved", T + 1), "acknowledged", ["ack"], "applied"),
    ("acknowledged", T, None, "acknowledged", [], "nothing"),
    ("in_progress", T, None, "acknowledged", [], "nothing"),
    ("open", T + 200, None, "acknowledged", [], "conflict"),  # an ack of an older life
    ("acknowledged", T, Sync("acknowledged", T + 1), "open", [], "nothing"),  # un-ack: no
    # nothing said
    ("open", T, None, None, [], "nothing"),
])
def test_plan_acts_on_what_changed_at_the_desk(state: str, since: float, last: Sync | None,
                                               status: str | None, want: list[str],
                                               outcome: str) -> None:
    p = plan(ticket(state), since, last, ch(status), comment_new=False)
    assert (actions(p), p.outcome) == (want, outcome)
    if status is not None:
        assert p.sync.status == status and p.sync.status_at == T + 100


def test_wont_fix_is_final_whatever_the_desk_says() -> None:
    p = plan(ticket("closed", close_reason="wont_fix"), T, Sync("resolved", T + 1), ch("open"),
             False)
    assert (actions(p), p.outcome) == ([], "conflict") and "won't fix" in p.why


def test_an_older_payload_than_the_last_one_seen_is_stale() -> None:
    last = Sync("resolved", T + 500, "eli")
    p = plan(ticket("open"), T, last, ch("acknowledged", at=T + 100, assignee="bob"), False)
    assert (actions(p), p.outcome) == ([], "stale")
    assert p.sync == last  # what the desk said later stands
    # its comment is news all the same
    p = plan(ticket("open"), T, last, ch("open", at=T + 100, comment=Comment("9", "hi")), True)
    assert actions(p) == ["comment"] and p.sync == last


def test_assignment_comment_and_resolve_come_in_that_order() -> None:
    p = plan(ticket("open"), T, None, ch("resolved", assignee="ines",
                                         comment=Comment("7", "fixed it")), True)
    assert actions(p) == ["assign", "comment", "resolve"]
    assert p.steps[0].assignee == "ines" and p.steps[2].note is not None


def test_assignment_only_when_the_desk_changed_it() -> None:
    assert actions(plan(ticket(), T, Sync(assignee="ines"), ch(assignee="ines"), False)) == []
    assert actions(plan(ticket(assignee="ines"), T, None, ch(assignee="ines"), False)) == []
    assert actions(plan(ticket(), T, Sync(assignee="eli"), ch(assignee="ines"),
                        False)) == ["assign"]
    assert actions(plan(ticket("closed"), T, None, ch(assignee="ines"), False)) == []


def test_our_own_note_echoed_back_is_not_a_comment() -> None:
    echo = Comment("5", "Ticket acknowledged by alice.\n[fieldwatch:fieldwatch-1-17]")
    assert actions(plan(ticket(), T, None, ch(comment=echo), True)) == []
    assert actions(plan(ticket(), T, None, ch(comment=Comment("6", "on it")), True)) == [
        "comment"]
    assert actions(plan(ticket(), T, None, ch(comment=Comment("6", "on it")), False)) == []


def test_a_comment_only_change_leaves_the_desks_state_as_it_was() -> None:
    last = Sync("resolved", T + 1, "ines", "PX")
    p = plan(ticket("resolved"), T, last, replace(ch(), comment=Comment("1", "x"),
                                                  at=T + 900), True)
    assert p.sync == last


# -- on the database -------------------------------------------------------------------------

@pytest.fixture
def desk(store: Store) -> ServiceDesk:
    return ServiceDesk(store, FakeClock(T))


def link(store: Store, tid: int, external: str = "OPS-1", name: str = "jira") -> None:
    with store.engine.begin() as conn:
        conn.execute(desk_links.insert().values(ticket_id=tid, desk=name, external_id=external,
                                                linked_at=T))


def run(store: Store, *changes: Inbound, key: str | None = None,
        now: float = T + 1000) -> dict[str, int]:
    d = Delivery(key, changes[0].at, changes) if key else None
    r = apply(store, "fieldwatch", d, changes, now)
    return {"replay": 1} if r.replay else r.outcomes


def test_a_desk_resolve_older_than_a_reopen_here_is_a_conflict(
        store: Store, desk: ServiceDesk) -> None:
    [tid] = fire(store, "a", T)
    link(store, tid)
    desk.act(tid, "resolve", "alice", note=FIX)
    desk.clock.t = T + 50  # type: ignore[attr-defined]
    desk.act(tid, "reopen", "alice", text="it came back")
    assert run(store, ch("resolved", at=T + 20)) == {"conflict": 1}  # resolved there at +20
    assert store.get_ticket(tid)["state"] == "reopened"
    note = store.timeline(tid)[-1]  # why the two disagree, on the ticket (not sent out)
    assert (note["kind"], note["actor"], note["data"]["origin"]) == (
        "desk_conflict", "jira:ines", "jira")
    assert note["reason"].startswith("jira says resolved; kept reopened: jira resolved it")
    assert run(store, ch("open", at=T + 60)) == {"nothing": 1}
    assert run(store, ch("resolved", at=T + 70)) == {"applied": 1}  # a later resolve wins
    assert store.get_ticket(tid)["state"] == "resolved"


def test_a_close_here_is_final_unless_the_desk_reopens_after_it(
        store: Store, desk: ServiceDesk) -> None:
    [tid] = fire(store, "a", T)
    link(store, tid)
    assert run(store, ch("resolved", at=T + 10)) == {"applied": 1}
    desk.clock.t = T + 100  # type: ignore[attr-defined]
    desk.act(tid, "close", "alice")
    assert run(store, ch("open", at=T + 50)) == {"conflict": 1}  # reopened there before
    assert store.get_ticket(tid)["state"] == "closed"
    assert run(store, ch("resolved", at=T + 150)) == {"nothing": 1}
    assert run(store, ch("open", at=T + 200)) == {"applied": 1}  # and after: reopens
    t = store.get_ticket(tid)
    assert t["state"] == "reopened" and t["reopen_count"] == 1
    [ev] = [e for e in store.timeline(tid) if e["kind"] == "reopened"]
    assert ev["actor"] == "jira:ines" and ev["data"]["desk_at"] == T + 200


def test_told_makes_a_reopen_in_the_desk_count_without_its_echo(
        store: Store, desk: ServiceDesk) -> None:
    [a] = fire(store, "a", T)
    [b] = fire(store, "b", T)
    link(store, a, "OPS-1")
    link(store, b, "OPS-2")
    desk.act(a, "resolve", "alice", note=FIX)
    desk.act(b, "resolve", "alice", note=FIX)
    with store.engine.begin() as conn:  # the outbox delivered a's resolve (not b's)
        told(conn, [(a, "jira", "resolve"), (a, "jira", "update")], T + 20)
        assert read(conn, a, "jira") == Sync("resolved", T + 20, None, None)
    # neither desk ticket echoed the resolve; both are reopened in the desk
    assert run(store, ch("open", at=T + 40)) == {"applied": 1}
    assert run(store, ch("open", at=T + 40, external_id="OPS-2")) == {"nothing": 1}
    assert [store.get_ticket(t)["state"] for t in (a, b)] == ["reopened", "resolved"]


def test_told_keeps_what_the_desk_said_later(store: Store) -> None:
    [tid] = fire(store, "a", T)
    link(store, tid)
    run(store, ch("acknowledged", at=T + 500, assignee="ines"))
    with store.engine.begin() as conn:
        told(conn, [(tid, "jira", "resolve")], T + 100)
        assert read(conn, tid, "jira") == Sync("acknowledged", T + 500, "ines", None)


def test_a_reopen_that_would_make_a_second_open_ticket_is_a_conflict_keeping_the_comment(
        store: Store, desk: ServiceDesk) -> None:
    [tid] = fire(store, "a", T)
    link(store, tid)
    desk.act(tid, "resolve", "alice", note=FIX)
    run(store, ch("resolved", at=T + 10))
    with store.engine.begin() as conn:  # a newer ticket of the same fault is open
        row = dict(conn.execute(sa.select(tickets).where(tickets.c.id == tid)).mappings().one())
        del row["id"]
        conn.execute(tickets.insert().values({**row, "state": "open"}))
    before = store.timeline(tid)
    assert run(store, ch("open", at=T + 30, comment=Comment("c1", "back again"))) == {
        "conflict": 1}
    assert store.get_ticket(tid)["state"] == "resolved"
    after = store.timeline(tid)  # no reopen, no half of one: the desk's comment only
    assert [e["kind"] for e in after[len(before):]] == ["comment", "desk_conflict"]
    assert after[-1]["reason"].endswith("another ticket is open for this fault")


def test_unknown_tickets_and_references(store: Store) -> None:
    [tid] = fire(store, "a", T)
    assert run(store, ch("resolved", external_id="OPS-9")) == {"unknown": 1}
    # not linked yet (the outbox's receipt still on its way): the reference finds it
    by_ref = ch("acknowledged", external_id="OPS-9", references=("fieldwatch", f"fieldwatch-{tid}"))
    assert run(store, by_ref) == {"applied": 1}
    link(store, tid, "OPS-1")
    # a label copied onto another issue does not make that issue this ticket
    other = ch("resolved", at=T + 200, external_id="OPS-2",
               references=(f"fieldwatch-{tid}",))
    assert run(store, other) == {"unknown": 1}
    assert run(store, ch("resolved", external_id=None, references=("other-1",))) == {
        "unknown": 1}
    assert run(store, ch("resolved", external_id=None, references=("fieldwatch-999",))) == {
        "unknown": 1}  # a reference to no ticket at all
    assert store.get_ticket(tid)["state"] == "acknowledged"


def test_a_delivery_applies_once_even_with_several_changes(store: Store) -> None:
    [a] = fire(store, "a", T)
    [b] = fire(store, "b", T)
    link(store, a, "OPS-1")
    link(store, b, "OPS-2")
    both = (ch("acknowledged"), ch("resolved", external_id="OPS-2"))
    assert run(store, *both, key="d-1") == {"applied": 2}
    assert run(store, *both, key="d-1") == {"replay": 1}
    assert run(store, replace(both[0], status="resolved", at=T + 300), key="d-2") == {
        "applied": 1}
    assert [store.get_ticket(t)["state"] for t in (a, b)] == ["resolved", "resolved"]


def test_an_alias_learnt_from_one_event_maps_the_next(store: Store) -> None:
    [tid] = fire(store, "a", T)
    link(store, tid, "fieldwatch-1", "pagerduty")
    pd = Inbound(desk="pagerduty", kind="incident.triggered", at=T + 1, actor="pd",
                 external_id="fieldwatch-1", alias="PGR0VU2", status="open")
    assert run(store, pd) == {"nothing": 1}
    note = Inbound(desk="pagerduty", kind="incident.annotated", at=T + 2, actor="ines",
                   alias="PGR0VU2", comment=Comment("PN1", "on my way"))
    assert run(store, note) == {"applied": 1}
    assert store.timeline(tid)[-1]["reason"] == "on my way"


def test_changes_are_dated_by_the_desk_within_the_phase_and_never_ahead(
        store: Store) -> None:
    [a] = fire(store, "a", T)
    [b] = fire(store, "b", T)
    [c] = fire(store, "c", T)
    link(store, a, "OPS-1")
    link(store, b, "OPS-2")
    link(store, c, "OPS-3")
    run(store, ch("acknowledged", at=T + 300), now=T + 900)  # heard of late (a reconcile)
    run(store, ch("acknowledged", at=T - 50, external_id="OPS-2"), now=T + 900)  # skewed
    run(store, ch("acknowledged", at=T + 5000, external_id="OPS-3"), now=T + 900)  # ahead
    assert [store.get_ticket(t)["acknowledged_at"] for t in (a, b, c)] == [
        T + 300, T, T + 900]
    with store.engine.begin() as conn:
        assert read(conn, c, "jira") == Sync("acknowledged", T + 900, None, None)
