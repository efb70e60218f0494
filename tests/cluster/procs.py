"""Cluster-mode pieces for tests and bench/cluster.py: collectors as processes
(`fieldwatch collector run --transport amqp`), a load generator that moves to another node when
its node goes, and reading which partitions each collector consumed when (from its log)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pika

from tests.cluster.rabbit import RabbitCluster
from tests.e2e.procs import Proc, wait_for, write_yaml
from tests.faults.harness import Load, rules_dir

PARTITIONS = 8
PARTITION_LINE = re.compile(r"consuming partition (\S+) \(first message at=([0-9.]+)\)")


def amqp_section(rabbit: RabbitCluster, first: int = 0) -> dict[str, object]:
    """Every node, starting from `first` (collectors spread over the nodes)."""
    nodes = rabbit.nodes[first:] + rabbit.nodes[:first]
    return {"urls": [f"amqp://127.0.0.1:{n.amqp_port}/%2F" for n in nodes],
            "partitions": PARTITIONS, "reconnect": "200ms", "heartbeat": "5s"}


def setup_topology(tmp: Path, rabbit: RabbitCluster) -> None:
    """`fieldwatch cluster setup` (twice: it is idempotent), then empty every queue so a
    test sees only its own messages."""
    cfg = write_yaml(tmp / "setup.yaml", {"amqp": amqp_section(rabbit)})
    for _ in range(2):
        subprocess.run([sys.executable, "-m", "fieldwatch.cli", "cluster", "setup", "--config",
                        str(cfg)], check=True, capture_output=True, timeout=60)
    from fieldwatch.collector.cluster.topology import topology

    conn = pika.BlockingConnection(pika.URLParameters(rabbit.nodes[0].amqp_url))
    ch = conn.channel()
    for q in topology(PARTITIONS).queues:
        ch.queue_purge(q.name)
    conn.close()


class ClusterCollector:
    def __init__(self, tmp: Path, rabbit: RabbitCluster, db: str, name: str,
                 first_node: int = 0) -> None:
        self.tmp, self.name = tmp, name
        self.cfg = write_yaml(tmp / f"{name}.yaml", {
            "amqp": amqp_section(rabbit, first_node), "client_id": f"fw-{name}",
            "rules": [str(rules_dir(tmp))], "db": db, "batch_wait": "10ms",
            "stop_timeout": "2s"})
        self.proc = Proc(["collector", "run", "--transport", "amqp", "--config",
                          str(self.cfg), "--http-port", "0"], tmp / f"{name}.log")
        self.base = ""

    def ready(self, timeout: float = 60.0) -> ClusterCollector:
        self.base = self.proc.wait_output(r"HTTP API on (http://\S+)/", timeout).group(1)
        wait_for(lambda: httpx.get(f"{self.base}/healthz").json()["mqtt_connected"], timeout)
        return self

    def kill(self) -> float:
        """kill -9; returns when (wall clock) it was sent."""
        at = time.time()
        self.proc.proc.send_signal(signal.SIGKILL)
        self.proc.proc.wait(10)
        return at

    def stop(self) -> None:
        if self.proc.proc.poll() is None:
            self.proc.stop(signal.SIGTERM, 30)

    def claims(self) -> dict[str, float]:
        """partition → when this collector last began consuming it (from its log)."""
        return {m.group(1): float(m.group(2))
                for m in PARTITION_LINE.finditer(self.proc.log.read_text())}

    def partitions_after(self, t: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in PARTITION_LINE.finditer(self.proc.log.read_text()):
            at = float(m.group(2))
            if at >= t:
                out.setdefault(m.group(1), at)
        return out


def holders(cs: list[ClusterCollector]) -> dict[str, str]:
    """partition → the collector that began consuming it last (its holder now)."""
    out: dict[str, tuple[float, str]] = {}
    for c in cs:
        for p, at in c.claims().items():
            if p not in out or at > out[p][0]:
                out[p] = (at, c.name)
    return {p: name for p, (_, name) in out.items()}


def balanced(cs: list[ClusterCollector], partitions: int = PARTITIONS) -> bool:
    """Every partition held, and no collector holding more than its share."""
    held = holders(cs)
    counts = [list(held.values()).count(c.name) for c in cs]
    return len(held) == partitions and max(counts) <= -(-partitions // len(cs))


class NodeHoppingLoad(Load):
    """The fault harness's load over the MQTT plugin, moving to the next node's MQTT port
    whenever its connection goes (as agents behind a list of brokers or a load balancer);
    paho resends its unacknowledged QoS 1 messages there."""

    def __init__(self, rabbit: RabbitCluster, **kw: object) -> None:
        self.ports = [n.mqtt_port for n in rabbit.nodes]
        super().__init__(self.ports[0], **kw)  # type: ignore[arg-type]
        self.hops = 0
        self.client.on_disconnect = self._hop
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)

    def _run(self) -> None:
        """As Load's, but what was published while between nodes counts as sent once paho
        got it out after the reconnect (its wait_for_publish raises for those at once)."""
        infos = self._publish_all()
        deadline = time.monotonic() + 60
        # `_published`: is_published() raises for a message queued while disconnected, which
        # paho still sends after the reconnect
        while time.monotonic() < deadline and not all(i._published for i in infos):
            time.sleep(0.1)
        self.done.set()

    def _hop(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
             properties: object) -> None:
        if self.done.is_set():
            return  # the load's own disconnect at the end
        self.hops += 1
        # paho's `port` setter refuses while the socket is not yet marked closed, and an
        # exception here would end its network thread: set what its reconnect reads
        client._port = self.ports[self.hops % len(self.ports)]
