"""HTTP routes for diagnostics: record an approval on a ticket, read a ticket's diagnostics.

    POST /api/v1/tickets/{id}/approvals   {"action", "on_behalf_of"?, "note"?, "valid_for"?}
    GET  /api/v1/tickets/{id}/diagnostics requests with their results and approvals

Both need a caller, like every ticket action: an approval lets a device be changed, and
results show what is on a customer's machine. The approver is the caller (the logged-in user,
or the token's), whose role must allow `diag.approve`; a ticket of a site the caller does not
see answers 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from fieldwatch.collector.diag.store import DiagStore
from fieldwatch.collector.web import User, allowed, user_of
from fieldwatch.collector.web.api.auth import guarded
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.durations import parse_duration
from fieldwatch.errors import DiagnosticRefused


def routes(engine: sa.Engine, tokens: Callable[[], Iterable[str]] = frozenset) -> list[Route]:
    store = DiagStore(engine)

    def unseen(user: User, tid: int) -> Response | None:
        t = store.ticket(tid)
        if t is None or not user.sees(t["site"]):
            return JSONResponse({"error": "unknown_ticket",
                                 "detail": f"there is no ticket {tid}"}, status_code=404)
        return None

    async def approve(request: Request) -> Response:
        user = user_of(request)
        tid = int(request.path_params["id"])
        try:
            body = await request.json()
            if (missing := unseen(user, tid)) is not None:
                return missing
            if not allowed(user, "diag.approve"):
                return JSONResponse({"error": "forbidden", "detail": f"{user.name} is a "
                                     f"{user.role}: approvals need the role supervisor"}, 403)
            if not isinstance(body, dict) or not isinstance(body.get("action"), str):
                raise ValueError("give action as a string")
            if "by" in body:
                raise ValueError("by is not taken: the approval is recorded under the "
                                 "logged-in user (or the API token's user)")
            valid_for = parse_duration(body.get("valid_for", "24h"))
            aid = store.approve(tid, body["action"], user.name, time.time(), valid_for,
                                on_behalf_of=str(body.get("on_behalf_of", "")),
                                note=str(body.get("note", "")))
        except DiagnosticRefused as exc:
            code = 404 if exc.reason == "unknown_ticket" else 400
            return JSONResponse({"error": exc.reason, "detail": exc.detail}, status_code=code)
        except ValueError as exc:
            return JSONResponse({"error": "invalid", "detail": str(exc)}, status_code=400)
        return JSONResponse({"approval": aid, "ticket": tid}, status_code=201)

    async def diagnostics(request: Request) -> Response:
        tid = int(request.path_params["id"])
        if (missing := unseen(user_of(request), tid)) is not None:
            return missing
        return JSONResponse({"requests": store.requests_of(tid),
                             "approvals": store.approvals(tid), "onsite": store.onsite(tid)})

    return [Route("/api/v1/tickets/{id:int}/approvals", guarded(approve, tokens),
                  methods=["POST"]),
            Route("/api/v1/tickets/{id:int}/diagnostics", guarded(diagnostics, tokens))]
