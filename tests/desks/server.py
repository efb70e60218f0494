"""A real HTTP server on 127.0.0.1 (port 0) for desk tests, with outages on demand.

`app(request) -> (status, body)` is one of the desk emulators in `emulators.py`. Modes:
`ok`; `503` (answer 503 without touching state); `hang` (apply the request, then hold the
answer past the client's timeout: the desk has it, we never hear); `429` (Retry-After).
`stop()` closes the socket (connection refused) and `start()` reopens the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


App = Callable[[Req], Reply]


class DeskServer:
    def __init__(self, app: App, hang_for: float = 1.5) -> None:
        self.app = app
        self.mode = "ok"
        self.hang_for = hang_for
        self.seen: list[Req] = []  # every request received, in any mode
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._release = threading.Event()
        self._conns: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DeskServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with outer.lock:
                    outer._conns.add(self.connection)

            def finish(self) -> None:
                with outer.lock:
                    outer._conns.discard(self.connection)
                super().finish()

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                parts = urlsplit(self.path)
                req = Req(self.command, parts.path, dict(parse_qsl(parts.query)),
                          {k.lower(): v for k, v in self.headers.items()}, raw)
                if raw and "json" in req.headers.get("content-type", ""):
                    req.json = json.loads(raw)
                with outer.lock:
                    outer.seen.append(req)
                    mode = outer.mode
                    if mode == "503":
                        reply = Reply(503, {"error": "maintenance"})
                    elif mode == "429":
                        reply = Reply(429, {"error": "slow down"}, {"Retry-After": "7"})
                    else:
                        reply = outer.app(req)
                if mode == "hang":
                    outer._release.wait(outer.hang_for)
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._release.clear()
        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: connections are refused until start()."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:  # kept-alive connections die with the desk
            for conn in list(self._conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def refused(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return False
        except OSError:
            return True


def answers(url: str) -> bool:
    """Whether an HTTP server answers at `url` at all (any status)."""
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")
