"""`fieldwatch up` as a user runs it: one command, a ticket, a clean Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.procs import FIELDWATCH, Proc, wait_for

pytestmark = pytest.mark.e2e

ALWAYS = """
rules:
  - name: always_on
    metric: mem.used_percent
    when: value >= 0
    severity: P3
    ticket: {title: "memory on {device}: {value:.0f}%"}
"""


def tickets(data: Path) -> list[dict]:
    out = subprocess.run([*FIELDWATCH, "tickets", "list", "--json", "--data", str(data)],
                         capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def test_up_opens_a_ticket_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "always.yaml").write_text(ALWAYS)
    data = tmp_path / "data"
    up = Proc(["up", "--data", str(data), "--rules", str(rules), "--mqtt-port", "0",
               "--http-port", "0"], tmp_path / "up.log")
    try:
        up.wait_output(r"embedded MQTT broker on 127\.0\.0\.1:(\d+)")
        up.wait_output(r"web page and API on http://127\.0\.0\.1:(\d+)/")
        [ticket] = wait_for(lambda: tickets(data), timeout=30, every=0.5)
    finally:
        started = time.monotonic()
        code = up.stop(signal.SIGINT, timeout=10)
        elapsed = time.monotonic() - started
    assert code == 0, up.log.read_text()
    assert elapsed < 5.0
    assert ticket["rule"] == "always_on" and ticket["state"] == "open"
    assert ticket["device"] and ticket["severity"] == "P3"
    for key in ("id", "labels", "title", "opened_at", "updated_at", "occurrences"):
        assert key in ticket
    # The data survived the shutdown and reads back intact.
    assert [t["id"] for t in tickets(data)] == [ticket["id"]]


def test_up_reports_a_broken_config_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "fieldwatch.yaml"
    cfg.write_text("http_port: 8080\nagnet:\n  interval: 10s\n")
    out = subprocess.run([*FIELDWATCH, "up", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2
    assert f"{cfg}:2:1: agnet: unknown key" in out.stderr


def test_python_m_fieldwatch_works() -> None:
    out = subprocess.run([sys.executable, "-m", "fieldwatch", "--version"], capture_output=True,
                         text=True, timeout=30, check=True)
    assert out.stdout.startswith("fieldwatch ")
