"""Bearer-token guard for the Starlette routes that live beside the FastAPI desk API
(diagnostics, silences): the same tokens and the same 401 as every ticket action."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]
Tokens = Callable[[], Iterable[str]]


def bearer(request: Request) -> bytes:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case), or b""."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip().encode() if scheme.lower() == "bearer" else b""


def guarded(handler: Handler, tokens: Tokens) -> Handler:
    """`handler`, answering 401 unless the request carries one of `tokens()` (asked per
    request, so a rotated token works at once); no token configured refuses everyone."""

    async def check(request: Request) -> Response:
        allowed = list(tokens())
        given = bearer(request)
        if not allowed or not any(hmac.compare_digest(given, t.encode()) for t in allowed):
            return JSONResponse({"detail": "missing or wrong bearer token"}, 401,
                                headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check
