"""The service desk's pages (docs/desk.md): server-rendered HTML (Jinja2, autoescaped), our own
small CSS and script from the package (collector/web/static), no CDN and no third-party code in
the page. One module per page; `add_pages` mounts them all on the app.

Every page reads the logged-in user (`user_of`: the accounts layer attaches it) and asks
`allowed(...)` before it acts; actions go through the same functions as the API's routes
(ServiceDesk, DiagStore, SilenceStore), with the user as the actor. Form submissions are
JSON `fetch` calls from the page's own script (the HttpGuard in front of the app takes JSON
only), carrying the CSRF token as the `csrf` field and the `X-CSRF-Token` header.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fieldwatch.collector.diag.store import DiagStore
from fieldwatch.collector.history import HistoryBackend
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.silences import SilenceStore
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web import User
from fieldwatch.collector.web.pages import (
    approvals,
    dashboard,
    device,
    intake,
    live,
    monthly,
    queue,
    silences,
    ticket,
)
from fieldwatch.collector.web.pages.common import Pages, SetLanguage
from fieldwatch.collector.web.pages.render import Renderer
from fieldwatch.collector.web.pages.urgency import AT_RISK, DueCache, OrderCache, Recent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

MODULES = (queue, intake, ticket, device, approvals, silences, dashboard, monthly, live)


def add_pages(app: FastAPI, desk: ServiceDesk,
              history: Callable[[], HistoryBackend] | None = None, *,
              rules: Callable[[], RuleSet] = RuleSet, poll_seconds: float = 5.0,
              set_language: SetLanguage | None = None, at_risk: float = AT_RISK) -> Pages:
    """Mount the pages and their static files on `app`.

    `history` gives the device charts their backend (None: no charts); `rules` the rule set
    in force (thresholds on charts, the rule of a ticket); `set_language(user, code)` stores a
    user's language choice (None: the accounts store's, for users who log in);
    `at_risk`: percent of an SLA target used from which the queue marks a ticket at risk.
    """
    if set_language is None:
        from fieldwatch.collector.web.accounts.store import AccountStore

        accounts = AccountStore(desk.store.engine)

        def set_language(user: User, code: str) -> None:
            accounts.update(user.name, language=code)

    pages = Pages(desk=desk, history=history, rules=rules,
                  render=Renderer(poll_seconds, desk.clock.now),
                  diag=DiagStore(desk.store.engine), silences=SilenceStore(desk.store.engine),
                  dues=DueCache(desk.policy.sla), set_language=set_language, at_risk=at_risk,
                  orders=OrderCache(), choices=Recent(8))
    add_error_pages(app, pages)
    app.mount("/static", StaticFiles(packages=[("fieldwatch.collector.web", "static")]),
              name="static")
    app.add_api_route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False)
    for module in MODULES:
        app.include_router(module.routes(pages))
    return pages


FAVICON = "/static/favicon.svg"


def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page links (a bookmark, an image or a JSON
    route opened in a tab): send them to the icon the pages link, no login needed."""
    return RedirectResponse(FAVICON, 301)


NOT_PAGES = ("/api/", "/desk/", "/static/", "/metrics", "/healthz")


def is_page(request: Request) -> bool:
    """A browser asking for a page (not the API, a page's JSON route or a file)."""
    return request.method == "GET" and not request.url.path.startswith(NOT_PAGES)


def add_error_pages(app: FastAPI, pages: Pages) -> None:
    """Errors of page requests as pages; every other route, and a page's 401 (the accounts
    layer's handler sends it to the login form), keeps the handler the app had."""
    before = app.exception_handlers.get(HTTPException, http_exception_handler)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if is_page(request) and exc.status_code != 401:
            return pages.render.error(request, exc.status_code, str(exc.detail))
        return await before(request, exc)  # type: ignore[no-any-return]

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if is_page(request):
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ())[1:])
            return pages.render.error(request, 422, f"{where}: {first.get('msg', 'invalid')}")
        return await request_validation_exception_handler(request, exc)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
