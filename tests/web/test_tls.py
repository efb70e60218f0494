"""HTTPS served directly (--tls-cert/--tls-key): a real TLS handshake with a certificate made
here, the session cookie marked Secure; bad TLS options and a plain-HTTP listener on the
network are caught before anything starts (a one-line error, a warning)."""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.web.api.app import make_app

from fieldwatch.cli.common import CommandLineError
from fieldwatch.cli.http import is_loopback, serve_http
from tests.tls import self_signed
from tests.web.conftest import SHARED_TOKEN, WebDesk, password_of, serve_desk


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[WebDesk, str, Path]]:
    """The desk app served over HTTPS by serve_http, as `up --tls-cert --tls-key` does."""
    web = serve_desk(tmp_path / "desk.db")
    cert, key = self_signed(tmp_path)
    app = make_app(web.desk, web.stats, tokens=lambda: frozenset({SHARED_TOKEN}),
                   accounts=web.accounts)
    server = serve_http(app, "127.0.0.1", 0, cert, key)
    server.start()
    yield web, server.url.rstrip("/"), cert
    server.stop()
    web.server.stop()
    web.desk.store.engine.dispose()


def test_https_login_sets_a_secure_cookie(tls: tuple[WebDesk, str, Path]) -> None:
    web, base, cert = tls
    assert base.startswith("https://127.0.0.1:")
    trust = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=base, verify=trust, timeout=20) as c:
        page = c.get("/login")
        assert "Secure" in page.headers["set-cookie"]
        token = re.search(r"name=csrf value='([^']+)'", page.text).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"name": "ana", "password": password_of("ana"),
                                   "csrf": token})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("fieldwatch_session=") and "Secure" in cookie
        assert "HttpOnly" in cookie
        assert c.get("/api/v1/me").json()["name"] == "ana"
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=10) as untrusting:
        untrusting.get(base + "/healthz")  # our certificate is nobody else's root


def test_bad_tls_options_are_one_line_errors(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(CommandLineError, match="both --tls-cert and --tls-key"):
        serve_http(object(), "127.0.0.1", 0, cert, None)
    with pytest.raises(CommandLineError, match="cannot use"):
        serve_http(object(), "127.0.0.1", 0, tmp_path / "junk.pem", key)
    with pytest.raises(CommandLineError, match="no file"):
        serve_http(object(), "127.0.0.1", 0, tmp_path / "missing.pem", key)
    with pytest.raises(CommandLineError, match="cannot listen on 192.0.2.1"):
        serve_http(object(), "192.0.2.1", 0, None, None)  # not an address of this machine


def test_plain_http_beyond_loopback_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        serve_http(object(), "127.0.0.1", 0, None, None).sock.close()
        assert caplog.records == []
        serve_http(object(), "0.0.0.0", 0, None, None).sock.close()
    assert "passwords and session cookies cross the network in clear" in caplog.text


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("desk.example", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
