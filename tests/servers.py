"""Real servers for tests: a private Mosquitto per test on a free port, restartable."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

from fieldwatch.broker import free_port
from fieldwatch.mqtt import broker_answers


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class Mosquitto:
    """A private Mosquitto: its own port, config and persistence dir; stop() and start() keep
    the port so clients reconnect to the same address (outage tests)."""

    def __init__(self, workdir: Path, port: int | None = None, persistence: bool = True,
                 extra: str = "", inflight: int = 1000) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {self.dir}/\n"
            "max_queued_messages 100000\n"
            # run as whoever runs the tests: as root, Mosquitto would switch to its own user,
            # which cannot write the persistence file into this private directory
            f"user {getpass.getuser()}\n"
            # as the shipped config: the collector acks after commit, so this window of
            # unacknowledged messages is what one batch can hold (docs/operations.md)
            f"max_inflight_messages {inflight}\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n" + extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        with open(self.dir / "mosquitto.log", "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while not broker_answers(self.host, self.port, timeout=0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start: "
                                   + (self.dir / "mosquitto.log").read_text())
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
