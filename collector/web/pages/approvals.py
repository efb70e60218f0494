"""Diagnostics approvals (`/approvals`): the open tickets where a diagnostic that changes the
device was held back until someone authorizes it, and the approvals given lately. Approving
records who authorized it, on whose behalf and until when (DiagStore.approve, as
`POST /api/v1/tickets/{id}/approvals`); the approval form itself posts to the ticket's route
(ticket.py), so both pages record an approval the same way."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fieldwatch.collector.web.pages import queries
from fieldwatch.collector.web.pages.common import Pages, who
from starlette.requests import Request


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/approvals", response_class=HTMLResponse)
    def approvals(request: Request) -> HTMLResponse:
        user = who(request)
        now = p.now()
        return p.render.page(request, user, "approvals.html",
                             waiting=queries.awaiting_approval(p.engine, user.sites, now),
                             recent=queries.recent_approvals(p.engine, user.sites))

    return r
