"""SLA urgency of a ticket, pure: which clock runs nearest its breach, when it breaches, and the
queue's order (docs/desk.md, "The queue").

The queue sorts by the instant the running clock breaches (`due`): overdue tickets first (the
longest overdue on top), then the nearest breach. A ticket waiting on the customer has no due
instant while paused and sorts after every running one; a ticket whose clocks have stopped
(resolved) or cannot be computed sorts last. `due` depends only on the ticket's priority,
opening time and pauses — not on the present — so `DueCache` computes it once per version of a
ticket and the queue of 5,000 open tickets is ordered without walking calendars per request.

For the same reason the whole order holds until a ticket changes: `Recent` keeps it per
filter and per newest ticket event (every change of a ticket writes one), and only the count
of breached tickets is taken anew at each request, by bisecting the sorted breach instants.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from fieldwatch.collector.sla.clocks import ClockView, due_at
from fieldwatch.collector.sla.policy import PRIORITIES, SlaPolicy

Level = Literal["breached", "at_risk", "ok", "paused", "stopped", "unknown"]
AT_RISK = 80.0  # percent of a target used: the queue colours the ticket as at risk

Pauses = tuple[tuple[float, float | None], ...]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Dues:
    """When each clock breaches (None: paused open-ended) — for a ticket as last changed."""

    response: float | None
    resolution: float | None


@dataclass(frozen=True, slots=True)
class Urgency:
    clock: str | None  # the running clock nearest its breach ("response" | "resolution")
    due: float | None  # epoch seconds it breaches; None while paused or stopped
    level: Level
    percent: float | None = None  # of that clock's target used, when known

    def seconds_left(self, now: float) -> float | None:
        """Wall-clock seconds to the breach (negative: breached that long ago)."""
        return None if self.due is None else self.due - now


def pauses_of(t: Mapping[str, Any]) -> Pauses:
    """The ticket's pauses as a hashable, validated tuple (junk entries left out)."""
    out = []
    for p in t.get("pauses") or []:
        if isinstance(p, list | tuple) and len(p) == 2 and isinstance(p[0], int | float):
            end = p[1] if isinstance(p[1], int | float) else None
            out.append((float(p[0]), None if end is None else float(end)))
    return tuple(out)


def compute_dues(policy: SlaPolicy, priority: str, opened_at: float, pauses: Pauses) -> Dues:
    """Both clocks' breach instants; ValueError/ArithmeticError/OverflowError from times no
    calendar can walk (the caller marks such a ticket `unknown`)."""
    target = policy.target(priority)
    if not math.isfinite(opened_at):
        raise ValueError("opening time is not a number")
    return Dues(due_at(target.calendar, opened_at, target.respond, pauses),
                due_at(target.calendar, opened_at, target.resolve, pauses))


def running_clock(t: Mapping[str, Any]) -> str | None:
    """The clock the ticket's next breach is on: response until acknowledged, then
    resolution until resolved; None once resolved or closed."""
    if t.get("resolved_at") is not None or t.get("state") in ("resolved", "closed"):
        return None
    return "response" if t.get("acknowledged_at") is None else "resolution"


def urgency(t: Mapping[str, Any], dues: Dues | None, now: float,
            views: Mapping[str, ClockView] | None = None, at_risk: float = AT_RISK) -> Urgency:
    """The ticket's urgency as of `now`. `views` (the full clocks, when the caller has them)
    add the percent used, which tells `at_risk`; without them a running clock before its due
    instant is `ok`."""
    clock = running_clock(t)
    if clock is None:
        return Urgency(None, None, "stopped")
    if dues is None:
        return Urgency(clock, None, "unknown")
    due = dues.response if clock == "response" else dues.resolution
    view = views.get(clock) if views else None
    percent = None if view is None else view.percent
    if t.get("waiting_since") is not None or due is None:
        return Urgency(clock, None, "paused", percent)
    if due <= now or (view is not None and view.breached):
        return Urgency(clock, due, "breached", percent)
    if percent is not None and percent >= at_risk:
        return Urgency(clock, due, "at_risk", percent)
    return Urgency(clock, due, "ok", percent)


_RANK = {"breached": 0, "at_risk": 0, "ok": 0, "paused": 1, "stopped": 2, "unknown": 3}


def sort_key(t: Mapping[str, Any], u: Urgency) -> tuple[int, float, int, int]:
    """Queue order: running clocks by breach instant, then paused, stopped, unknown; within
    equal instants (or none) the higher priority, then the older ticket."""
    prio = t.get("priority") or t.get("severity") or "P3"
    rank = PRIORITIES.index(prio) if prio in PRIORITIES else len(PRIORITIES)
    return (_RANK[u.level], u.due if u.due is not None else 0.0, rank, int(t["id"]))


def order(rows: Sequence[Mapping[str, Any]], urgencies: Mapping[int, Urgency]
          ) -> list[Mapping[str, Any]]:
    """`rows` in queue order (each row's urgency under its id)."""
    return sorted(rows, key=lambda t: sort_key(t, urgencies[int(t["id"])]))


class DueCache:
    """Dues per ticket version: recomputed only when priority, opening or pauses change.

    Bounded: past `limit` entries the cache starts afresh (an hour of churn on a busy desk
    fits many times over; a restart or a flush costs one slower queue page)."""

    def __init__(self, policy: SlaPolicy, limit: int = 200_000) -> None:
        self.policy, self.limit = policy, limit
        self._known: dict[tuple[str, float, Pauses], Dues | None] = {}

    def get(self, t: Mapping[str, Any]) -> Dues | None:
        prio = t.get("sla_priority") or t.get("severity") or "P3"
        try:
            key = (prio, float(t["opened_at"]), pauses_of(t))
        except (TypeError, ValueError):
            return None
        if key in self._known:
            return self._known[key]
        if len(self._known) >= self.limit:
            self._known.clear()
        try:
            dues: Dues | None = compute_dues(self.policy, *key)
        except (ArithmeticError, ValueError, OSError, TypeError):
            dues = None  # a stored time no calendar can walk: listed as `unknown`
        self._known[key] = dues
        return dues


@dataclass(frozen=True)
class Ordered:
    """A queue's order, valid until a ticket changes (it does not depend on the present)."""

    ids: list[int]
    dues: list[float]  # breach instants of the running, unpaused clocks, ascending
    paused: int

    def breached(self, now: float) -> int:
        return bisect.bisect_right(self.dues, now)


def ordered(rows: Sequence[Mapping[str, Any]], dues: DueCache) -> Ordered:
    """The queue order of `rows` (see `sort_key`), computed without the present."""
    urg = {int(t["id"]): urgency(t, dues.get(t), -math.inf) for t in rows}
    # with now = -inf nothing is breached yet: levels are ok / paused / stopped / unknown,
    # which is all the order needs
    out = order(rows, urg)
    return Ordered([int(t["id"]) for t in out],
                   sorted(u.due for u in urg.values() if u.due is not None),
                   sum(1 for u in urg.values() if u.level == "paused"))


class Recent(Generic[T]):
    """The last `size` values made, by key (LRU). Thread-safe: the pages run in a thread pool.
    The queue keeps its orders here by (filters, sites, newest ticket event)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._known: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value under `key`, made (outside the lock) when it is not there."""
        with self._lock:
            hit = self._known.get(key)
            if hit is not None:
                self._known.move_to_end(key)
                return hit
        made = make()  # a slow first order does not block the other requests
        with self._lock:
            self._known[key] = made
            while len(self._known) > self.size:
                self._known.popitem(last=False)
        return made


OrderCache = Recent[Ordered]
