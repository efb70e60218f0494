"""The ticket queue (`/`): open tickets ordered by SLA urgency with their time to breach,
coloured when breached or at risk, with filters and search (filters.py, urgency.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fieldwatch.collector.web import User
from fieldwatch.collector.web.pages import filters, queries
from fieldwatch.collector.web.pages.common import Pages, who
from fieldwatch.collector.web.pages.filters import PAGE_SIZE, Filters
from fieldwatch.collector.web.pages.urgency import Urgency, ordered, urgency
from starlette.requests import Request


def queue_model(p: Pages, user: User, f: Filters) -> dict[str, Any]:
    """What the queue page shows for these filters (the page's rows with their clocks)."""
    now = p.now()
    start = (f.page - 1) * PAGE_SIZE
    breached = waiting = 0
    last = queries.last_event(p.engine)
    if f.only_open:
        key = (replace(f, page=1), user.sites, last)
        queue = p.orders.get(key, lambda: ordered(queries.urgency_rows(p.engine, f, user.sites),
                                                  p.dues))
        breached, waiting = queue.breached(now), queue.paused
        ids = queue.ids[start:start + PAGE_SIZE]
        full = queries.tickets_by_id(p.engine, ids)
        page = [full[i] for i in ids if i in full]
        total = len(queue.ids)
    else:
        page, total = queries.newest_rows(p.engine, f, user.sites, PAGE_SIZE, start)
    items = []
    for t in page:
        views = p.desk.clocks(t, now)
        u: Urgency = urgency(t, p.dues.get(t), now, views, p.at_risk)
        items.append({"t": t, "u": u, "left": u.seconds_left(now)})
    return {"items": items, "total": total, "breached": breached, "waiting": waiting,
            "pages": max(1, -(-total // PAGE_SIZE)), "truncated": total >= queries.MAX_QUEUE,
            "choices": p.choices.get((user.sites, int(now // 60)),  # a minute old at most
                                     lambda: queries.choices(p.engine, user.sites))}


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/", response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        user = who(request)
        f, problems = filters.parse(request.query_params)
        return p.render.page(request, user, "queue.html", f=f, problems=problems,
                             qs=filters.query_string, **queue_model(p, user, f))

    return r
