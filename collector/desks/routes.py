"""HTTP routes of the integrations: Alertmanager in (behind its own token, alertmanager.py),
the desks' webhooks (each verified by its desk's own scheme, desks/inbound), and the outbox
for people (`GET /api/v1/outbox`, `POST /api/v1/outbox/retry`, behind the API's callers; the
outbox spans every site, so only users who see every site use it, and retrying needs the
`outbox.retry` role). Plain Starlette routes, added to the API app with `add_routes`, so they
work whatever framework the app is built with; the app's HttpGuard (collector/web/api/guard.py)
checks size, media type and origin before any of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fieldwatch.collector.desks import alertmanager
from fieldwatch.collector.desks.config import IntegrationsConfig
from fieldwatch.collector.desks.inbound import routes as inbound
from fieldwatch.collector.desks.outbox import Queue
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web import User, allowed, user_of
from fieldwatch.collector.web.api.auth import Tokens, guarded
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.clock import Clock
from fieldwatch.jsonout import iso

STATES = ("pending", "delivered", "dead")


def outbox_json(row: dict[str, Any]) -> dict[str, Any]:
    """The stable shape of one outbox row (docs/desks.md)."""
    return {"id": row["id"], "desk": row["desk"], "ticket_id": row["ticket_id"],
            "key": row["change_key"], "action": row["action"], "state": row["state"],
            "attempts": row["attempts"], "created_at": iso(row["created_at"]),
            "next_at": iso(row["next_at"]) if row["state"] == "pending" else None,
            "delivered_at": iso(row["delivered_at"]), "last_error": row["last_error"],
            "receipt": row["receipt"]}


def routes(store: Store, cfg: IntegrationsConfig, clock: Clock, stats: Stats,
           tokens: Tokens) -> list[Route]:
    """The routes; `tokens` (the API's, asked per request) guard the outbox."""
    queue = Queue(store.engine)

    def refused(user: User, action: str | None) -> Response | None:
        if user.sites is not None:
            return JSONResponse({"detail": "the outbox spans every site: only users who see "
                                           "every site may use it"}, 403)
        if action is not None and not allowed(user, action):
            return JSONResponse({"detail": f"{user.name} is a {user.role}: retrying needs "
                                           "the role supervisor"}, 403)
        return None

    async def list_outbox(request: Request) -> Response:
        if (no := refused(user_of(request), None)) is not None:
            return no
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
        if (no := refused(user_of(request), "outbox.retry")) is not None:
            return no
        try:
            body = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):  # not JSON, or not text at all
            return JSONResponse({"detail": "body must be JSON"}, 400)
        ids = body.get("ids", []) if isinstance(body, dict) else None
        desk = body.get("desk") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids) or (
                desk is not None and not isinstance(desk, str)):
            return JSONResponse({"detail": 'expected {"ids": [int, ...]} and/or {"desk": name}'},
                                422)
        return JSONResponse({"retried": queue.retry(clock.now(), ids, desk)})

    out = [Route("/api/v1/outbox", guarded(list_outbox, tokens), methods=["GET"]),
           Route("/api/v1/outbox/retry", guarded(retry, tokens), methods=["POST"])]
    out += inbound.routes(store, cfg, clock, stats, tokens)  # desks' changes coming back
    if cfg.alertmanager.enabled:
        out.append(Route(alertmanager.PATH, alertmanager.endpoint(
            store, cfg.alertmanager, clock, stats), methods=["POST"]))
    return out


def add_routes(app: Any, extra: Iterable[Route]) -> None:
    """Add routes to a Starlette or FastAPI app."""
    for r in extra:
        app.router.routes.append(r)
