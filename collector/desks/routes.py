"""HTTP routes of the integrations: Alertmanager in, and the outbox for people
(`GET /api/v1/outbox`, `POST /api/v1/outbox/retry`). Plain Starlette routes, added to the API
app with `add_routes`, so they work whatever framework the app is built with."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fieldwatch.collector import alertmanager
from fieldwatch.collector.desks.config import IntegrationsConfig
from fieldwatch.collector.outbox import Queue
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.store import Store
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.clock import Clock
from fieldwatch.jsonout import iso

Handler = Callable[[Request], Awaitable[Response]]
STATES = ("pending", "delivered", "dead")


def outbox_json(row: dict[str, Any]) -> dict[str, Any]:
    """The stable shape of one outbox row (docs/desks.md)."""
    return {"id": row["id"], "desk": row["desk"], "ticket_id": row["ticket_id"],
            "key": row["change_key"], "action": row["action"], "state": row["state"],
            "attempts": row["attempts"], "created_at": iso(row["created_at"]),
            "next_at": iso(row["next_at"]) if row["state"] == "pending" else None,
            "delivered_at": iso(row["delivered_at"]), "last_error": row["last_error"],
            "receipt": row["receipt"]}


def _guard(handler: Handler, tokens: Callable[[], Iterable[str]] | None) -> Handler:
    if tokens is None:
        return handler

    async def guarded(request: Request) -> Response:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not any(hmac.compare_digest(given, t.encode()) for t in tokens()):
            return JSONResponse({"detail": "missing or wrong bearer token"}, 401,
                                headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return guarded


def routes(store: Store, cfg: IntegrationsConfig, clock: Clock, stats: Stats,
           tokens: Callable[[], Iterable[str]] | None = None) -> list[Route]:
    queue = Queue(store.engine)

    async def list_outbox(request: Request) -> Response:
        p = request.query_params
        state = p.get("state", "dead")
        if state not in (*STATES, "all"):
            return JSONResponse({"detail": f"state must be one of {', '.join(STATES)}, all"}, 422)
        try:
            ticket = int(p["ticket"]) if "ticket" in p else None
            limit = min(max(int(p.get("limit", "200")), 1), 10_000)
        except ValueError:
            return JSONResponse({"detail": "ticket and limit must be integers"}, 422)
        found = queue.list(None if state == "all" else state, p.get("desk"), ticket, limit)
        return JSONResponse({"counts": queue.counts(), "items": [outbox_json(r) for r in found]})

    async def retry(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            return JSONResponse({"detail": "body must be JSON"}, 400)
        ids = body.get("ids", []) if isinstance(body, dict) else None
        desk = body.get("desk") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids) or (
                desk is not None and not isinstance(desk, str)):
            return JSONResponse({"detail": 'expected {"ids": [int, ...]} and/or {"desk": name}'},
                                422)
        return JSONResponse({"retried": queue.retry(clock.now(), ids, desk)})

    out = [Route("/api/v1/outbox", _guard(list_outbox, tokens), methods=["GET"]),
           Route("/api/v1/outbox/retry", _guard(retry, tokens), methods=["POST"])]
    if cfg.alertmanager.enabled:
        out.append(Route(alertmanager.PATH, alertmanager.endpoint(
            store, cfg.alertmanager, clock, stats), methods=["POST"]))
    return out


def add_routes(app: Any, extra: Iterable[Route]) -> None:
    """Add routes to a Starlette or FastAPI app."""
    for r in extra:
        app.router.routes.append(r)
