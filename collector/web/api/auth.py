"""Bearer-token guard for the Starlette routes that live beside the FastAPI desk API
(diagnostics, silences, outbox): the same callers and the same 401 as every ticket action.

In the app `make_app` builds, the accounts middleware has already said who is asking
(`request.state.user`: a session, a user's token, or a shared token as the admin `api-token`);
these routes then check roles and sites themselves (collector/web/accounts/access.py). Mounted
in an app without that middleware, the shared `tokens` still let the admin `api-token` in.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable

from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts.store import STATIC_TOKEN_USER
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]
Tokens = Callable[[], Iterable[str]]
SHARED_TOKEN_USER = User(STATIC_TOKEN_USER, "admin")


def bearer(request: Request) -> bytes:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case), or b""."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip().encode() if scheme.lower() == "bearer" else b""


def guarded(handler: Handler, tokens: Tokens) -> Handler:
    """`handler`, answering 401 unless someone is logged in or the request carries one of
    `tokens()` (asked per request, so a rotated token works at once)."""

    async def check(request: Request) -> Response:
        if isinstance(getattr(request.state, "user", None), User):
            return await handler(request)
        allowed = list(tokens())
        given = bearer(request)
        if not allowed or not any(hmac.compare_digest(given, t.encode()) for t in allowed):
            return JSONResponse({"detail": "missing or wrong bearer token"}, 401,
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.user = SHARED_TOKEN_USER
        return await handler(request)

    return check
