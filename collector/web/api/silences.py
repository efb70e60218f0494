"""HTTP routes for run-time silences: list, add, expire. JSON in and out.

    GET    /api/v1/silences[?all=1]      running and scheduled (all: ended ones too)
    POST   /api/v1/silences              {"matchers": {...}, "ends_at" | "duration",
                                          "starts_at"?, "reason"} → 201 {"id": ...}
    DELETE /api/v1/silences/{id}         expire now → 200, or 404 when not running
    GET    /api/v1/muted                 recent alerts a silence or a parent outage muted

The author is the caller (the logged-in user, or the token's). Adding and expiring need the
`silence.edit` role. A user who sees only some sites sees, adds and expires only silences
whose `site` matcher names one of them exactly (others could mute what they may not see), and
only muted alerts of their sites.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.rules.selectors import parse_matcher
from fieldwatch.collector.store.silences import SilenceStore
from fieldwatch.collector.web import User, allowed, user_of
from fieldwatch.collector.web.api.auth import Tokens, guarded
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


def silence_site(matchers: dict[str, Any]) -> str | None:
    """The one site a silence's matchers name exactly (`site: plant`), else None."""
    text = matchers.get("site")
    if text is None:
        return None
    try:
        m = parse_matcher(text)
    except ValueError:
        return None
    return m.value if m.op == "=" else None


def sees_silence(user: User, matchers: dict[str, Any]) -> bool:
    if user.sites is None:
        return True
    site = silence_site(matchers)
    return site is not None and user.sees(site)


def _edit_refused(user: User) -> Response:
    return JSONResponse({"error": f"{user.name} is a {user.role}: silences need the role "
                                  "supervisor"}, status_code=403)


def silence_routes(engine: sa.Engine, tokens: Tokens, clock: Clock | None = None) -> list[Route]:
    """The routes, each behind the API's callers (a silence mutes tickets)."""
    silences = SilenceStore(engine)
    clk = clock or SystemClock()

    async def list_(request: Request) -> Response:
        user = user_of(request)
        include = request.query_params.get("all") in ("1", "true", "yes")
        return JSONResponse([s for s in silences.list(clk.now(), include_ended=include)
                             if sees_silence(user, s["matchers"])])

    async def add(request: Request) -> Response:
        user = user_of(request)
        if not allowed(user, "silence.edit"):
            return _edit_refused(user)
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
            if "author" in body:
                raise FieldwatchError("author is not taken: a silence is recorded under the "
                                      "logged-in user (or the API token's user)")
            reason = body.get("reason")
            if not isinstance(reason, str):
                raise FieldwatchError("reason: expected a string")
            if not sees_silence(user, matchers):
                return JSONResponse({"error": f"{user.name} sees only some sites: give a "
                                              "`site` matcher naming one of them"}, 403)
            sid = silences.add(matchers, starts, ends, user.name, reason, now)
        except (json.JSONDecodeError, UnicodeDecodeError):  # not JSON, or not text at all
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        except FieldwatchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"id": sid, "starts_at": starts, "ends_at": ends}, status_code=201)

    async def expire(request: Request) -> Response:
        user = user_of(request)
        sid = request.path_params["id"]
        if user.sites is not None and not any(
                s["id"] == sid and sees_silence(user, s["matchers"]) for s in silences.list(
                    clk.now())):
            return JSONResponse({"error": f"no running silence {sid!r}"}, status_code=404)
        if not allowed(user, "silence.edit"):
            return _edit_refused(user)
        if not silences.expire(sid, clk.now()):
            return JSONResponse({"error": f"no running silence {sid!r}"}, status_code=404)
        return JSONResponse({"id": sid, "expired_at": clk.now()})

    async def muted(request: Request) -> Response:
        user = user_of(request)
        return JSONResponse([m for m in silences.muted() if user.sees(m["site"])])

    return [
        Route("/api/v1/silences", guarded(list_, tokens), methods=["GET"]),
        Route("/api/v1/silences", guarded(add, tokens), methods=["POST"]),
        Route("/api/v1/silences/{id}", guarded(expire, tokens), methods=["DELETE"]),
        Route("/api/v1/muted", guarded(muted, tokens), methods=["GET"]),
    ]
