"""The HTTP server the pages are served by: its connections send each response at once."""

from __future__ import annotations

import socket

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.web.pages.conftest import serve


def test_accepted_connections_have_nagle_off() -> None:
    """A keep-alive response written in two parts (headers, body) waited ~40 ms for the
    client's delayed ACK when TCP_NODELAY was off: every request after a page's first one
    (its CSS, its script, each live poll) took 40 ms more. asyncio turns it off only for
    sockets made as IPPROTO_TCP."""
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    server = serve(app)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
            (conn,) = server.server.server_state.connections
            sock = conn.transport.get_extra_info("socket")  # type: ignore[attr-defined]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.stop()
