"""Local HTTP(S) receivers on 127.0.0.1 (port 0) standing in for chat and SMS services.

A receiver keeps every request and answers with `answer(req)`; `status` forces an answer
(503, 400, 429) for outage tests. Each service test asserts the request shape the service
documents (method, path, query, JSON fields) on what the receiver got.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


Answer = Callable[[Req], tuple[int, Any]]


def ok_json(req: Req) -> tuple[int, Any]:
    return 200, {"ok": True}


class Receiver:
    def __init__(self, answer: Answer = ok_json, tls: ssl.SSLContext | None = None) -> None:
        self.answer, self.tls = answer, tls
        self.seen: list[Req] = []
        self.status: int | None = None  # force this answer (outages), None: `answer`
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                req = Req(self.command, parts.path, dict(parse_qsl(parts.query)),
                          {k.lower(): v for k, v in self.headers.items()},
                          self.rfile.read(n) if n else b"")
                with outer.lock:
                    outer.seen.append(req)
                    forced = outer.status
                status, body = (forced, {"error": "forced"}) if forced else outer.answer(req)
                data = body if isinstance(body, bytes) else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str | bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "5")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def take(self) -> list[Req]:
        with self.lock:
            out, self.seen = self.seen, []
        return out
