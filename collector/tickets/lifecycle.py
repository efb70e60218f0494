"""The ticket state machine (DESIGN §6), pure: which action may move a ticket where.

    open ─ack→ acknowledged ─start→ in_progress ─resolve→ resolved ─close→ closed
      └──────────────┴──────────────────┴─resolve──┘         │ reopen ↑ │ reopen
    reopened (a recurrence, or a person) behaves like open ←──┴────────┘

`waiting on the customer` is not a state but a pause of the SLA clocks on an open ticket.
"""

from __future__ import annotations

from typing import Literal

from fieldwatch.errors import TransitionRefused

STATES = ("open", "acknowledged", "in_progress", "resolved", "closed", "reopened")
OPEN_STATES = ("open", "acknowledged", "in_progress", "reopened")  # the fault is not fixed
CLOSE_REASONS = ("fixed", "verified", "wont_fix", "duplicate")
RECURRENCE = ("reopen", "new", "ignore")

Action = Literal["ack", "start", "resolve", "close", "reopen", "assign", "comment", "wait",
                 "resume"]

# action → (states it may start from, state it leads to; None keeps the state)
_MOVES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "ack": (("open", "reopened"), "acknowledged"),
    "start": (("open", "reopened", "acknowledged"), "in_progress"),
    "resolve": (OPEN_STATES, "resolved"),
    "close": (("resolved", *OPEN_STATES), "closed"),
    "reopen": (("resolved", "closed"), "reopened"),
    "assign": (OPEN_STATES + ("resolved",), None),
    "comment": (STATES, None),
    "wait": (OPEN_STATES, None),
    "resume": (OPEN_STATES, None),
}


def next_state(state: str, action: str, close_reason: str | None = None) -> str:
    """The state `action` leads to from `state`; TransitionRefused says why it cannot."""
    if action not in _MOVES:
        raise TransitionRefused(f"unknown action {action!r}")
    allowed, to = _MOVES[action]
    if state not in allowed:
        raise TransitionRefused(f"cannot {action} a ticket that is {state} "
                                f"(allowed from: {', '.join(allowed)})")
    if action == "reopen" and close_reason == "wont_fix":
        raise TransitionRefused("the ticket was closed as won't fix; open a new one instead")
    return to or state


def check_close(state: str, reason: str) -> None:
    """Closing an unresolved ticket needs a reason that says it will not be fixed."""
    if reason not in CLOSE_REASONS:
        raise TransitionRefused(f"close reason must be one of {', '.join(CLOSE_REASONS)}")
    if state in OPEN_STATES and reason not in ("wont_fix", "duplicate"):
        raise TransitionRefused(f"the ticket is {state}: resolve it first, or close it as "
                                "wont_fix or duplicate")


def implies_response(action: str) -> bool:
    """A person doing any of these has responded: the response clock stops."""
    return action in ("ack", "start", "resolve", "wait", "close")
