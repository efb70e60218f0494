"""The checks every HTTP request passes before any route — and so before any token check —
sees it, as one ASGI middleware around the whole app:

    body over the limit: Content-Length, or counted as it streams   → 413, the rest unread
    an unsafe method (POST, PUT, …) sent from another origin's page → 403
    a body that is not `application/json`                          → 415
      (or, on paths `forms(path)` accepts, `application/x-www-form-urlencoded`)

One narrow exception: under `/api/v1/inbound/` (desks' webhooks, each verified by its desk's
signature) a body with no Content-Type at all passes to the route, which takes only what its
desk sends — GLPI sends none (collector/desks/inbound/routes.py). Forms stay refused.

The API is JSON only and is called by scripts, Alertmanager and the CLI, never by other
sites' pages. Browsers send forms and `no-cors` fetches ("simple" requests: text/plain, form
encodings) to any origin without asking; refusing those media types and any write whose
`Origin` is not this server closes that CSRF door whatever a route's own auth. The desk's own
pages and login form post url-encoded forms to their paths (outside /api/): there the accounts
middleware (collector/web/accounts/middleware.py) checks a CSRF token in every form instead.
Behind a reverse proxy, pass the client's Host header through (nginx:
`proxy_set_header Host $host`).

`check` is pure; `HttpGuard` is the ASGI shell that also counts a streamed (chunked) body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fieldwatch.collector.telemetry.stats import Stats
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # the largest Alertmanager notification we take; others are small
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM = "application/x-www-form-urlencoded"
LOG_EVERY = 60.0  # seconds: at most one log line per refusal reason this often


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # the `reason` label of `http_refused_total`
    detail: str


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def cross_origin(headers: Mapping[str, str]) -> bool:
    """Sent by a page of another origin: the browser says so (`Sec-Fetch-Site`), or the
    `Origin` it sends is not the host this request went to. No Origin: not a browser page."""
    if headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin.strip()).netloc
    except ValueError:
        return True
    return not netloc or netloc.lower() != headers.get("host", "").lower()


INBOUND_PREFIX = "/api/v1/inbound/"  # desks' webhooks: no Content-Type is left to the route


def check(method: str, headers: Mapping[str, str], max_body: int, path: str = "",
          forms: bool = False) -> Refusal | None:
    """Why a request must be refused before its body is read, or None; `forms`: the path
    takes url-encoded forms too (whose CSRF token someone after this checks)."""
    length = headers.get("content-length")
    declared = 0
    if length is not None:
        digits = length.strip()
        if not (digits.isascii() and digits.isdigit()):
            return Refusal(400, "bad_length", "Content-Length is not a number")
        declared = int(digits) if len(digits) <= 18 else max_body + 1
        if declared > max_body:
            return Refusal(413, "too_large", f"request body over {max_body} bytes")
    if method.upper() not in SAFE_METHODS and cross_origin(headers):
        return Refusal(403, "cross_origin", "cross-origin requests are refused: call the API "
                                            "from a script or the CLI, not from a web page")
    has_body = declared > 0 or "transfer-encoding" in headers
    kind = media_type(headers.get("content-type"))
    if not kind and path.startswith(INBOUND_PREFIX):
        return None
    if has_body and kind != "application/json" and not (forms and kind == FORM):
        return Refusal(415, "media_type", "send the body as Content-Type: application/json")
    return None


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, read as it streams and given up on past `limit` bytes (None): a route's own
    limit, tighter than the guard's."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit; routes let HTTPException
    through (FastAPI re-raises it), so the app or the guard answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes", {"Connection": "close"})


class HttpGuard:
    """ASGI middleware: `check` on every HTTP request, then the body counted as it arrives."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY, stats: Stats | None = None,
                 forms: Callable[[str], bool] | None = None) -> None:
        self.app, self.max_body, self.stats = app, max_body, stats
        self.forms = forms  # which paths take url-encoded forms (None: none)
        self._logged: dict[str, float] = {}

    def refused(self, scope: Scope, why: Refusal) -> None:
        """Count and (at most once a minute per reason) log a refusal."""
        if self.stats is not None:
            self.stats.inc("http_refused_total", why.reason)
        now = time.monotonic()
        if now - self._logged.get(why.reason, -LOG_EVERY) >= LOG_EVERY:
            self._logged[why.reason] = now
            client = scope.get("client") or ("?", 0)
            log.warning("HTTP %s %s from %s refused (%d): %s (further ones this minute are "
                        "only counted)", scope.get("method"), scope.get("path"), client[0],
                        why.status, why.detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        forms = self.forms is not None and self.forms(path)
        why = check(scope["method"], Headers(scope=scope), self.max_body, path, forms)
        if why is not None:
            self.refused(scope, why)
            await JSONResponse({"detail": why.detail}, why.status,
                               headers={"Connection": "close"})(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message.get("status") == 413 and seen > self.max_body:
                    self.refused(scope, Refusal(413, "too_large",
                                                f"streamed body over {self.max_body} bytes"))
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # an app without exception handling let it through
            if started:
                raise
            self.refused(scope, Refusal(413, "too_large", exc.detail))
            await JSONResponse({"detail": exc.detail}, 413, headers=exc.headers)(
                scope, receive, send)
