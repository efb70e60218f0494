"""The HTTP API and web page (Starlette), served by the collector and by `fieldwatch up`."""

from __future__ import annotations

import html
import logging
import socket
import threading
from collections.abc import Callable

import uvicorn
from fieldwatch.collector.api_silences import silence_routes
from fieldwatch.collector.diag.api import routes as diag_routes
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.store import Store
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fieldwatch.jsonout import device_json, ticket_json

log = logging.getLogger(__name__)


def make_app(store: Store, stats: Stats,
             health: Callable[[], dict[str, object]] | None = None) -> Starlette:
    async def tickets(request: Request) -> Response:
        state = request.query_params.get("status")
        return JSONResponse([ticket_json(t) for t in store.list_tickets(state)])

    async def devices(request: Request) -> Response:
        return JSONResponse([device_json(d) for d in store.list_devices()])

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(stats.prometheus())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", **(health() if health else {})})

    async def index(request: Request) -> Response:
        rows = "".join(
            f"<tr><td>{t['id']}</td><td>{html.escape(t['state'])}</td>"
            f"<td>{t['severity']}</td><td>{html.escape(t['device'])}</td>"
            f"<td>{html.escape(t['title'])}</td><td>{t['occurrences']}</td></tr>"
            for t in store.list_tickets(limit=200))
        devs = "".join(
            f"<tr><td>{html.escape(d['site'])}/{html.escape(d['device'])}</td>"
            f"<td>{html.escape(d['status'])}</td><td>{d['messages_total']}</td></tr>"
            for d in store.list_devices())
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=10>"
            "<title>fieldwatch</title><style>body{font-family:sans-serif}td,th{padding:2px 8px}"
            "</style><h1>fieldwatch</h1><h2>Tickets</h2><table><tr><th>#</th><th>state</th>"
            f"<th>prio</th><th>device</th><th>title</th><th>seen</th></tr>{rows}</table>"
            "<h2>Devices</h2><table><tr><th>device</th><th>status</th><th>messages</th></tr>"
            f"{devs}</table>")

    return Starlette(routes=[
        Route("/", index),
        Route("/api/v1/tickets", tickets),
        Route("/api/v1/devices", devices),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        *diag_routes(store.engine),  # approvals and diagnostics of a ticket
        *silence_routes(store.engine),
    ])


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
