"""Real fieldwatch processes for end-to-end tests: started from the installed CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

FIELDWATCH = [sys.executable, "-m", "fieldwatch.cli"]


class Proc:
    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.out = log.with_suffix(".out")
        with open(self.out, "wb") as out, open(log, "wb") as err:
            self.proc = subprocess.Popen([*FIELDWATCH, *args], stdout=out, stderr=err,
                                         env={**os.environ, **(env or {})})

    def wait_output(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.out.read_text())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not printed; stderr:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def write_rules(tmp: Path, name: str, text: str) -> Path:
    """A rules directory under `tmp` holding one rule file `name`."""
    d = tmp / "rules"
    d.mkdir()
    (d / name).write_text(text)
    return d


API_TOKEN = "e2e-token"  # the collector's desk API wants a bearer token (desk.api_token_env)
API_AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def start_collector(tmp: Path, port: int, rules: Path, name: str = "collector") -> tuple[Proc, str]:
    cfg = write_yaml(tmp / f"{name}.yaml", {
        "broker": {"host": "127.0.0.1", "port": port}, "client_id": f"fw-test-{name}",
        "rules": [str(rules)], "db": f"sqlite:///{tmp / 'fieldwatch.db'}", "batch_wait": "10ms"})
    proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                tmp / f"{name}.log", env={"FIELDWATCH_API_TOKEN": API_TOKEN})
    m = proc.wait_output(r"HTTP API on (http://\S+)/")
    base = m.group(1)
    wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], 10)
    return proc, base


def start_agent(tmp: Path, port: int, textfile_dir: Path, interval: str = "200ms",
                device: str = "pump-01", name: str = "agent") -> Proc:
    cfg = write_yaml(tmp / f"{name}.yaml", {
        "device": device, "site": "plant", "interval": interval,
        "broker": {"host": "127.0.0.1", "port": port}, "state_dir": str(tmp / f"{name}-state"),
        "sources": {"cpu": {"enabled": False}, "load": {"enabled": False},
                    "memory": {"enabled": False}, "disks": {"enabled": False},
                    "net": {"enabled": False},
                    "textfile": {"enabled": True, "dir": str(textfile_dir)}}})
    return Proc(["agent", "run", "--config", str(cfg)], tmp / f"{name}.log")


def wait_for(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_exc = exc
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last_exc!r})")


def counter(base: str, name: str, reason: str = "") -> int:
    text = httpx.get(f"{base}/metrics").text
    key = f'fieldwatch_collector_{name}{{reason="{reason}"}}' if reason else \
        f"fieldwatch_collector_{name}"
    for line in text.splitlines():
        if line.startswith(key + " "):
            return int(float(line.split()[-1]))
    return 0
