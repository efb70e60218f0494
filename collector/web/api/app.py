"""The HTTP API (JSON, OpenAPI at /api/v1/openapi.json) served by the collector and by
`fieldwatch up`; the desk's pages are mounted beside it (collector/web/pages). Every route calls
the ServiceDesk, as the CLI does; errors map to 401 / 403 / 404 / 409 / 422 with a `detail`
message, never a 5xx for bad input.
Every request first passes HttpGuard (guard.py: body size, JSON only — forms on pages —,
same origin), then the accounts middleware (collector/web/accounts/: who is asking, by bearer
token or login session, and the CSRF token of browser writes). Routes act as that user: the
timeline names them, their role decides what they may do, their sites what they see (objects
of other sites answer 404).
"""


import logging
import socket
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fieldwatch.collector.diag.api import routes as diag_routes
from fieldwatch.collector.history import HistoryBackend
from fieldwatch.collector.history.api import history_routes
from fieldwatch.collector.history.query import EmbeddedHistory
from fieldwatch.collector.store.refused import add_refused
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.exposition import CONTENT_TYPE, exposition
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.lifecycle import CLOSE_REASONS, STATES
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts.access import require, visible_ticket
from fieldwatch.collector.web.accounts.csrf import form_path
from fieldwatch.collector.web.accounts.middleware import AccountsMiddleware
from fieldwatch.collector.web.accounts.routes import account_routes, login_redirect
from fieldwatch.collector.web.accounts.sessions import TTL, Sessions
from fieldwatch.collector.web.accounts.store import AccountStore
from fieldwatch.collector.web.api.guard import MAX_BODY, HttpGuard
from fieldwatch.collector.web.api.silences import silence_routes
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from fieldwatch.clock import SystemClock
from fieldwatch.durations import parse_duration
from fieldwatch.errors import TicketError, TicketNotFound
from fieldwatch.jsonout import device_json

log = logging.getLogger(__name__)


def _clean(text: str) -> str:
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    return text


Text = Annotated[str, AfterValidator(_clean)]
TicketId = Annotated[int, Path(ge=1, le=2**31 - 1, description="ticket id")]


class _Body(BaseModel):
    """The timeline's actor is the caller (the logged-in user, or the API token's user)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_self_declared_actor(cls, data: Any) -> Any:
        if isinstance(data, dict) and "by" in data:
            raise ValueError("`by` is not taken any more: the timeline records the logged-in "
                             "user, or the user whose API token this is")
        return data


class Note(_Body):
    text: Text | None = Field(None, max_length=10_000)


class Comment(_Body):
    text: Text = Field(min_length=1, max_length=10_000)


class Assign(_Body):
    assignee: Text = Field(min_length=1, max_length=128)
    text: Text | None = Field(None, max_length=10_000)


class ResolveBody(_Body):
    note: Resolution
    text: Text | None = Field(None, max_length=10_000)


class CloseBody(_Body):
    reason: Literal["fixed", "verified", "wont_fix", "duplicate"] = "fixed"
    satisfaction: int | None = Field(None, ge=1, le=5, description="customer score 1-5")
    text: Text | None = Field(None, max_length=10_000)


class Reopen(_Body):
    text: Text = Field(min_length=1, max_length=2000, description="why it is reopened")


class CreateTicket(_Body):
    device: Text = Field(min_length=1, max_length=128)
    site: Text = Field("manual", min_length=1, max_length=128)
    title: Text = Field(min_length=1, max_length=500)
    description: Text = Field("", max_length=10_000)
    customer: Text | None = Field(None, max_length=500, description="name and how to reach them")
    priority: Literal["P1", "P2", "P3"] = "P3"
    team: Text | None = Field(None, min_length=1, max_length=64)
    labels: dict[Annotated[str, Field(max_length=64)], Text] = Field({}, max_length=20)


class Error(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "no or wrong API token"},
    403: {"model": Error, "description": "the caller's role or sites do not allow it"},
    404: {"model": Error, "description": "no such ticket or device (or of a site not seen)"},
    409: {"model": Error, "description": "not allowed in the ticket's state"},
}
assert set(CLOSE_REASONS) == {"fixed", "verified", "wont_fix", "duplicate"}


def make_app(desk: ServiceDesk | Store, stats: Stats,
             health: Callable[[], dict[str, object]] | None = None,
             tokens: Callable[[], frozenset[str]] = frozenset,
             max_body: int = MAX_BODY, accounts: AccountStore | None = None,
             session_ttl: float = TTL,
             history: Callable[[], HistoryBackend] | None = None) -> FastAPI:
    """The app; `tokens` (the shared API tokens, the admin `api-token`) is asked on each
    request, so a rotated token works without restart; `accounts`: the desk users (default:
    in the desk's database, on its clock). Routes added later (`desks.routes.add_routes`) are
    behind the same HttpGuard and accounts middleware. `history` gives the metrics routes
    their backend (default: the embedded store).

    Given a bare Store (older callers), the desk runs on the system clock.
    """
    if isinstance(desk, Store):
        desk = ServiceDesk(desk, SystemClock())
    accounts = accounts or AccountStore(desk.store.engine, clock=desk.clock)
    sessions = Sessions(accounts, session_ttl)
    if history is None:
        embedded = EmbeddedHistory(desk.store.engine, clock=desk.clock)
        history = lambda: embedded  # noqa: E731
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token> (a "
                        "user's token, or the shared desk.api_token_file one)")

    def caller(request: Request,
               cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        user = getattr(request.state, "user", None)
        if isinstance(user, User):
            return user
        if cred is not None:
            stats.inc("api_auth_failures_total")
            if not tokens() and cred.credentials and not cred.credentials.startswith("fwu_"):
                raise HTTPException(401, "no API token is configured on the server "
                                         "(desk.api_token_env / desk.api_token_file); users "
                                         "get their own with `fieldwatch users token NAME`",
                                    headers={"WWW-Authenticate": "Bearer"})
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="fieldwatch service desk", version="1",
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    # added last = runs first: HttpGuard before anything, then who is asking, then routes
    app.add_middleware(AccountsMiddleware, sessions=sessions, static_tokens=tokens, stats=stats)
    app.add_middleware(HttpGuard, max_body=max_body, stats=stats, forms=form_path)
    Me = Annotated[User, Depends(caller)]

    @app.exception_handler(TicketError)
    async def _ticket_error(request: Request, exc: TicketError) -> JSONResponse:
        code = 404 if isinstance(exc, TicketNotFound) else 409
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """A page read by someone not logged in (`user_of` → 401) goes to the login form."""
        if exc.status_code == 401 and form_path(request.url.path) \
                and request.method in ("GET", "HEAD"):
            return login_redirect(request.url.path, request.url.query)
        return await http_exception_handler(request, exc)

    @app.get("/api/v1/tickets", responses=ERRORS, tags=["tickets"])
    def list_tickets(
        user: Me,
        status: Annotated[Literal[*STATES] | None, Query(  # type: ignore[valid-type]
            description="a state; `open` means every not-yet-resolved state")] = None,
        team: Annotated[Text | None, Query(max_length=64)] = None,
        assignee: Annotated[Text | None, Query(max_length=128)] = None,
        priority: Literal["P1", "P2", "P3"] | None = None,
        site: Annotated[Text | None, Query(max_length=128)] = None,
        device: Annotated[Text | None, Query(max_length=128)] = None,
        rule: Annotated[Text | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[dict[str, Any]]:
        return desk.list(status, limit, offset, team=team, assignee=assignee, priority=priority,
                         site=site, device=device, rule=rule, sites=user.sites)

    @app.post("/api/v1/tickets", responses=ERRORS, status_code=201, tags=["tickets"])
    def create_ticket(user: Me, body: CreateTicket) -> dict[str, Any]:
        require(user, "ticket.create", body.site)
        return desk.create(device=body.device, site=body.site, title=body.title,
                           description=body.description, customer=body.customer,
                           priority=body.priority, team=body.team, labels=body.labels,
                           actor=user.name, sites=user.sites)

    @app.get("/api/v1/tickets/{ticket_id}", responses=ERRORS, tags=["tickets"])
    def show_ticket(user: Me, ticket_id: TicketId) -> dict[str, Any]:
        visible_ticket(desk.store, user, ticket_id)
        return desk.show(ticket_id, user.sites)

    def simple(action: str, body_type: type[_Body]) -> None:
        def handler(user: Me, ticket_id: TicketId, body: Any) -> dict[str, Any]:
            require(user, "ticket.act", visible_ticket(desk.store, user, ticket_id)["site"])
            return desk.act(ticket_id, action, user.name, text=getattr(body, "text", None),  # type: ignore[arg-type]
                            assignee=getattr(body, "assignee", None),
                            note=getattr(body, "note", None), reason=getattr(body, "reason", None),
                            satisfaction=getattr(body, "satisfaction", None), sites=user.sites)
        handler.__annotations__["body"] = body_type
        handler.__name__ = f"{action}_ticket"
        app.post(f"/api/v1/tickets/{{ticket_id}}/{action}", responses=ERRORS,
                 tags=["tickets"], summary=f"{action} a ticket")(handler)

    for action, body_type in (("ack", Note), ("start", Note), ("assign", Assign),
                              ("comment", Comment), ("wait", Note), ("resume", Note),
                              ("resolve", ResolveBody), ("close", CloseBody),
                              ("reopen", Reopen)):
        simple(action, body_type)

    @app.get("/api/v1/devices", responses=ERRORS, tags=["devices"])
    def devices(user: Me) -> list[dict[str, Any]]:
        return add_refused(desk.store.engine, [device_json(d) for d in desk.store.list_devices()
                                               if user.sees(d["site"])])

    @app.get("/api/v1/devices/{device}/history", responses=ERRORS, tags=["devices"])
    def device_history(user: Me, device: Annotated[Text, Path(min_length=1, max_length=128)],
                       site: Annotated[Text | None, Query(max_length=128)] = None
                       ) -> dict[str, Any]:
        try:
            return desk.device_history(device, site, sites=user.sites)
        except TicketError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/v1/kpi", responses=ERRORS, tags=["reports"])
    def kpis(user: Me,
             since: Annotated[str, Query(max_length=32, description="e.g. 30d, 12h")] = "30d"
             ) -> dict[str, Any]:
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise HTTPException(422, f"since: {exc}") from None
        if seconds > 3650 * 86400:
            raise HTTPException(422, "since: at most 3650d")
        now = desk.clock.now()
        return desk.kpi(now - seconds, now, sites=user.sites)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(exposition(stats), media_type=CONTENT_TYPE)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """200 while `status` is ok or degraded, 503 when failing (store/health.py)."""
        body = {"status": "ok", **(health() if health else {})}
        return JSONResponse(body, status_code=503 if body["status"] == "failing" else 200)

    # Routes of other areas, as Starlette routes (not in this OpenAPI spec, own auth rules).
    app.router.routes.extend(account_routes(sessions, stats))  # /login, /logout, /api/v1/me
    app.router.routes.extend(diag_routes(desk.store.engine, tokens))  # approvals, diagnostics
    app.router.routes.extend(silence_routes(desk.store.engine, tokens))
    app.router.routes.extend(history_routes(history, tokens, desk.clock))  # metric history
    return app


class HttpServer:
    """uvicorn in a thread on a socket bound up front, so port 0 can be printed.

    With `tls_cert` and `tls_key` (PEM files) it serves HTTPS itself. Behind a reverse proxy
    that terminates TLS, uvicorn believes the proxy's X-Forwarded-Proto / -For only from the
    addresses in $FORWARDED_ALLOW_IPS (default 127.0.0.1): docs/desk.md, "TLS and proxies".
    """

    def __init__(self, app: Callable[..., object], host: str = "127.0.0.1",
                 port: int = 8080, tls_cert: str | None = None,
                 tls_key: str | None = None) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both a certificate and its key")
        config = uvicorn.Config(app, log_level="warning", lifespan="off",
                                ssl_certfile=tls_cert, ssl_keyfile=tls_key)
        if tls_cert is not None:
            config.load()  # reads the certificate and key now: a bad file fails here
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted sockets inherit it (Linux): uvicorn writes a response's head and body
        # apart, and with Nagle on, the body waits out the client's delayed ACK — 40 ms
        # added to every answer
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.bind((host, port))
            # listening from here on: a client connecting before uvicorn's thread runs waits in
            # the backlog instead of being refused (uvicorn's own listen() is then a no-op)
            self.sock.listen(2048)
        except OSError:
            self.sock.close()
            raise
        self.host, self.port = host, self.sock.getsockname()[1]
        self.scheme = "https" if tls_cert else "http"
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="fieldwatch-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self.sock.close()
