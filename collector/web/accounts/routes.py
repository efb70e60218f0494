"""Logging in and out, and a user's own settings:

    GET  /login                 the form (English or Chinese, by the browser's languages)
    POST /login                 name, password, csrf, next → 303 to `next` with a session cookie
    POST /logout                csrf → session ended, 303 to /login
    POST /account/language      language (en | zh), csrf, next → stored for the user
    GET  /api/v1/me             who the caller is: name, role, sites, language (+ csrf)

Forms post application/x-www-form-urlencoded; the middleware has checked their CSRF token.
Password checks run in a worker thread (argon2 takes a fraction of a second by design).
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import quote

from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts.csrf import FIELD, csrf_token, form_of
from fieldwatch.collector.web.accounts.middleware import cookie, is_https
from fieldwatch.collector.web.accounts.sessions import COOKIE, Sessions
from fieldwatch.collector.web.accounts.store import LANGUAGES, STATIC_TOKEN_USER
from fieldwatch.collector.web.accounts.throttle import Throttle
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fieldwatch.errors import AccountError

log = logging.getLogger(__name__)

LOGIN_PATH = "/login"

TEXT: dict[str, dict[str, str]] = {
    "en": {"title": "fieldwatch — log in", "name": "Name", "password": "Password",
           "submit": "Log in", "wrong": "Wrong name or password.",
           "throttled": "Too many failed attempts from here: try again in {minutes} min."},
    "zh": {"title": "fieldwatch — 登录", "name": "用户名", "password": "密码",
           "submit": "登录", "wrong": "用户名或密码错误。",
           "throttled": "失败次数过多，请 {minutes} 分钟后再试。"},
}


def browser_language(accept: str) -> str:
    """The first of LANGUAGES the browser prefers (Accept-Language), else English."""
    best, best_q = "en", -1.0
    for part in accept.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (another site, //host) → "/"."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) \
            or any(c in target for c in "\r\n\x00") or len(target) > 2000:
        return "/"
    return target


def login_page(request: Request, *, error: str = "", status: int = 200) -> HTMLResponse:
    lang = request.query_params.get("lang") or browser_language(
        request.headers.get("accept-language", ""))
    t = TEXT.get(lang, TEXT["en"])
    nxt = html.escape(safe_next(request.query_params.get("next")
                                or form_of(request).get("next")))  # type: ignore[arg-type]
    name = html.escape(str(form_of(request).get("name", "")))
    err = f'<p class=error role=alert>{html.escape(error)}</p>' if error else ""
    body = (
        f"<!doctype html><html lang={'zh-Hans' if lang == 'zh' else 'en'}><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(t['title'])}</title>"
        "<link rel=icon href=/static/favicon.svg type=image/svg+xml>"
        "<style>body{font-family:sans-serif;max-width:22em;margin:4em auto}"
        "label{display:block;margin:.6em 0}input{width:100%;padding:.3em}"
        ".error{color:#b00}</style>"
        f"<h1>{html.escape(t['title'])}</h1>{err}"
        f"<form method=post action={LOGIN_PATH}>"
        f"<input type=hidden name={FIELD} value='{html.escape(csrf_token(request))}'>"
        f"<input type=hidden name=next value='{nxt}'>"
        f"<label>{html.escape(t['name'])}<input name=name autocomplete=username required "
        f"value='{name}' autofocus></label>"
        f"<label>{html.escape(t['password'])}<input name=password type=password "
        "autocomplete=current-password required></label>"
        f"<button type=submit>{html.escape(t['submit'])}</button></form>")
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store"})


def account_routes(sessions: Sessions, stats: Stats | None = None,
                   throttle: Throttle | None = None) -> list[Route]:
    accounts = sessions.accounts
    throttle = throttle or Throttle(accounts.clock)

    def show(request: Request) -> Response:
        if isinstance(request.state.user, User) and request.state.auth == "session":
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        return login_page(request)

    def login(request: Request) -> Response:
        form = form_of(request)
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        address = (request.client.host if request.client else "?")
        wait = throttle.blocked(address)
        lang = request.query_params.get("lang") or browser_language(
            request.headers.get("accept-language", ""))
        t = TEXT.get(lang, TEXT["en"])
        if wait:
            _count(stats, "throttled")
            page = login_page(request, error=t["throttled"].format(minutes=int(wait // 60) + 1),
                              status=429)
            page.headers["Retry-After"] = str(int(wait) + 1)
            return page
        user = accounts.login(name, password) if name and password else None
        if user is None:
            throttle.failed(address)
            _count(stats, "failed")
            log.info("desk login refused for %r from %s", name[:64], address)
            return login_page(request, error=t["wrong"], status=401)
        throttle.succeeded(address)
        _count(stats, "ok")
        old = getattr(request.state, "session_id", None)
        if old:
            sessions.end(old)  # a new id at every login: no session fixation
        sid = sessions.start(user.name)
        log.info("desk login: %s (%s) from %s", user.name, user.role, address)
        out = RedirectResponse(safe_next(str(form.get("next", ""))), 303)
        out.headers.append("set-cookie", cookie(COOKIE, sid, max_age=int(sessions.ttl),
                                                secure=is_https(request.scope)))
        return out

    def logout(request: Request) -> Response:
        sid = getattr(request.state, "session_id", None)
        if sid:
            sessions.end(sid)
        out = RedirectResponse(LOGIN_PATH, 303)
        out.headers.append("set-cookie", cookie(COOKIE, "", max_age=0,
                                                secure=is_https(request.scope)))
        return out

    async def language(request: Request) -> Response:
        user = request.state.user
        if not isinstance(user, User):
            return JSONResponse({"detail": "log in first"}, 401)
        form = form_of(request)
        if form:
            chosen: Any = form.get("language")
        else:
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"detail": "send language as a form field or JSON"}, 400)
            chosen = body.get("language") if isinstance(body, dict) else None
        if chosen not in LANGUAGES:
            return JSONResponse({"detail": f"language: one of {', '.join(LANGUAGES)}"}, 422)
        if user.name == STATIC_TOKEN_USER:
            return JSONResponse({"detail": "the shared API token has no stored settings"}, 409)
        try:
            accounts.update(user.name, language=chosen)
        except AccountError as exc:  # removed meanwhile
            return JSONResponse({"detail": str(exc)}, 409)
        if form:
            return RedirectResponse(safe_next(str(form.get("next", ""))), 303)
        return JSONResponse({"name": user.name, "language": chosen})

    def me(request: Request) -> Response:
        user = request.state.user
        if not isinstance(user, User):
            return JSONResponse({"detail": "missing or wrong bearer token, or not logged in"},
                                401, headers={"WWW-Authenticate": "Bearer"})
        out: dict[str, Any] = {"name": user.name, "role": user.role,
                               "sites": None if user.sites is None else sorted(user.sites),
                               "language": user.language}
        if request.state.auth == "session":
            out["csrf_token"] = csrf_token(request)
        return JSONResponse(out)

    return [Route(LOGIN_PATH, show, methods=["GET"]),
            Route(LOGIN_PATH, login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/account/language", language, methods=["POST"]),
            Route("/api/v1/me", me, methods=["GET"])]


def login_redirect(path: str, query: str = "") -> RedirectResponse:
    """Where a page sends a browser that is not logged in."""
    target = path + (f"?{query}" if query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", 303)


def _count(stats: Stats | None, outcome: str) -> None:
    if stats is not None:
        stats.inc("desk_logins_total", outcome)
