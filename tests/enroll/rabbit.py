"""A private RabbitMQ node for tests: its own node name, ports, data and cookie, with the
management and MQTT plugins; stopped (and its data removed) after the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from fieldwatch.broker import free_port
from tests.servers import wait_port

ADMIN = ("fw-admin", "fw-admin-pw")


class RabbitNode:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.name = f"fwenroll-{uuid.uuid4().hex[:8]}@localhost"
        self.amqp, self.mgmt, self.mqtt, self.dist = (free_port() for _ in range(4))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.mgmt}"

    def start(self, timeout: float = 90.0) -> RabbitNode:
        d = self.dir
        for sub in ("home", "mnesia", "log", "schema", "config"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp}\n"
            f"management.tcp.port = {self.mgmt}\nmanagement.tcp.ip = 127.0.0.1\n"
            f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt}\n"
            "mqtt.allow_anonymous = false\nloopback_users = none\n"
            f"default_user = {ADMIN[0]}\ndefault_pass = {ADMIN[1]}\n"
            "default_user_tags.administrator = true\n")
        (d / "enabled_plugins").write_text("[rabbitmq_management,rabbitmq_mqtt].\n")
        env = {**os.environ, "HOME": str(d / "home"), "RABBITMQ_NODENAME": self.name,
               "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
               "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
               "RABBITMQ_DIST_PORT": str(self.dist), "RABBITMQ_PID_FILE": str(d / "pid"),
               "RABBITMQ_LOGS": str(d / "log" / "node.log"),
               "RABBITMQ_FEATURE_FLAGS_FILE": str(d / "feature_flags"),
               "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
               "RABBITMQ_SCHEMA_DIR": str(d / "schema"),
               "RABBITMQ_GENERATED_CONFIG_DIR": str(d / "config")}
        # the node script itself: Debian's /usr/sbin wrapper switches to the rabbitmq user,
        # which cannot write this private directory
        server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not Path(server).exists():
            server = shutil.which("rabbitmq-server") or server
        with open(d / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen([server], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=d)  # a crash dump lands here
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = httpx.get(self.url + "/api/overview", auth=ADMIN, timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("rabbitmq did not start: "
                                   + (d / "stdout.log").read_text()[-2000:])
            time.sleep(0.5)
        # the MQTT plugin starts last (it elects its client-id tracker first)
        wait_port("127.0.0.1", self.mqtt, max(1.0, deadline - time.monotonic()))
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)  # our own session: the node and its helpers
            self.proc.wait(10)
