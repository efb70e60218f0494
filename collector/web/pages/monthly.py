"""The monthly report as a printable page (`/report?month=2026-05`): the sections and figures of
`fieldwatch report monthly` (collector/tickets/report.py, from collector/tickets/kpi.py), laid
out for paper (print styles in desk.css hide the navigation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from fieldwatch.collector.tickets import kpi
from fieldwatch.collector.tickets.report import month_bounds
from fieldwatch.collector.web.pages.common import Pages, who
from fieldwatch.collector.web.pages.dashboard import scoped
from starlette.exceptions import HTTPException
from starlette.requests import Request

MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(text: str | None, now: float) -> tuple[int, int]:
    """`2026-05` → (2026, 5); None: the month `now` is in (UTC). ValueError when malformed."""
    if not text:
        d = datetime.fromtimestamp(now, UTC)
        return d.year, d.month
    m = MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2200:
        raise ValueError("month: YYYY-MM, such as 2026-05")
    return int(m.group(1)), int(m.group(2))


def neighbours(year: int, month: int) -> tuple[str, str]:
    prev = (year - 1, 12) if month == 1 else (year, month - 1)
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{prev[0]:04d}-{prev[1]:02d}", f"{nxt[0]:04d}-{nxt[1]:02d}"


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/report", response_class=HTMLResponse)
    def report(request: Request, month: str | None = Query(None, max_length=7)) -> HTMLResponse:
        user = who(request)
        now = p.now()
        try:
            year, mon = parse_month(month, now)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        since, until = month_bounds(year, mon)
        rows = scoped(p.desk.store.list_tickets(None, 10_000_000, since=since,
                                                oldest_first=True), user)
        k = kpi.compute(rows, p.desk.policy.sla, since, until, now)
        prev, nxt = neighbours(year, mon)
        return p.render.page(request, user, "report.html", k=k, year=year, month=mon,
                             since=since, until=until, prev=prev, next=nxt)

    return r
