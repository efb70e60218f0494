"""HTTP routes for run-time silences: list, add, expire. JSON in and out.

    GET    /api/v1/silences[?all=1]      running and scheduled (all: ended ones too)
    POST   /api/v1/silences              {"matchers": {...}, "ends_at" | "duration",
                                          "starts_at"?, "author", "reason"} → 201 {"id": ...}
    DELETE /api/v1/silences/{id}         expire now → 200, or 404 when not running
    GET    /api/v1/muted                 recent alerts a silence or a parent outage muted
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.api_auth import Tokens, guarded
from fieldwatch.collector.store.silences import SilenceStore
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.clock import Clock, SystemClock
from fieldwatch.durations import parse_duration
from fieldwatch.errors import FieldwatchError

MAX_BODY = 64 * 1024


def _number(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise FieldwatchError(f"{key}: expected seconds since the epoch")
    return float(v)


def silence_routes(engine: sa.Engine, tokens: Tokens, clock: Clock | None = None) -> list[Route]:
    """The routes, each behind the API's bearer token (a silence mutes tickets)."""
    silences = SilenceStore(engine)
    clk = clock or SystemClock()

    async def list_(request: Request) -> Response:
        include = request.query_params.get("all") in ("1", "true", "yes")
        return JSONResponse(silences.list(clk.now(), include_ended=include))

    async def add(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise FieldwatchError("expected a JSON object")
            now = clk.now()
            matchers = body.get("matchers")
            if not isinstance(matchers, dict):
                raise FieldwatchError("matchers: expected an object of name → matcher")
            starts = _number(body, "starts_at")
            starts = now if starts is None else starts
            ends = _number(body, "ends_at")
            if ends is None:
                duration = body.get("duration")
                if not isinstance(duration, str | int | float) or isinstance(duration, bool):
                    raise FieldwatchError("give ends_at (epoch seconds) or duration (e.g. 2h)")
                try:
                    ends = starts + parse_duration(duration)
                except ValueError as exc:
                    raise FieldwatchError(f"duration: {exc}") from None
            author, reason = body.get("author"), body.get("reason")
            if not isinstance(author, str) or not isinstance(reason, str):
                raise FieldwatchError("author and reason: expected strings")
            sid = silences.add(matchers, starts, ends, author, reason, now)
        except (json.JSONDecodeError, UnicodeDecodeError):  # not JSON, or not text at all
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        except FieldwatchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"id": sid, "starts_at": starts, "ends_at": ends}, status_code=201)

    async def expire(request: Request) -> Response:
        sid = request.path_params["id"]
        if not silences.expire(sid, clk.now()):
            return JSONResponse({"error": f"no running silence {sid!r}"}, status_code=404)
        return JSONResponse({"id": sid, "expired_at": clk.now()})

    async def muted(request: Request) -> Response:
        return JSONResponse(silences.muted())

    return [
        Route("/api/v1/silences", guarded(list_, tokens), methods=["GET"]),
        Route("/api/v1/silences", guarded(add, tokens), methods=["POST"]),
        Route("/api/v1/silences/{id}", guarded(expire, tokens), methods=["DELETE"]),
        Route("/api/v1/muted", guarded(muted, tokens), methods=["GET"]),
    ]
