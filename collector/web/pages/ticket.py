"""The ticket page (`/tickets/{id}`): the whole timeline, the triggering reading, diagnostics,
case-library suggestions and the actions a person takes on it, each through the ServiceDesk
exactly as the API's routes (`desk.act`), with the logged-in user as the actor."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse
from fieldwatch.collector.desks.outbox import external_tickets
from fieldwatch.collector.tickets.cases import Resolution, similar
from fieldwatch.collector.tickets.lifecycle import CLOSE_REASONS, next_state
from fieldwatch.collector.web import User, allowed
from fieldwatch.collector.web.pages import queries
from fieldwatch.collector.web.pages.common import (
    Form,
    Pages,
    TicketId,
    message,
    need,
    visible,
    who,
)
from fieldwatch.collector.web.pages.urgency import urgency
from pydantic import Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from fieldwatch.errors import TicketError, TicketNotFound, TransitionRefused

# The actions the page offers, in the order a ticket usually sees them.
ACTIONS = ("ack", "start", "assign", "wait", "resume", "resolve", "close", "reopen", "comment")


class ActionForm(Form):
    """Fields of every action form; the action says which it reads (ServiceDesk.act checks)."""

    text: str | None = Field(None, max_length=10_000)
    assignee: str | None = Field(None, max_length=128)
    cause: str | None = Field(None, max_length=200)
    fix: str | None = Field(None, max_length=4000)
    parts: str | list[str] | None = None  # "fan, filter" or a list
    minutes: float | None = Field(None, ge=0, le=100_000)
    mode: Literal["remote", "on_site"] = "remote"
    reason: Literal["fixed", "verified", "wont_fix", "duplicate"] | None = None
    satisfaction: int | None = Field(None, ge=1, le=5)

    def resolution(self) -> Resolution:
        parts = self.parts if isinstance(self.parts, list) else (self.parts or "").replace(
            "\n", ",").split(",")
        return Resolution(cause=self.cause or "", fix=self.fix or "",
                          parts=[p.strip() for p in parts if p.strip()],
                          minutes=self.minutes or 0, mode=self.mode)


class ApprovalForm(Form):
    action: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
    on_behalf_of: str = Field("", max_length=256)
    note: str = Field("", max_length=2000)
    valid_hours: float = Field(24, gt=0, le=24 * 30)


def offered(t: dict[str, Any]) -> list[str]:
    """The actions the ticket's state allows now (the lifecycle decides)."""
    out = []
    for action in ACTIONS:
        try:
            next_state(t["state"], action, t.get("close_reason"))
        except TransitionRefused:
            continue
        waiting = t.get("waiting_since") is not None
        if (action == "wait" and waiting) or (action == "resume" and not waiting):
            continue
        out.append(action)
    return out


def members(p: Pages, team: str | None) -> list[str]:
    spec = p.desk.policy.teams.teams.get(team or "")
    names = [m.name for m in spec.members] if spec else []
    return names or sorted({m.name for s in p.desk.policy.teams.teams.values()
                            for m in s.members})


def ticket_model(p: Pages, user: User, tid: int) -> dict[str, Any]:
    try:
        t = p.desk.store.get_ticket(tid)
    except TicketNotFound:
        raise HTTPException(404, f"there is no ticket {tid}") from None
    visible(user, t["site"])
    now = p.now()
    views = p.desk.clocks(t, now)
    rule = p.rules().get(t["rule"])
    opened = queries.opening_event(p.engine, tid)
    timeline = p.desk.store.timeline(tid)
    approvals = p.diag.approvals(tid)
    held = {e["reason"].split(" ", 1)[0] for e in timeline
            if e["kind"] == "diag_skipped" and e["reason"]}
    valid = {a["action"] for a in approvals if a["used_by_request"] is None
             and a["expires"] >= now}
    return {
        "t": t, "views": views, "u": urgency(t, p.dues.get(t), now, views, p.at_risk),
        "rule": rule, "opened": (opened or {}).get("data") or {},
        "timeline": timeline, "requests": queries.diag_requests(p.engine, tid),
        "approvals": approvals, "onsite": p.diag.onsite(tid),
        "held": sorted(held - valid), "desks": external_tickets(p.engine, tid),
        "actions": offered(t) if allowed(user, "ticket.act", t["site"]) else [],
        "may_approve": allowed(user, "diag.approve", t["site"]),
        "members": members(p, t.get("team")), "close_reasons": CLOSE_REASONS,
    }


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/tickets/{tid}", response_class=HTMLResponse)
    def ticket(request: Request, tid: TicketId) -> HTMLResponse:
        user = who(request)
        return p.render.page(request, user, "ticket.html", **ticket_model(p, user, tid))

    @r.get("/tickets/{tid}/similar", response_class=HTMLResponse)
    def suggestions(request: Request, tid: TicketId) -> HTMLResponse:
        """Past fixes like this ticket (loaded after the page: ranking reads 2,000 cases)."""
        user = who(request)
        try:
            t = p.desk.store.get_ticket(tid)
        except TicketNotFound:
            raise HTTPException(404, f"there is no ticket {tid}") from None
        visible(user, t["site"])
        cases = similar(t, p.desk.store.resolved_history())
        return p.render.page(request, user, "similar.html", cases=cases)

    # before `/{action}`, which would take "approvals" for an action
    @r.post("/desk/tickets/{tid}/approvals")
    def approve(request: Request, tid: TicketId, body: dict[str, Any]) -> JSONResponse:
        """Record who authorized a device-changing diagnostic on this ticket (diag/store.py)."""
        user = who(request)
        t = p.diag.ticket(tid)
        if t is None:
            raise HTTPException(404, f"there is no ticket {tid}")
        visible(user, t["site"])
        need(user, "diag.approve", t["site"])
        try:
            form = ApprovalForm.model_validate(body)
        except ValidationError as exc:
            return JSONResponse({"detail": message(exc)}, status_code=422)
        aid = p.diag.approve(tid, form.action, user.name, p.now(), form.valid_hours * 3600,
                             on_behalf_of=form.on_behalf_of, note=form.note)
        return JSONResponse({"approval": aid, "ticket": tid}, status_code=201)

    @r.post("/desk/tickets/{tid}/{action}")
    def act(request: Request, tid: TicketId, action: str, body: dict[str, Any]
            ) -> JSONResponse:
        user = who(request)
        if action not in ACTIONS:
            raise HTTPException(404, f"no action {action!r}")
        try:
            t = p.desk.store.get_ticket(tid)
        except TicketNotFound:
            raise HTTPException(404, f"there is no ticket {tid}") from None
        visible(user, t["site"])
        need(user, "ticket.act", t["site"])
        try:
            form = ActionForm.model_validate(body)
            note = form.resolution() if action == "resolve" else None
        except ValidationError as exc:
            return JSONResponse({"detail": message(exc)}, status_code=422)
        try:
            out = p.desk.act(tid, action, user.name, text=form.text or None,  # type: ignore[arg-type]
                             assignee=form.assignee, note=note, reason=form.reason,
                             satisfaction=form.satisfaction)
        except TicketError as exc:
            return JSONResponse({"detail": str(exc)},
                                status_code=404 if isinstance(exc, TicketNotFound) else 409)
        return JSONResponse({"id": tid, "state": out["state"]})

    return r
