"""HTTP routes for diagnostics: record an approval on a ticket, read a ticket's diagnostics.

    POST /api/v1/tickets/{id}/approvals   {"action", "by", "on_behalf_of"?, "note"?, "valid_for"?}
    GET  /api/v1/tickets/{id}/diagnostics requests with their results and approvals

Both need the API's bearer token, like every ticket action: an approval lets a device be
changed, and results show what is on a customer's machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from fieldwatch.collector.api_auth import guarded
from fieldwatch.collector.diag.store import DiagStore
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.durations import parse_duration
from fieldwatch.errors import DiagnosticRefused


def routes(engine: sa.Engine, tokens: Callable[[], Iterable[str]] = frozenset) -> list[Route]:
    store = DiagStore(engine)

    async def approve(request: Request) -> Response:
        try:
            tid = int(request.path_params["id"])
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("action"), str) \
                    or not isinstance(body.get("by"), str):
                raise ValueError("give action and by as strings")
            valid_for = parse_duration(body.get("valid_for", "24h"))
            aid = store.approve(tid, body["action"], body["by"], time.time(), valid_for,
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
        return JSONResponse({"requests": store.requests_of(tid),
                             "approvals": store.approvals(tid), "onsite": store.onsite(tid)})

    return [Route("/api/v1/tickets/{id:int}/approvals", guarded(approve, tokens),
                  methods=["POST"]),
            Route("/api/v1/tickets/{id:int}/diagnostics", guarded(diagnostics, tokens))]
