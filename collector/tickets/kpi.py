"""Service KPIs from ticket rows, pure (docs/operations.md defines every figure).

Population: tickets opened in [since, until). Times are wall-clock seconds except SLA
compliance, which uses the SLA clocks (working time, pauses excluded).

One SLA verdict per clock, the same for `report kpi`, `report monthly` and the API, taken as
of `now` (when the report is made), whatever the window: `met` when the clock stopped within
its target, `breached` when its working time (to the stop, or to now while it runs) passed the
target, `pending` while it runs within target. A window reaching into the future (this month's
report) therefore never counts a ticket minutes old as breached, and a past month's verdicts
are the ones we know now, not the ones of its last instant.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean
from typing import Any

from fieldwatch.collector.sla.clocks import elapsed
from fieldwatch.collector.sla.policy import PRIORITIES, SlaPolicy


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least p % of values at or below)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _mean(values: Sequence[float]) -> float | None:
    return round(fmean(values), 3) if values else None


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _ever_resolved(t: Mapping[str, Any]) -> bool:
    return t.get("resolved_at") is not None or int(t.get("reopen_count") or 0) > 0


def sla_verdicts(t: Mapping[str, Any], policy: SlaPolicy, now: float) -> dict[str, str]:
    """met | breached | pending per clock, as of `now`."""
    target = policy.target(t.get("sla_priority") or t["severity"])
    out = {}
    for name, limit, stop in (("response", target.respond, t.get("acknowledged_at")),
                              ("resolution", target.resolve, t.get("resolved_at"))):
        running = stop is None or stop > now
        end = now if running else stop
        used = elapsed(target.calendar, t["opened_at"], max(end, t["opened_at"]),
                       t.get("pauses") or [])
        out[name] = "breached" if used > limit else "pending" if running else "met"
    return out


def compute(rows: Iterable[Mapping[str, Any]], policy: SlaPolicy, since: float,
            until: float, now: float | None = None) -> dict[str, Any]:
    """The KPIs of tickets opened in [since, until), SLA verdicts as of `now` (default:
    `until`)."""
    now = until if now is None else now
    tickets = [t for t in rows if since <= t["opened_at"] < until]
    acked = [t for t in tickets if t.get("acknowledged_at") is not None]
    resolved = [t for t in tickets if t.get("resolved_at") is not None]
    ever = [t for t in tickets if _ever_resolved(t)]

    sla: dict[str, dict[str, dict[str, Any]]] = {}
    for p in PRIORITIES:
        mine = [t for t in tickets if (t.get("sla_priority") or t["severity"]) == p]
        verdicts = [sla_verdicts(t, policy, now) for t in mine]
        sla[p] = {}
        for clock in ("response", "resolution"):
            c = Counter(v[clock] for v in verdicts)
            decided = c["met"] + c["breached"]
            sla[p][clock] = {"met": c["met"], "breached": c["breached"],
                             "pending": c["pending"], "compliance": _rate(c["met"], decided)}

    by_rule: dict[str, list[float]] = defaultdict(list)
    for t in acked:
        by_rule[t["rule"]].append(t["acknowledged_at"] - t["opened_at"])
    response_by_rule = {
        rule: {"count": len(v), "mean_s": _mean(v), "p50_s": percentile(v, 50),
               "p90_s": percentile(v, 90), "max_s": max(v)}
        for rule, v in sorted(by_rule.items())}

    recurred = [t for t in ever if int(t.get("recurrences") or 0) > 0]
    first_fix = [t for t in ever if int(t.get("reopen_count") or 0) == 0
                 and int(t.get("recurrences") or 0) == 0]
    scores = [int(t["satisfaction"]) for t in tickets if t.get("satisfaction") is not None]

    causes = Counter(str(t["resolution"]["cause"]) for t in tickets
                     if isinstance(t.get("resolution"), dict) and t["resolution"].get("cause"))
    total = sum(causes.values())
    pareto, running = [], 0
    for cause, n in sorted(causes.items(), key=lambda cn: (-cn[1], cn[0])):
        running += n
        pareto.append({"cause": cause, "count": n, "percent": round(100 * n / total, 1),
                       "cumulative_percent": round(100 * running / total, 1)})
    parts = Counter(str(p) for t in tickets if isinstance(t.get("resolution"), dict)
                    for p in t["resolution"].get("parts") or [])

    return {
        "since": since, "until": until, "as_of": now,
        "tickets": {"opened": len(tickets), "acknowledged": len(acked),
                    "resolved": len(resolved),
                    "closed": sum(1 for t in tickets if t["state"] == "closed"),
                    "open": sum(1 for t in tickets if t["state"] not in ("resolved", "closed")),
                    "by_priority": {p: sum(1 for t in tickets if t["severity"] == p)
                                    for p in PRIORITIES}},
        "mtta_s": _mean([t["acknowledged_at"] - t["opened_at"] for t in acked]),
        "mttr_s": _mean([t["resolved_at"] - t["opened_at"] for t in resolved]),
        "sla": sla,
        "response_by_rule": response_by_rule,
        "recurrence_rate": _rate(len(recurred), len(ever)),
        "first_time_fix_rate": _rate(len(first_fix), len(ever)),
        "satisfaction": {"count": len(scores), "mean": _mean([float(s) for s in scores])},
        "causes": pareto,
        "parts": dict(sorted(parts.items(), key=lambda pn: (-pn[1], pn[0]))),
    }
