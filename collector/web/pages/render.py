"""Rendering a page: one Jinja environment per language (autoescape on everywhere, undefined
names are errors), the user's language, the CSRF token, and the headers every page carries.

The Content-Security-Policy allows scripts, styles and images only from this server and no
inline script or style at all: should a value ever slip past escaping, a browser still runs
nothing it injects.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from babel.dates import format_timedelta
from babel.numbers import format_decimal, format_percent
from fieldwatch.collector.web import User, allowed
from fieldwatch.collector.web.pages import i18n
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def csrf_value(request: Request) -> str:
    """The CSRF token forms and fetch calls send back (hidden field `csrf`, header
    `X-CSRF-Token`); the accounts layer issues and checks it."""
    from fieldwatch.collector.web.accounts.csrf import csrf_token

    return csrf_token(request)


def when(ts: float | None) -> str:
    """An instant as UTC text (`2026-05-04 13:05 UTC`); "—" when there is none."""
    if ts is None or not math.isfinite(ts):
        return "—"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):
        return "—"


def iso(ts: float | None) -> str:
    if ts is None or not math.isfinite(ts):
        return ""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return ""


@functools.cache  # one per language and process: templates compile once
def _env(lang: str) -> Environment:
    env = Environment(loader=PackageLoader("fieldwatch.collector.web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                      trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.load(lang), newstyle=True)  # type: ignore[attr-defined]
    loc = i18n.locale(lang)
    gettext = i18n.load(lang).gettext

    def span(seconds: float | None, direction: bool = False, threshold: float = 1.5) -> str:
        """A duration in the user's language: `3 hr`, `3小时`; with `direction`, `in 3
        hours` / `3 hours ago` (`just now` within a minute). A higher `threshold` keeps the
        smaller unit longer: 40 working hours read `40 hr`, not `2 days`."""
        if seconds is None or not math.isfinite(seconds):
            return "—"
        if direction and abs(seconds) < 60:
            return gettext("just now")
        return format_timedelta(seconds, locale=loc, threshold=threshold,
                                add_direction=direction, format="long" if direction else "short")

    def number(v: float | None, digits: int = 1) -> str:
        if v is None or not math.isfinite(v):
            return "—"
        return format_decimal(round(v, digits), locale=loc)

    def percent(v: float | None) -> str:
        """A rate 0..1 as a percentage."""
        if v is None or not math.isfinite(v):
            return "—"
        return format_percent(v, locale=loc, format="#,##0.0%")

    env.filters.update(when=when, iso=iso, span=span, number=number, percent=percent,
                       pretty=lambda v: json.dumps(v, ensure_ascii=False, indent=1,
                                                   sort_keys=True, default=str))
    env.globals.update(LANGUAGES=i18n.LANGUAGES, html_lang=i18n.HTML_LANG[lang], lang=lang,
                       allowed=allowed)
    return env


class Renderer:
    """The pages' templates in each language."""

    def __init__(self, poll_seconds: float, now: Callable[[], float]) -> None:
        self.poll_seconds, self.now = poll_seconds, now
        self.envs = {lang: _env(lang) for lang in i18n.LANGUAGES}

    def text(self, user: User, template: str, **ctx: Any) -> str:
        lang = i18n.language(user.language)
        return self.envs[lang].get_template(template).render(user=user, **ctx)

    def page(self, request: Request, user: User, template: str, status: int = 200,
             **ctx: Any) -> HTMLResponse:
        lang = i18n.language(user.language)
        html = self.envs[lang].get_template(template).render(
            user=user, csrf=csrf_value(request), poll=self.poll_seconds, now=self.now(),
            path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=status, headers=HEADERS)


    def error(self, request: Request, status: int, detail: str) -> HTMLResponse:
        """An error page in the user's language (English when nobody is logged in)."""
        user = getattr(request.state, "user", None)
        lang = i18n.language(user.language if isinstance(user, User) else None)
        html = self.envs[lang].get_template("error.html").render(status=status, detail=detail)
        return HTMLResponse(html, status_code=status, headers=HEADERS)


def gettext_of(user: User) -> Callable[[str], str]:
    """The user's `gettext`, for the few messages made in Python (flash texts)."""
    return i18n.load(i18n.language(user.language)).gettext
