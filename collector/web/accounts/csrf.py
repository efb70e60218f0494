"""CSRF tokens: what a page puts in its forms and fetches, and what the middleware checks.

A logged-in browser's token is an HMAC of its session id, which only the browser and the
server know (the cookie is HttpOnly and another site's page cannot read this site's pages), so
nothing more is stored. Before login (the login form itself) the token is a random value also
set as a cookie, and the form must send the same value back ("double submit").

Bearer-token requests need no CSRF token: a browser never adds that header by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request

FIELD = "csrf"  # the hidden form field
HEADER = "x-csrf-token"  # the header for fetch()
ANON_COOKIE = "fieldwatch_csrf"  # the login form's token before there is a session
MAX_TOKEN = 128


def form_path(path: str) -> bool:
    """May a form be posted to `path`? Pages and the login form: yes; the API (/api/...)
    takes JSON only (HttpGuard refuses other media types there)."""
    return not path.startswith("/api/")


def session_token(session_id: str) -> str:
    """The CSRF token of a session (stable for the session's life)."""
    mac = hmac.new(session_id.encode(), b"fieldwatch csrf v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def expected(state: dict[str, object], cookies: dict[str, str]) -> str | None:
    """The token a state-changing request must carry, or None when none can be right."""
    sid = state.get("session_id")
    if isinstance(sid, str):
        return session_token(sid)
    anon = cookies.get(ANON_COOKIE, "")
    return anon if 16 <= len(anon) <= MAX_TOKEN else None


def valid(given: str | None, want: str | None) -> bool:
    if not given or not want or len(given) > MAX_TOKEN:
        return False
    return hmac.compare_digest(given.encode(), want.encode())


def csrf_token(request: Request) -> str:
    """The token for this request's pages: put it in a hidden `csrf` field of every form, or
    send it as `X-CSRF-Token` with fetch(). Before login a new one is also set as a cookie."""
    state = request.scope.setdefault("state", {})
    want = expected(state, dict(request.cookies))
    if want is not None:
        return want
    fresh = state.get("csrf_cookie")
    if not isinstance(fresh, str):
        fresh = state["csrf_cookie"] = secrets.token_urlsafe(24)  # set by the middleware
    return fresh


def form_of(request: Request) -> FormData:
    """A posted form (application/x-www-form-urlencoded), parsed and CSRF-checked by the
    accounts middleware; empty for any other request."""
    form = request.scope.get("state", {}).get("form")
    return form if isinstance(form, FormData) else FormData()
