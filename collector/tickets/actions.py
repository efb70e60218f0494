"""What a person's action does to a ticket, pure: (ticket, action, input, now) → column values
and timeline events. The service layer applies the result in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.lifecycle import check_close, implies_response, next_state

from fieldwatch.errors import TransitionRefused

Event = tuple[str, str, dict[str, Any] | None]  # kind, reason, data


@dataclass
class Update:
    values: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def open_pause(pauses: list[Any] | None, at: float) -> list[list[float | None]]:
    return [*[list(p) for p in pauses or []], [at, None]]


def close_pause(pauses: list[Any] | None, at: float) -> list[list[float | None]]:
    """End the pause that is still running, if any."""
    return [[p[0], at] if p[1] is None else list(p) for p in pauses or []]


def _text(value: str | None, what: str, limit: int = 10_000) -> str:
    text = (value or "").strip()
    if not text:
        raise TransitionRefused(f"{what} must not be empty")
    if len(text) > limit:
        raise TransitionRefused(f"{what} is longer than {limit} characters")
    return text


def plan_action(t: Mapping[str, Any], action: str, now: float, *, text: str | None = None,
                assignee: str | None = None, note: Resolution | None = None,
                reason: str | None = None, satisfaction: int | None = None) -> Update:
    """The update for `action` on ticket row `t`; TransitionRefused when it is not allowed."""
    state = t["state"]
    new = next_state(state, action, t.get("close_reason"))
    up = Update({"updated_at": now})
    v, ev = up.values, up.events
    if new != state:
        v["state"] = new
    if implies_response(action) and t.get("acknowledged_at") is None:
        v["acknowledged_at"] = now
        if action != "ack":
            ev.append(("acknowledged", f"responded by {action}", None))
    waiting = t.get("waiting_since") is not None
    if action == "ack":
        ev.append(("acknowledged", text or "", None))
    elif action == "start":
        ev.append(("in_progress", text or "", None))
    elif action == "assign":
        who = _text(assignee, "assignee", 128)
        v["assignee"] = who
        ev.append(("assigned", text or "", {"from": t.get("assignee"), "to": who}))
    elif action == "comment":
        ev.append(("comment", _text(text, "comment"), None))
    elif action == "wait":
        if waiting:
            raise TransitionRefused("the ticket is already waiting on the customer")
        v["waiting_since"] = now
        v["pauses"] = open_pause(t.get("pauses"), now)
        ev.append(("waiting", text or "waiting on the customer", None))
    elif action == "resume":
        if not waiting:
            raise TransitionRefused("the ticket is not waiting on the customer")
        v["waiting_since"] = None
        v["pauses"] = close_pause(t.get("pauses"), now)
        ev.append(("resumed", text or "customer answered", None))
    elif action == "resolve":
        if note is None:
            raise TransitionRefused("resolving needs a note: cause and fix at least")
        v.update(resolved_at=now, resolution=note.model_dump(), waiting_since=None,
                 pauses=close_pause(t.get("pauses"), now))
        ev.append(("resolved", text or note.fix, {"resolution": note.model_dump()}))
    elif action == "close":
        why = reason or "fixed"
        check_close(state, why)
        if satisfaction is not None and not 1 <= satisfaction <= 5:
            raise TransitionRefused("satisfaction is a score from 1 to 5")
        v.update(closed_at=now, close_reason=why, waiting_since=None,
                 pauses=close_pause(t.get("pauses"), now))
        if satisfaction is not None:
            v["satisfaction"] = satisfaction
        ev.append(("closed", text or why, {"reason": why, "satisfaction": satisfaction}))
    elif action == "reopen":
        since = t.get("resolved_at") or t.get("closed_at") or now
        v.update(resolved_at=None, closed_at=None, close_reason=None,
                 reopen_count=int(t.get("reopen_count") or 0) + 1,
                 pauses=[*[list(p) for p in t.get("pauses") or []], [since, now]])
        ev.append(("reopened", _text(text, "the reason for reopening", 2000), None))
    return up
