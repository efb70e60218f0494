"""The built-in checks against real things on 127.0.0.1: ping, traceroute, an HTTP server,
a private snmpd, smartctl, the service tool."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fieldwatch.agent.diag.config import DiagConfig
from fieldwatch.agent.diag.handler import DiagHandler

from fieldwatch import signing, wire
from fieldwatch.clock import FakeClock
from fieldwatch.structs import convert
from tests.conftest import _require
from tests.diag.helpers import keypair, request


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    key, _, pub = keypair(tmp_path)
    made: list[DiagHandler] = []

    def run(check: str, args: dict[str, Any] | None = None, **cfg: Any) -> wire.DiagResult:
        c = convert(DiagConfig, {"trusted_keys": [str(pub)], **cfg})
        h = DiagHandler(c, "pump-01", "plant", tmp_path / f"state{len(made)}", clock,
                        signing.trusted(c.trusted_keys))
        made.append(h)
        res = h.handle(wire.encode_diag(request(check, clock.now(), key, args=args)))
        assert res is not None
        return res

    yield run
    for h in made:
        h.close()


def test_ping_localhost(make: Any) -> None:
    _require("ping")
    res = make("ping", {"host": "127.0.0.1", "count": 2})
    assert res.status == "ok", res
    assert "2 received" in res.output


def test_traceroute_localhost(make: Any) -> None:
    _require("traceroute")
    res = make("traceroute", {"host": "127.0.0.1", "max_hops": 3})
    assert res.status == "ok", res
    assert "127.0.0.1" in res.output


def test_dns_lookup_of_localhost(make: Any) -> None:
    res = make("dns_lookup", {"name": "localhost", "family": "ipv4"})
    assert res.status == "ok" and "127.0.0.1" in res.output


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        code = 503 if self.path == "/down" else 200
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


def test_http_check_against_a_local_server(make: Any) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        ok = make("http_check", {"url": base + "/health"})
        down = make("http_check", {"url": base + "/down"})
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
    assert ok.status == "ok" and "200 OK" in ok.output and "text/plain" in ok.output
    assert down.status == "failed" and "503" in down.output


def test_tcp_port_closed_is_a_failed_check(make: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        res = make("tcp_port", {"host": "127.0.0.1", "port": port})
    assert res.status == "failed" and "closed" in res.output


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[int]:
    _require("snmpd")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "snmpd.conf"
    # The listen address only in the file (NOTES: on the command line too it binds twice).
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity s3cret 127.0.0.1\n"
                    "view all included .1\nsysLocation pump-room-3\n")
    binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
    with open(tmp_path / "snmpd.log", "wb") as log:
        proc = subprocess.Popen([binary, "-f", "-Lo", "-C", "-c", str(conf)], stdout=log,
                                stderr=log)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # ready when it answers a GET
            r = subprocess.run(["snmpget", "-v2c", "-cs3cret", "-t", "0.3", "-r", "0",
                                f"127.0.0.1:{port}", ".1.3.6.1.2.1.1.6.0"],
                               capture_output=True, check=False)
            if r.returncode == 0:
                break
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def test_snmp_get_and_walk_of_a_configured_neighbour(make: Any, snmpd: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_COMMUNITY", "s3cret")
    cfg = {"snmp_neighbours": {"switch-1": {"host": "127.0.0.1", "port": snmpd,
                                            "community_env": "FW_TEST_COMMUNITY"}}}
    got = make("snmp_get", {"neighbour": "switch-1", "oid": "1.3.6.1.2.1.1.6.0"}, **cfg)
    assert got.status == "ok", got
    assert '.1.3.6.1.2.1.1.6.0 = STRING: "pump-room-3"' in got.output
    walk = make("snmp_walk", {"neighbour": "switch-1"}, **cfg)
    assert walk.status == "ok" and walk.output.count("\n") >= 5
    assert "s3cret" not in walk.output
    wrong = make("snmp_get", {"neighbour": "switch-1", "oid": "1.3.6.1.2.1.1.6.0"},
                 snmp_neighbours={"switch-1": {"host": "127.0.0.1", "port": snmpd,
                                               "timeout": "300ms"}})
    assert wrong.status == "failed"  # wrong community ("public"): no answer


def test_snmp_unconfigured_neighbour_is_refused(make: Any) -> None:
    res = make("snmp_get", {"neighbour": "10.0.0.1", "oid": "1.3.6"})
    assert (res.status, res.reason) == ("refused", "invalid_arguments")


def test_smart_status_runs_smartctl_with_json(make: Any, tmp_path: Path) -> None:
    _require("smartctl")
    res = make("smart_status", {"device": "/dev/null"}, smart_devices=["/dev/null"])
    doc = json.loads(res.output)
    assert doc["smartctl"]["argv"][-2:] == ["--", "/dev/null"]
    assert res.status == "failed"  # bit 1: the device could not be opened as a disk


def test_service_status_through_the_sysv_tool(make: Any) -> None:
    if not (shutil.which("service") or os.path.exists("/usr/sbin/service")):
        pytest.skip("no service tool")
    res = make("service_status", {"service": "fieldwatch-no-such"},
               services=["fieldwatch-no-such"], service_manager="sysv")
    assert res.status == "failed" and res.exit_code != 0
    assert "fieldwatch-no-such" in res.output


def test_missing_tool_is_reported_not_crashed(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    res = make("ping", {"host": "127.0.0.1"})
    assert res.status == "error" and "not installed" in res.detail
