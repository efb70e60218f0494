"""HTTP routes for the metric history, behind the API's bearer token like every read route:

    GET /api/v1/metrics/query?selector=S[&start=T][&end=T][&since=D][&step=D]
        → {"series": [{"metric", "site", "device", "labels", "resolution",
                       "points": [[t, v], ...], "min": [...] | null, "max": [...] | null}]}
    GET /api/v1/metrics/series?selector=S[&start=T][&end=T][&since=D]
        → {"series": [{"metric", "site", "device", "labels"}]}

S is the rule language's selector in one string (`disk.used_percent{device="web-01"}`; for
`series`, a bare `{device="web-01"}` lists every metric). T is epoch seconds; `end` defaults to
now and `start` to `end` minus `since` (default 1h). D is a duration (`30s`, `5m`, `7d`).
Bad input is a 400 with {"error": message}.
"""

from __future__ import annotations

from collections.abc import Callable

from fieldwatch.collector.history import HistoryBackend, Query
from fieldwatch.collector.history.jsonout import build_query, key_json, series_json
from fieldwatch.collector.web import user_of
from fieldwatch.collector.web.api.auth import Tokens, guarded
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.clock import Clock, SystemClock
from fieldwatch.durations import parse_duration
from fieldwatch.errors import FieldwatchError


def _range(request: Request, now: float) -> tuple[float, float]:
    p = request.query_params
    try:
        end = float(p["end"]) if p.get("end") else now
        if p.get("start"):
            start = float(p["start"])
        else:
            start = end - parse_duration(p.get("since") or "1h")
    except ValueError as exc:
        raise FieldwatchError(f"start, end: epoch seconds; since: a duration ({exc})") from None
    if start != start or end != end:  # NaN
        raise FieldwatchError("start, end: epoch seconds")
    return start, end


def _listing(selector: str, start: float, end: float) -> Query:
    """`series` takes a selector without a metric name too: `{device="x"}`."""
    text = selector.strip()
    if text.startswith("{"):
        q = build_query("_" + text, start, end, None)
        return Query("", q.selector, q.start, q.end)
    return build_query(text, start, end, None)


def history_routes(backend: Callable[[], HistoryBackend], tokens: Tokens,
                   clock: Clock | None = None) -> list[Route]:
    """The routes; `backend` is asked per request (the embedded store or a remote server)."""
    clk = clock or SystemClock()

    async def query(request: Request) -> Response:
        try:
            start, end = _range(request, clk.now())
            q = build_query(request.query_params.get("selector", ""), start, end,
                            request.query_params.get("step"))
            found = await run_in_threadpool(backend().query, q)
        except FieldwatchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        user = user_of(request)  # a caller sees only the series of their sites
        return JSONResponse({"series": [series_json(s) for s in found if user.sees(s.key.site)]})

    async def series(request: Request) -> Response:
        try:
            start, end = _range(request, clk.now())
            q = _listing(request.query_params.get("selector", ""), start, end)
            found = await run_in_threadpool(backend().series, q)
        except FieldwatchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        user = user_of(request)
        return JSONResponse({"series": [key_json(k) for k in found if user.sees(k.site)]})

    return [Route("/api/v1/metrics/query", guarded(query, tokens), methods=["GET"]),
            Route("/api/v1/metrics/series", guarded(series, tokens), methods=["GET"])]
