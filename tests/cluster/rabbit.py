"""A private RabbitMQ cluster for tests and bench/cluster.py: N nodes of Debian's
`rabbitmq-server` on one machine, each with its own node name, AMQP, MQTT and distribution
ports, and its data, logs and config under a temporary directory. The nodes share an Erlang
cookie through a private HOME (where rabbitmqctl looks for it too) and form one cluster at boot
(classic peer discovery). The system node on 5672, if any, is never touched: only the shared
epmd (4369) sees these nodes, under names of their own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fieldwatch.broker import free_port
from fieldwatch.mqtt import broker_answers

SBIN = Path("/usr/lib/rabbitmq/bin")
PLUGINS = "[rabbitmq_mqtt,rabbitmq_consistent_hash_exchange]."


def installed() -> bool:
    return (SBIN / "rabbitmq-server").exists() or shutil.which("rabbitmq-server") is not None


@dataclass
class Node:
    name: str  # erlang node name, e.g. fwt-1a2b-1@localhost
    amqp_port: int
    mqtt_port: int
    dist_port: int
    base: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"


class RabbitCluster:
    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.dir = workdir
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        tag = uuid.uuid4().hex[:6]
        self.nodes = [Node(f"fwt-{tag}-{i}@localhost", free_port(), free_port(), free_port(),
                           workdir / f"node{i}") for i in range(1, size + 1)]
        peers = "".join(f"cluster_formation.classic_config.nodes.{i} = {n.name}\n"
                        for i, n in enumerate(self.nodes, 1))
        for n in self.nodes:
            n.base.mkdir(parents=True, exist_ok=True)
            (n.base / "enabled_plugins").write_text(PLUGINS)
            (n.base / "rabbitmq.conf").write_text(
                f"listeners.tcp.1 = 127.0.0.1:{n.amqp_port}\n"
                f"mqtt.listeners.tcp.1 = 127.0.0.1:{n.mqtt_port}\n"
                "loopback_users = none\n"
                "mqtt.allow_anonymous = true\n"
                "cluster_formation.peer_discovery_backend = classic_config\n" + peers +
                "log.file.level = warning\n"
                "log.console = false\n")

    def env(self, node: Node) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home),
                "RABBITMQ_NODENAME": node.name, "RABBITMQ_USE_LONGNAME": "false",
                "RABBITMQ_NODE_PORT": str(node.amqp_port),
                "RABBITMQ_DIST_PORT": str(node.dist_port),
                "RABBITMQ_MNESIA_BASE": str(node.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(node.base / "log"),
                "RABBITMQ_CONFIG_FILE": str(node.base / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.base / "advanced.config"),
                "RABBITMQ_CONF_ENV_FILE": str(node.base / "rabbitmq-env.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.base / "enabled_plugins"),
                "RABBITMQ_PLUGINS_EXPAND_DIR": str(node.base / "plugins-expand"),
                "RABBITMQ_PID_FILE": str(node.base / "rabbit.pid"),
                # two shared cores: schedulers must not spin waiting for work
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                    "+sbwt none +sbwtdcpu none +sbwtdio none"}

    def _server(self) -> str:
        return str(SBIN / "rabbitmq-server") if (SBIN / "rabbitmq-server").exists() \
            else "rabbitmq-server"

    def ctl(self, node: Node, *args: str, timeout: float = 60.0) -> str:
        ctl = str(SBIN / "rabbitmqctl") if (SBIN / "rabbitmqctl").exists() else "rabbitmqctl"
        r = subprocess.run([ctl, "-n", node.name, *args], env=self.env(node),
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def start_node(self, node: Node) -> None:
        with open(node.base / "server.log", "ab") as log:
            node.proc = subprocess.Popen([self._server()], env=self.env(node),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         cwd=node.base,  # crash dumps land there too
                                         start_new_session=True)

    def wait_node(self, node: Node, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc is not None and node.proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited:\n"
                                   + (node.base / "server.log").read_text()[-3000:])
            try:
                self.ctl(node, "await_startup", timeout=30)
                if broker_answers("127.0.0.1", node.mqtt_port, timeout=1.0):
                    return
            except (RuntimeError, subprocess.TimeoutExpired):
                time.sleep(0.5)
        raise TimeoutError(f"{node.name} did not start:\n"
                           + (node.base / "server.log").read_text()[-3000:])

    def start(self) -> RabbitCluster:
        """The first node alone, then the others, which find it and join: booted all at once,
        classic peer discovery can race (seen: the first node's MQTT client-id registry never
        became available, "client ID registration timed out"). Stopped again if it fails, so
        no node outlives the test."""
        try:
            first, *rest = self.nodes
            self.start_node(first)
            self.wait_node(first)
            for n in rest:
                self.start_node(n)
            for n in rest:
                self.wait_node(n)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.running_nodes(first) >= {n.name for n in self.nodes}:
                    return self
                time.sleep(0.5)
            raise TimeoutError("the nodes did not form one cluster: "
                               + self.ctl(first, "cluster_status"))
        except BaseException:
            self.stop()
            raise

    def running_nodes(self, via: Node) -> set[str]:
        import json

        out = json.loads(self.ctl(via, "cluster_status", "--formatter", "json"))
        return set(out.get("running_nodes", []))

    def stop_node(self, node: Node) -> None:
        """A clean stop of one node (its MQTT and AMQP clients are disconnected)."""
        if node.proc is None:
            return
        try:
            self.ctl(node, "stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            node.proc.kill()
        try:
            node.proc.wait(30)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
        node.proc = None

    def restart_node(self, node: Node) -> None:
        self.start_node(node)
        self.wait_node(node)

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self.ctl(n, "shutdown", timeout=30)  # else killed below
            if n.proc is not None:
                if n.proc.poll() is None:
                    n.proc.kill()
                n.proc.wait()
                n.proc = None
        # epmd (shared) forgets a node once its connection closes; nothing else is left


if __name__ == "__main__":  # a quick manual check: python -m tests.cluster.rabbit DIR
    import sys

    c = RabbitCluster(Path(sys.argv[1]))
    t = time.monotonic()
    c.start()
    print("up in", round(time.monotonic() - t, 1), "s", [(n.name, n.amqp_port, n.mqtt_port)
                                                          for n in c.nodes])
    c.stop()
