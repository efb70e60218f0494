"""What an alert firing, or clearing, does to its fault's tickets (DESIGN §6), pure.

The store applies it in SQL (one open ticket per fingerprint, across collectors); `Ledger` applies
it in memory for `rules backtest` and `rules test`, so a replay counts exactly what the
collector would have opened and reopened.

    no earlier ticket, or the last one closed or past its verification window → open a ticket
    the last one resolved within its window → per the rule's `on_recurrence`:
        reopen (default) the same ticket | new ticket marked as a recurrence | ignore (note it)
    the last one closed as won't fix → note the recurrence, open nothing
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fieldwatch.collector.tickets.alerts import TicketChange

Outcome = Literal["open", "reopen", "new", "ignore", "wont_fix"]
_OPEN = ("open", "acknowledged", "in_progress", "reopened")
_RECUR: dict[str, Outcome] = {"reopen": "reopen", "new": "new", "ignore": "ignore"}


@dataclass
class LastTicket:
    """The newest ticket of a fingerprint, as far as the decision needs it."""

    state: str
    resolved_at: float | None = None
    close_reason: str | None = None
    verify_window: float | None = None

    @classmethod
    def of(cls, row: Any) -> LastTicket:
        return cls(row.state, row.resolved_at, row.close_reason, row.verify_window)


def on_fire(last: LastTicket | None, first_ts: float, on_recurrence: str,
            default_window: float) -> Outcome:
    """The outcome of a firing for a fault with no open ticket."""
    if last is None:
        return "open"
    if last.state == "closed" and last.close_reason == "wont_fix":
        return "wont_fix"
    window = last.verify_window or default_window
    if last.state == "resolved" and first_ts - (last.resolved_at or 0) <= window:
        return _RECUR.get(on_recurrence, "reopen")
    return "open"


@dataclass
class Ledger:
    """Tickets per fingerprint in memory, changed as the store changes them. Muted changes
    (silenced, or behind a parent that is down) open nothing, as in the collector."""

    default_window: float
    last: dict[str, LastTicket] = field(default_factory=dict)

    def apply(self, ch: TicketChange) -> Outcome | None:
        """What a firing with no open ticket led to (`open`, `new` and `reopen` are tickets
        opened and reopened); None for everything else."""
        if ch.muted:
            return None
        last = self.last.get(ch.fingerprint)
        if ch.kind == "resolve":
            if last is not None and last.state in _OPEN and ch.auto_resolve:
                last.state, last.resolved_at = "resolved", ch.last_ts
            return None
        if ch.kind != "fire" or (last is not None and last.state in _OPEN):
            return None  # a repeat, or a firing while the ticket is open (refired)
        how = on_fire(last, ch.first_ts, ch.on_recurrence, self.default_window)
        if how == "reopen":
            assert last is not None
            last.state, last.resolved_at = "reopened", None
        elif how in ("open", "new"):
            self.last[ch.fingerprint] = LastTicket("open", verify_window=ch.verify_window)
        return how
