"""`fieldwatch up` with its HTTP port taken: one line naming the port and `--http-port 0`,
exit 2, nothing started and nothing written (issue 12 #12)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.cli.helpers import cli


def test_http_port_taken_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = cli("up", "--http-port", str(port), "--mqtt-port", "0", "--data",
                  str(tmp_path / "data"))
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith("fieldwatch up: cannot listen on 127.0.0.1:")
    assert f":{port} " in line and "--http-port 0" in line and "in use" in line
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert not (tmp_path / "data").exists()


def test_embedded_broker_port_taken_is_one_line_too(tmp_path: Path) -> None:
    """A port held by something that is not an MQTT broker: the embedded one cannot start."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = tmp_path / "fieldwatch.yaml"
        cfg.write_text("broker: embedded\n")
        out = cli("up", "--config", str(cfg), "--mqtt-port", str(port), "--http-port", "0",
                  "--data", str(tmp_path / "data"))
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.splitlines()
    assert f":{port} for the embedded MQTT broker" in line and "--mqtt-port 0" in line
