"""SLA clocks of one ticket and the escalation steps due on them, pure (time is an argument).

Response runs from opening to the first acknowledgment; resolution from opening to resolution.
Both count working time on the priority's calendar and stand still during pauses (waiting on
the customer; the time between a resolution and a reopen).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fieldwatch.collector.sla.calendar import Calendar
from fieldwatch.collector.sla.policy import SlaPolicy, Step

Pause = Sequence[float | None]  # [start, end]; end None: still paused


@dataclass(frozen=True)
class ClockView:
    name: str  # "response" | "resolution"
    target: float  # working seconds allowed
    elapsed: float  # working seconds used so far (up to the stop, if stopped)
    due: float | None  # epoch seconds it falls due; None while paused
    stopped_at: float | None  # acknowledged / resolved at
    paused: bool

    @property
    def percent(self) -> float:
        return 100.0 * self.elapsed / self.target

    @property
    def breached(self) -> bool:
        return self.elapsed > self.target

    def as_json(self) -> dict[str, object]:
        return {"target_s": self.target, "elapsed_s": round(self.elapsed, 3),
                "percent": round(self.percent, 1), "due": self.due,
                "stopped_at": self.stopped_at, "paused": self.paused,
                "breached": self.breached}


def _normal(pauses: Iterable[Pause]) -> list[tuple[float, float | None]]:
    out = [(float(p[0]), None if p[1] is None else float(p[1]))  # type: ignore[arg-type]
           for p in pauses if p and p[0] is not None]
    return sorted(out, key=lambda p: p[0])


def elapsed(cal: Calendar, start: float, end: float, pauses: Iterable[Pause]) -> float:
    """Working time in [start, end) outside every pause."""
    total = cal.business_seconds(start, end)
    for ps, pe in _normal(pauses):
        a, b = max(ps, start), min(end if pe is None else pe, end)
        if b > a:
            total -= cal.business_seconds(a, b)
    return max(total, 0.0)


def due_at(cal: Calendar, start: float, target: float, pauses: Iterable[Pause]) -> float | None:
    """When `target` working seconds are used up, pauses skipped; None if paused open-ended."""
    t, left = start, target
    for ps, pe in _normal(pauses):
        if pe is not None and pe <= t:
            continue
        candidate = cal.add(t, left)
        if candidate <= ps:
            return candidate
        left -= cal.business_seconds(t, max(ps, t))
        if pe is None:
            return None
        t = max(t, pe)
    return cal.add(t, left)


def clocks(policy: SlaPolicy, priority: str, opened_at: float, acknowledged_at: float | None,
           resolved_at: float | None, pauses: Iterable[Pause], now: float
           ) -> dict[str, ClockView]:
    """Both clocks of a ticket as of `now`."""
    target = policy.target(priority)
    ps = _normal(pauses)
    paused_now = any(pe is None and s <= now for s, pe in ps)
    out = {}
    for name, limit, stop in (("response", target.respond, acknowledged_at),
                              ("resolution", target.resolve, resolved_at)):
        end = now if stop is None else min(stop, now)
        out[name] = ClockView(name, limit, elapsed(target.calendar, opened_at, end, ps),
                              due_at(target.calendar, opened_at, limit, ps), stop,
                              paused_now and stop is None)
    return out


def due_steps(steps: Iterable[Step], views: dict[str, ClockView],
              fired: Iterable[str], priority: str | None = None) -> list[Step]:
    """Steps whose threshold the running clock has reached and that have not fired yet (a step
    limited to some priorities only for a ticket of one of them)."""
    done = set(fired)
    out = []
    for step in steps:
        view = views[step.clock]
        if step.name in done or view.stopped_at is not None:
            continue
        if step.priorities and priority not in step.priorities:
            continue
        if view.elapsed >= view.target * step.at / 100.0:
            out.append(step)
    return out
