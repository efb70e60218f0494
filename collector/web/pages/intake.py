"""Phoned-in fault intake (`/tickets/new`): a ticket opened by hand, on the same SLA clocks as
any other (ServiceDesk.create, as `POST /api/v1/tickets`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse
from fieldwatch.collector.sla.policy import PRIORITIES
from fieldwatch.collector.web.pages import queries
from fieldwatch.collector.web.pages.common import Form, Pages, message, need, who
from pydantic import Field, ValidationError
from starlette.requests import Request

from fieldwatch.errors import TicketError


class IntakeForm(Form):
    site: str = Field(min_length=1, max_length=128)
    device: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=10_000)
    customer: str = Field("", max_length=500)
    priority: Literal["P1", "P2", "P3"] = "P3"
    team: str = Field("", max_length=64)


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/tickets/new", response_class=HTMLResponse)
    def form(request: Request) -> HTMLResponse:
        user = who(request)
        need(user, "ticket.create")
        sites = sorted(user.sites) if user.sites is not None else None
        return p.render.page(request, user, "intake.html", priorities=PRIORITIES,
                             teams=sorted(p.desk.policy.teams.teams), sites=sites,
                             devices=queries.device_names(p.engine, user.sites),
                             targets=p.desk.policy.sla.targets)

    @r.post("/desk/tickets")
    def create(request: Request, body: dict[str, Any]) -> JSONResponse:
        user = who(request)
        try:
            f = IntakeForm.model_validate(body)
        except ValidationError as exc:
            return JSONResponse({"detail": message(exc)}, status_code=422)
        need(user, "ticket.create", f.site)
        try:
            t = p.desk.create(device=f.device, site=f.site, title=f.title,
                              description=f.description, customer=f.customer or None,
                              priority=f.priority, team=f.team or None, actor=user.name)
        except TicketError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=409)
        return JSONResponse({"id": t["id"], "url": f"/tickets/{t['id']}"}, status_code=201)

    return r
