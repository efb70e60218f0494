"""The state machine as a table, and the pure action planner."""

from __future__ import annotations

import pytest
from fieldwatch.collector.store import schema
from fieldwatch.collector.tickets.actions import plan_action
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES, STATES, next_state

from fieldwatch.errors import TransitionRefused

ALLOWED = {
    ("open", "ack"): "acknowledged", ("reopened", "ack"): "acknowledged",
    ("open", "start"): "in_progress", ("acknowledged", "start"): "in_progress",
    ("reopened", "start"): "in_progress",
    **{(s, "resolve"): "resolved" for s in OPEN_STATES},
    **{(s, "close"): "closed" for s in (*OPEN_STATES, "resolved")},
    ("resolved", "reopen"): "reopened", ("closed", "reopen"): "reopened",
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ["ack", "start", "resolve", "close", "reopen"])
def test_transition_table(state: str, action: str) -> None:
    if (state, action) in ALLOWED:
        assert next_state(state, action) == ALLOWED[(state, action)]
    else:
        with pytest.raises(TransitionRefused, match=f"cannot {action} a ticket that is {state}"):
            next_state(state, action)


def test_wont_fix_is_never_reopened() -> None:
    with pytest.raises(TransitionRefused, match="won't fix"):
        next_state("closed", "reopen", close_reason="wont_fix")


def test_schema_uses_the_same_open_states() -> None:
    assert schema.OPEN_STATES == OPEN_STATES


def ticket(**kw: object) -> dict:
    return {"state": "open", "acknowledged_at": None, "waiting_since": None, "pauses": [],
            **kw}


def test_resolving_needs_a_note_and_stops_a_running_pause() -> None:
    with pytest.raises(TransitionRefused, match="needs a note"):
        plan_action(ticket(), "resolve", 10)
    up = plan_action(ticket(waiting_since=5, pauses=[[5, None]]), "resolve", 10,
                     note=Resolution(cause="fan", fix="cleaned"))
    assert up.values["state"] == "resolved" and up.values["pauses"] == [[5, 10]]
    assert up.values["acknowledged_at"] == 10  # resolving is a response too
    assert [e[0] for e in up.events] == ["acknowledged", "resolved"]


@pytest.mark.parametrize(("kw", "message"), [
    ({"action": "close", "reason": "fixed"}, "resolve it first"),
    ({"action": "close", "reason": "nonsense"}, "close reason must be"),
    ({"action": "comment", "text": "  "}, "comment must not be empty"),
    ({"action": "assign", "assignee": ""}, "assignee must not be empty"),
    ({"action": "resume"}, "not waiting"),
])
def test_refusals_say_why(kw: dict, message: str) -> None:
    action = kw.pop("action")
    with pytest.raises(TransitionRefused, match=message):
        plan_action(ticket(), action, 10, **kw)


def test_satisfaction_is_1_to_5() -> None:
    with pytest.raises(TransitionRefused, match="1 to 5"):
        plan_action(ticket(state="resolved"), "close", 10, satisfaction=9)
    up = plan_action(ticket(state="resolved"), "close", 10, satisfaction=4)
    assert up.values["satisfaction"] == 4 and up.values["close_reason"] == "fixed"


def test_reopen_pauses_the_time_it_spent_resolved() -> None:
    up = plan_action(ticket(state="resolved", resolved_at=100, pauses=[[10, 20]]), "reopen",
                     500, text="came back")
    assert up.values["pauses"] == [[10, 20], [100, 500]]
    assert up.values["reopen_count"] == 1 and up.values["resolved_at"] is None
