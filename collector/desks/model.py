"""The values a desk adapter takes and returns, and the protocol every adapter follows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# What a ticket change means to a desk. `update` is anything worth a comment on the external
# ticket (a comment, an assignment, an alert that fired again); `escalate` an escalation step.
Action = Literal["open", "update", "acknowledge", "escalate", "resolve", "reopen", "close"]
ACTIONS: tuple[Action, ...] = ("open", "update", "acknowledge", "escalate", "resolve", "reopen",
                               "close")
OPEN_STATES = ("open", "acknowledged", "in_progress", "reopened")
NOTE_MAX = 4000  # characters of an event's text in a note (diagnostic output can be long)


@dataclass(frozen=True)
class Change:
    """One ticket change, as the outbox hands it to one desk.

    `key` is unique per change and stable across retries (the idempotency key); `reference` is
    fieldwatch's name for the ticket, written into the external ticket so it can be found again
    after an unclear failure; `external_id` is the desk's id for the ticket once one is known.
    """

    key: str
    reference: str
    action: Action
    ticket: Mapping[str, Any]
    event: Mapping[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    unclear: bool = False  # an earlier attempt may have reached the desk

    @property
    def marker(self) -> str:
        """Written into every note so a retry can tell whether the note already landed."""
        return f"[fieldwatch:{self.key}]"

    @property
    def title(self) -> str:
        return f"[{self.reference}] {self.ticket.get('title') or 'fieldwatch ticket'}"

    def note(self) -> str:
        """The text of the note a desk gets for this change."""
        ev = self.event
        head = {
            "open": "Ticket opened", "update": "Ticket updated",
            "acknowledge": "Ticket acknowledged", "escalate": "Escalation",
            "resolve": "Ticket resolved", "reopen": "Ticket reopened", "close": "Ticket closed",
        }[self.action]
        lines = [f"{head} by {ev.get('actor') or 'fieldwatch'}"
                 + (f" ({ev['kind']})" if ev.get("kind") else "") + "."]
        if ev.get("reason"):
            lines.append(str(ev["reason"])[:NOTE_MAX])
        lines.append(self.marker)
        return "\n".join(lines)

    def description(self) -> str:
        t = self.ticket
        parts = [str(t.get("description") or t.get("title") or "")]
        facts = [("device", f"{t.get('site', '')}/{t.get('device', '')}"),
                 ("rule", t.get("rule")), ("priority", t.get("severity")),
                 ("team", t.get("team")), ("latest value", t.get("last_value")),
                 ("fieldwatch ticket", self.reference)]
        parts.append("\n".join(f"{k}: {v}" for k, v in facts if v not in (None, "", "/")))
        parts.append(self.marker)
        return "\n\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Receipt:
    """What a desk said: its id for the ticket (stored on the fieldwatch ticket) and a note."""

    external_id: str | None = None
    url: str | None = None
    detail: str = ""


class Desk(Protocol):
    """The whole extension contract: deliver one change or raise DeskError."""

    name: str

    def deliver(self, change: Change) -> Receipt: ...
