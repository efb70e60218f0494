"""Who is asking, for every HTTP request: the ASGI middleware that puts the `User` on
`request.state.user` (the contract in collector/web/__init__.py) and refuses state changes
without a CSRF token.

    Authorization: Bearer <token>   a token of desk.api_token_file/_env (the admin `api-token`)
                                    or a user's own token (`fieldwatch users token NAME`)
    cookie fieldwatch_session       a login session (collector/web/accounts/sessions.py)

A request with a bearer header is judged by it alone. An unsafe method (POST, PUT, …) that
rides on the session cookie, and every posted form, must carry the CSRF token (csrf.py) in the
`X-CSRF-Token` header or the form's `csrf` field, else 403. A form body is read here, parsed
into `request.state.form` (`csrf.form_of`) and handed on unchanged. No credential is no
error here: routes decide (`user_of` answers 401).

It runs inside HttpGuard (collector/web/api/guard.py), which has already refused big bodies,
other media types and other origins' writes.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

import anyio.to_thread
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts import csrf
from fieldwatch.collector.web.accounts.sessions import COOKIE, Sessions
from fieldwatch.collector.web.api.auth import SHARED_TOKEN_USER
from fieldwatch.collector.web.api.guard import SAFE_METHODS, media_type
from starlette.datastructures import FormData, Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 200
LOG_EVERY = 60.0


@dataclass(frozen=True)
class Identity:
    user: User | None
    via: str | None  # "bearer" | "session" | None
    session_id: str | None = None
    stale_cookie: bool = False  # a session cookie that names no live session


def cookie(name: str, value: str, *, max_age: int, secure: bool, http_only: bool = True
           ) -> str:
    """A Set-Cookie value: Path=/, SameSite=Lax (links from mail still arrive logged in;
    writes need the CSRF token anyway), Secure when served over HTTPS."""
    c: SimpleCookie = SimpleCookie()
    c[name] = value
    m = c[name]
    m["path"], m["samesite"], m["max-age"] = "/", "Lax", str(max_age)
    m["httponly"] = http_only
    m["secure"] = secure
    return m.OutputString()


def is_https(scope: Scope) -> bool:
    """Served over TLS, directly or (uvicorn's proxy headers, from a trusted proxy) behind one."""
    return scope.get("scheme") == "https"


class AccountsMiddleware:
    def __init__(self, app: ASGIApp, sessions: Sessions,
                 static_tokens: Callable[[], Iterable[str]] = frozenset,
                 stats: Stats | None = None) -> None:
        self.app, self.sessions, self.static_tokens = app, sessions, static_tokens
        self.stats = stats
        self._logged = -LOG_EVERY

    def identify(self, headers: Headers) -> Identity:
        """The caller, from a bearer token or the session cookie (blocking: database)."""
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            token = given.strip()
            raw = token.encode()
            if any(hmac.compare_digest(raw, t.encode()) for t in self.static_tokens()):
                return Identity(SHARED_TOKEN_USER, "bearer")
            return Identity(self.sessions.accounts.token_user(token), "bearer")
        sid = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        if not sid:
            return Identity(None, None)
        user = self.sessions.user(sid)
        if user is None:
            return Identity(None, None, stale_cookie=True)
        return Identity(user, "session", sid)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        who = await anyio.to_thread.run_sync(self.identify, headers)
        state = scope.setdefault("state", {})
        state["user"], state["auth"] = who.user, who.via
        if who.session_id:
            state["session_id"] = who.session_id
        if scope["method"] not in SAFE_METHODS and who.via != "bearer":
            is_form = media_type(headers.get("content-type")) == FORM
            given = headers.get(csrf.HEADER)
            if is_form:
                body = await _read(receive)
                try:
                    fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                       max_num_fields=MAX_FIELDS, errors="strict")
                except (UnicodeDecodeError, ValueError):
                    await JSONResponse({"detail": "a form must be UTF-8 and have at most "
                                                  f"{MAX_FIELDS} fields"}, 400)(
                        scope, receive, send)
                    return
                state["form"] = FormData(fields)
                given = given or state["form"].get(csrf.FIELD)
                receive = _replay(body, receive)
            if (is_form or who.via == "session") and not csrf.valid(
                    given, csrf.expected(state, cookie_parser(headers.get("cookie", "")))):
                self._refused(scope)
                await JSONResponse({"detail": "CSRF token missing or wrong: reload the page "
                                              "and try again (a page from before your last "
                                              "login cannot send changes)"}, 403)(
                    scope, receive, send)
                return
        await self.app(scope, receive, self._cookies(scope, state, who, send))

    def _cookies(self, scope: Scope, state: dict[str, object], who: Identity, send: Send
                 ) -> Send:
        """`send`, adding the login form's CSRF cookie and clearing a dead session's."""
        secure = is_https(scope)

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                sets = headers.getlist("set-cookie")
                fresh = state.get("csrf_cookie")
                if isinstance(fresh, str):
                    headers.append("set-cookie", cookie(csrf.ANON_COOKIE, fresh,
                                                        max_age=12 * 3600, secure=secure))
                if who.stale_cookie and not any(s.startswith(COOKIE + "=") for s in sets):
                    headers.append("set-cookie", cookie(COOKIE, "", max_age=0, secure=secure))
            await send(message)

        return send_with_cookies

    def _refused(self, scope: Scope) -> None:
        if self.stats is not None:
            self.stats.inc("http_refused_total", "csrf")
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY:
            self._logged = now
            client = scope.get("client") or ("?", 0)
            log.warning("HTTP %s %s from %s refused (403): no valid CSRF token (further ones "
                        "this minute are only counted)", scope.get("method"), scope.get("path"),
                        client[0])


async def _read(receive: Receive) -> bytes:
    """The whole body (HttpGuard outside has capped its size)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
