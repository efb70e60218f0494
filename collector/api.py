"""The HTTP API (JSON, OpenAPI at /api/v1/openapi.json, bearer-token auth) and the web page,
served by the collector and by `fieldwatch up`. Every route calls the ServiceDesk, as the CLI
does; errors map to 401 / 404 / 409 / 422 with a `detail` message, never a 5xx for bad input.
"""


import hmac
import html
import logging
import socket
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fieldwatch.collector.api_silences import silence_routes
from fieldwatch.collector.diag.api import routes as diag_routes
from fieldwatch.collector.history import HistoryBackend
from fieldwatch.collector.history.api import history_routes
from fieldwatch.collector.history.query import EmbeddedHistory
from fieldwatch.collector.service_desk import ServiceDesk
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.lifecycle import CLOSE_REASONS, STATES
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(extra="forbid")
    by: Text = Field(min_length=1, max_length=128, description="who does it (timeline actor)")


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
    404: {"model": Error, "description": "no such ticket or device"},
    409: {"model": Error, "description": "not allowed in the ticket's state"},
}
assert set(CLOSE_REASONS) == {"fixed", "verified", "wont_fix", "duplicate"}


def make_app(desk: ServiceDesk | Store, stats: Stats,
             health: Callable[[], dict[str, object]] | None = None,
             tokens: Callable[[], frozenset[str]] = frozenset,
             history: Callable[[], HistoryBackend] | None = None) -> FastAPI:
    """The app; `tokens` is asked on each request, so a rotated token works without restart.
    `history` gives the metrics routes their backend (default: the embedded store).

    Given a bare Store (older callers), the desk runs on the system clock.
    """
    if isinstance(desk, Store):
        desk = ServiceDesk(desk, SystemClock())
    if history is None:
        embedded = EmbeddedHistory(desk.store.engine, clock=desk.clock)
        history = lambda: embedded  # noqa: E731
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")

    def auth(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        allowed = tokens()
        if not allowed:
            raise HTTPException(401, "no API token is configured on the server "
                                     "(desk.api_token_env / desk.api_token_file)",
                                headers={"WWW-Authenticate": "Bearer"})
        given = cred.credentials.encode() if cred else b""
        if not any(hmac.compare_digest(given, t.encode()) for t in allowed):
            stats.inc("api_auth_failures_total")
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="fieldwatch service desk", version="1",
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    api: list[Any] = [Depends(auth)]

    @app.exception_handler(TicketError)
    async def _ticket_error(request: Request, exc: TicketError) -> JSONResponse:
        code = 404 if isinstance(exc, TicketNotFound) else 409
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.get("/api/v1/tickets", dependencies=api, responses=ERRORS, tags=["tickets"])
    def list_tickets(
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
                         site=site, device=device, rule=rule)

    @app.post("/api/v1/tickets", dependencies=api, responses=ERRORS, status_code=201,
              tags=["tickets"])
    def create_ticket(body: CreateTicket) -> dict[str, Any]:
        return desk.create(device=body.device, site=body.site, title=body.title,
                           description=body.description, customer=body.customer,
                           priority=body.priority, team=body.team, labels=body.labels,
                           actor=body.by)

    @app.get("/api/v1/tickets/{ticket_id}", dependencies=api, responses=ERRORS,
             tags=["tickets"])
    def show_ticket(ticket_id: TicketId) -> dict[str, Any]:
        return desk.show(ticket_id)

    def simple(action: str, body_type: type[_Body]) -> None:
        def handler(ticket_id: TicketId, body: Any) -> dict[str, Any]:
            return desk.act(ticket_id, action, body.by, text=getattr(body, "text", None),  # type: ignore[arg-type]
                            assignee=getattr(body, "assignee", None),
                            note=getattr(body, "note", None), reason=getattr(body, "reason", None),
                            satisfaction=getattr(body, "satisfaction", None))
        handler.__annotations__["body"] = body_type
        handler.__name__ = f"{action}_ticket"
        app.post(f"/api/v1/tickets/{{ticket_id}}/{action}", dependencies=api, responses=ERRORS,
                 tags=["tickets"], summary=f"{action} a ticket")(handler)

    for action, body_type in (("ack", Note), ("start", Note), ("assign", Assign),
                              ("comment", Comment), ("wait", Note), ("resume", Note),
                              ("resolve", ResolveBody), ("close", CloseBody),
                              ("reopen", Reopen)):
        simple(action, body_type)

    @app.get("/api/v1/devices", dependencies=api, responses=ERRORS, tags=["devices"])
    def devices() -> list[dict[str, Any]]:
        return [device_json(d) for d in desk.store.list_devices()]

    @app.get("/api/v1/devices/{device}/history", dependencies=api, responses=ERRORS,
             tags=["devices"])
    def device_history(device: Annotated[Text, Path(min_length=1, max_length=128)],
                       site: Annotated[Text | None, Query(max_length=128)] = None
                       ) -> dict[str, Any]:
        try:
            return desk.device_history(device, site)
        except TicketError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/v1/kpi", dependencies=api, responses=ERRORS, tags=["reports"])
    def kpis(since: Annotated[str, Query(max_length=32, description="e.g. 30d, 12h")] = "30d"
             ) -> dict[str, Any]:
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise HTTPException(422, f"since: {exc}") from None
        if seconds > 3650 * 86400:
            raise HTTPException(422, "since: at most 3650d")
        now = desk.clock.now()
        return desk.kpi(now - seconds, now)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(stats.prometheus())

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """200 while `status` is ok or degraded, 503 when failing (store/health.py)."""
        body = {"status": "ok", **(health() if health else {})}
        return JSONResponse(body, status_code=503 if body["status"] == "failing" else 200)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(_page(desk))

    # Routes of other areas, as Starlette routes (not in this OpenAPI spec, own auth rules).
    app.router.routes.extend(diag_routes(desk.store.engine, tokens))  # approvals, diagnostics
    app.router.routes.extend(silence_routes(desk.store.engine, tokens))
    app.router.routes.extend(history_routes(history, tokens, desk.clock))  # metric history
    return app


def _page(desk: ServiceDesk) -> str:
    """A read-only overview for a browser on this machine (no ticket actions without a token)."""
    rows = "".join(
        f"<tr><td>{t['id']}</td><td>{html.escape(t['state'])}</td>"
        f"<td>{t['severity']}</td><td>{html.escape(t['device'])}</td>"
        f"<td>{html.escape(t['title'])}</td><td>{t['occurrences']}</td></tr>"
        for t in desk.store.list_tickets(limit=200))
    devs = "".join(
        f"<tr><td>{html.escape(d['site'])}/{html.escape(d['device'])}</td>"
        f"<td>{html.escape(d['status'])}</td><td>{d['messages_total']}</td></tr>"
        for d in desk.store.list_devices())
    return ("<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=10>"
            "<title>fieldwatch</title><style>body{font-family:sans-serif}td,th{padding:2px 8px}"
            "</style><h1>fieldwatch</h1><h2>Tickets</h2><table><tr><th>#</th><th>state</th>"
            f"<th>prio</th><th>device</th><th>title</th><th>seen</th></tr>{rows}</table>"
            "<h2>Devices</h2><table><tr><th>device</th><th>status</th><th>messages</th></tr>"
            f"{devs}</table>")


class HttpServer:
    """uvicorn in a thread on a socket bound up front, so port 0 can be printed."""

    def __init__(self, app: Callable[..., object], host: str = "127.0.0.1",
                 port: int = 8080) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="fieldwatch-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self.sock.close()
