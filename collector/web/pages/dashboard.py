"""The KPI dashboard (`/kpi`): the figures of collector/tickets/kpi.py (one definition with
`report kpi` and the API) for a period, and charts of MTTA and MTTR, SLA attainment per
priority, recurrence and first-time fix, and the Pareto of causes.

The trend charts cut the period into buckets (days up to two weeks, weeks beyond) and compute
each bucket's KPIs with the same function over the tickets opened in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from fieldwatch.collector.sla.policy import PRIORITIES, SlaPolicy
from fieldwatch.collector.tickets import kpi
from fieldwatch.collector.web import User
from fieldwatch.collector.web.pages.chart import BarChart, Box, bar_chart
from fieldwatch.collector.web.pages.common import Pages, who
from fieldwatch.collector.web.pages.render import gettext_of
from starlette.requests import Request

PERIODS = {"7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400, "365d": 365 * 86400}
PARETO_TOP = 10
BOX = Box(width=560, height=220, left=48, right=40)


def buckets(since: float, until: float) -> list[tuple[float, float]]:
    """UTC days for a period up to 14 days, weeks from Monday beyond, clipped to [since,
    until): the first and last may be partial. At most 60."""
    day = 86400.0
    step = day if until - since <= 14 * day else 7 * day
    start = math.floor(since / day) * day
    if step > day:  # back to Monday (1970-01-01 was a Thursday)
        start -= ((start // day + 3) % 7) * day
    out, t = [], start
    while t < until and len(out) < 60:
        out.append((max(t, since), min(t + step, until)))
        t += step
    return out


def _hours(s: float | None) -> float | None:
    return None if s is None else s / 3600.0


def _pct(r: float | None) -> float | None:
    return None if r is None else 100.0 * r


def trend(rows: Sequence[Mapping[str, Any]], policy: SlaPolicy, since: float, until: float,
          now: float) -> list[dict[str, Any]]:
    """Each bucket's label and KPIs."""
    out = []
    for b0, b1 in buckets(since, until):
        k = kpi.compute(rows, policy, b0, b1, now)
        out.append({"label": datetime.fromtimestamp(b0, UTC).strftime("%m-%d"), "k": k})
    return out


def charts(k: dict[str, Any], steps: list[dict[str, Any]], names: Mapping[str, str]
           ) -> dict[str, BarChart]:
    """The dashboard's four charts from the period's KPIs and its trend (pure). `names`:
    the legend's words in the user's language."""
    labels = [s["label"] for s in steps]
    pareto = k["causes"][:PARETO_TOP]
    return {
        "speed": bar_chart(labels, [
            (names["mtta"], [_hours(s["k"]["mtta_s"]) for s in steps]),
            (names["mttr"], [_hours(s["k"]["mttr_s"]) for s in steps])], BOX),
        "sla": bar_chart(list(PRIORITIES), [
            (names["response"], [_pct(k["sla"][p]["response"]["compliance"])
                                 for p in PRIORITIES]),
            (names["resolution"], [_pct(k["sla"][p]["resolution"]["compliance"])
                                   for p in PRIORITIES])], BOX,
            unit=lambda v: f"{v:.0f}%", top=100.0),
        "quality": bar_chart(labels, [
            (names["recurrence"], [_pct(s["k"]["recurrence_rate"]) for s in steps]),
            (names["first_fix"], [_pct(s["k"]["first_time_fix_rate"]) for s in steps])], BOX,
            unit=lambda v: f"{v:.0f}%", top=100.0),
        "pareto": bar_chart([c["cause"] for c in pareto],
                            [(names["tickets"], [float(c["count"]) for c in pareto])], BOX,
                            cumulative=[c["cumulative_percent"] for c in pareto]),
    }


def scoped(rows: list[dict[str, Any]], user: User) -> list[dict[str, Any]]:
    return rows if user.sites is None else [t for t in rows if t["site"] in user.sites]


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/kpi", response_class=HTMLResponse)
    def dashboard(request: Request,
                  period: str = Query("30d", pattern="^(7d|30d|90d|365d)$")) -> HTMLResponse:
        user = who(request)
        now = p.now()
        since = now - PERIODS[period]
        rows = scoped(p.desk.store.list_tickets(None, 10_000_000, since=since,
                                                oldest_first=True), user)
        policy = p.desk.policy.sla
        k = kpi.compute(rows, policy, since, now, now)
        steps = trend(rows, policy, since, now, now)
        gettext = gettext_of(user)
        names = {"mtta": gettext("MTTA (h)"), "mttr": gettext("MTTR (h)"),
                 "response": gettext("response"), "resolution": gettext("resolution"),
                 "recurrence": gettext("recurrence"), "first_fix": gettext("first-time fix"),
                 "tickets": gettext("tickets")}
        return p.render.page(request, user, "dashboard.html", k=k, period=period,
                             periods=list(PERIODS), charts=charts(k, steps, names))

    return r
