"""Cluster mode figures (issue 15): a private 3-node RabbitMQ cluster on this machine, collectors
as processes (`fieldwatch collector run --transport amqp`) on one PostgreSQL store (a private
database per run), real wire-format messages published over MQTT to the rabbitmq_mqtt plugin.

- `throughput`: a backlog of D devices × C cycles of 50-sample metrics messages is published
  while no collector runs; then 1 collector (and, in a second run, 2) drains it. The rate is
  the steady one, from 20 % to 90 % of the backlog stored (the first seconds hold the
  start-up and the sharing out of the partitions). CPU seconds of the collectors and of the
  three RabbitMQ nodes over the same window give samples per collector-CPU-second (per-core
  throughput) and the broker's share of the CPU. The ratio 2 vs 1 is the figure: on 2 cores
  shared by broker, collectors and publisher, it shows what a second collector buys here.
- `failover`: 3 collectors under a steady load (the fault harness's: single-sample messages,
  every third device one fault); K times, kill -9 a collector that holds partitions and time
  until every partition it held is consumed again (its first message processed by a
  survivor, from their logs), then start a replacement. At the end the store is counted:
  (device, seq) missing or stored twice, and tickets per faulty device (must be exactly 1).

    python bench/cluster.py [--devices 400] [--cycles 50] [--kills 5] [--no-failover]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import _servers  # noqa: F401 - the repo root on sys.path
import paho.mqtt.client as mqtt
from _servers import pg_database
from fieldwatch.collector.store.db import open_engine

from fieldwatch import wire
from tests.cluster.procs import (
    ClusterCollector,
    NodeHoppingLoad,
    balanced,
    holders,
    setup_topology,
)
from tests.cluster.rabbit import RabbitCluster
from tests.e2e.procs import wait_for
from tests.faults.harness import Account, settle, stored_count

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def beam_pids(rabbit: RabbitCluster) -> list[int]:
    """The nodes' Erlang VMs (their command line does not name the node; their environment
    does)."""
    names = {f"RABBITMQ_NODENAME={n.name}".encode() for n in rabbit.nodes}
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if b"beam" not in (d / "cmdline").read_bytes()[:200]:
                continue
            env = set((d / "environ").read_bytes().split(b"\0"))
            if env & names:
                out.append(int(d.name))
    return out


def postgres_pids() -> list[int]:
    """Every PostgreSQL process of the machine (other users' backends included)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if (d / "comm").read_text().strip() == "postgres":
                    out.append(int(d.name))
    return out


def machine_busy_seconds() -> float:
    """CPU seconds spent not idle on the whole machine (all cores), from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / TICK  # minus idle and iowait


def publish_backlog(rabbit: RabbitCluster, devices: int, cycles: int) -> int:
    """D × C metrics messages of 50 samples each, QoS 1, all acknowledged by the broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-backlog")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", rabbit.nodes[0].mqtt_port)
    client.loop_start()
    infos = []
    now = time.time()
    for c in range(1, cycles + 1):
        for d in range(devices):
            samples = [wire.Sample(f"bench.metric_{k}", float(k), {"n": str(k % 5)})
                       for k in range(49)] + [wire.Sample("pump.temp_celsius", 40.0)]
            msg = wire.Metrics(device=f"dev-{d}", site="bench", seq=c, ts=now + c, samples=samples)
            infos.append(client.publish(wire.topic("bench", f"dev-{d}", "metrics"),
                                        wire.encode(msg), qos=1))
    for info in infos:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()
    return len(infos)


def throughput(tmp: Path, rabbit: RabbitCluster, n: int, devices: int, cycles: int
               ) -> dict[str, object]:
    with pg_database() as db:
        setup_topology(tmp, rabbit)
        t0 = time.monotonic()
        total = publish_backlog(rabbit, devices, cycles)
        published_s = time.monotonic() - t0
        engine = open_engine(db)  # the tables, before the collectors race to create them
        cs: list[ClusterCollector] = []
        try:
            cs = [ClusterCollector(tmp, rabbit, db, f"t{n}-c{i}", first_node=i).ready()
                  for i in range(n)]
            beams, pgs = beam_pids(rabbit), postgres_pids()
            lo, hi = int(total * 0.2), int(total * 0.9)
            marks: dict[str, tuple[float, float, float, float, float]] = {}
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and "hi" not in marks:
                stored = stored_count(engine)
                point = (time.monotonic(), cpu_seconds([c.proc.proc.pid for c in cs]),
                         cpu_seconds(beams), cpu_seconds(pgs), machine_busy_seconds())
                if stored >= lo and "lo" not in marks:
                    marks["lo"] = point
                if stored >= hi:
                    marks["hi"] = point
                time.sleep(0.05)
            wait_for(lambda: stored_count(engine) >= total, 120)
            account = Account(stored=stored_count(engine))
        finally:
            for c in cs:
                c.stop()
            engine.dispose()
    (t_lo, c_lo, b_lo, p_lo, m_lo), (t_hi, c_hi, b_hi, p_hi, m_hi) = marks["lo"], marks["hi"]
    msgs = hi - lo
    samples = msgs * 50
    collector_cpu, broker_cpu = c_hi - c_lo, b_hi - b_lo
    return {"collectors": n, "messages": total, "stored": account.stored,
            "publish_s": round(published_s, 2),
            "samples_per_s": round(samples / (t_hi - t_lo)),
            "messages_per_s": round(msgs / (t_hi - t_lo)),
            "samples_per_collector_cpu_s": round(samples / collector_cpu) if collector_cpu
            else None,
            "collector_cpu_s": round(collector_cpu, 2), "broker_cpu_s": round(broker_cpu, 2),
            "broker_cpu_share": round(broker_cpu / (broker_cpu + collector_cpu), 3),
            "collector_busy": round(collector_cpu / n / (t_hi - t_lo), 2),  # of one core each
            "postgres_cpu_s": round(p_hi - p_lo, 2),  # every backend of the machine
            "machine_busy": round((m_hi - m_lo) / (os.cpu_count() or 1) / (t_hi - t_lo), 2),
            "broker_nodes_found": len(beams),
            "wall_s": round(t_hi - t_lo, 2)}


def failover(tmp: Path, rabbit: RabbitCluster, kills: int) -> dict[str, object]:
    times: list[float] = []
    with pg_database() as db:
        setup_topology(tmp, rabbit)
        engine = open_engine(db)
        cs = [ClusterCollector(tmp, rabbit, db, f"f-c{i}", first_node=i % 3).ready()
              for i in range(3)]
        load = NodeHoppingLoad(rabbit, devices=60, cycles=60 * kills + 100,
                               interval=0.1).start()
        try:
            for k in range(kills):
                live = [c for c in cs if c.proc.proc.poll() is None]
                wait_for(lambda live=live: balanced(live), 60)
                held = holders(live)
                victim = next(c for c in live if c.name in held.values())
                lost = {p for p, name in held.items() if name == victim.name}
                killed_at = victim.kill()
                survivors = [c for c in live if c is not victim]

                def claimed(survivors=survivors, lost=lost, killed_at=killed_at
                            ) -> dict[str, float] | None:
                    got: dict[str, float] = {}
                    for c in survivors:
                        for p, at in c.partitions_after(killed_at).items():
                            if p in lost:
                                got[p] = min(at, got.get(p, at))
                    return got if set(got) == lost else None

                got = wait_for(claimed, 60)
                times.append(max(got.values()) - killed_at)
                cs.append(ClusterCollector(tmp, rabbit, db, f"f-c{3 + k}",
                                           first_node=k % 3).ready())
            load.wait(600)
            account = settle(engine, load, timeout=120)
        finally:
            for c in cs:
                c.stop()
            engine.dispose()
    return {"kills": kills, "failover_s": [round(t, 3) for t in times],
            "failover_p50_s": round(statistics.median(times), 3),
            "failover_max_s": round(max(times), 3), "goal_s": 10.0,
            "messages": load.expected, "lost": len(account.missing),
            "stored_twice": len(account.duplicated),
            "tickets_right": account.tickets == {d: 1 for d in load.expected_tickets()},
            "faulty_devices": len(load.expected_tickets())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=400)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--no-failover", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fw-bench-cluster-") as d:
        tmp = Path(d)
        rabbit = RabbitCluster(tmp / "rabbit").start()
        try:
            one = throughput(tmp, rabbit, 1, args.devices, args.cycles)
            two = throughput(tmp, rabbit, 2, args.devices, args.cycles)
            fo = None if args.no_failover else failover(tmp, rabbit, args.kills)
        finally:
            rabbit.stop()
    print(json.dumps({
        "machine_cores": os.cpu_count(), "rabbitmq_nodes": 3, "partitions": 8,
        "throughput_1": one, "throughput_2": two,
        "ratio_2_vs_1": round(two["samples_per_s"] / one["samples_per_s"], 2),  # type: ignore[operator]
        "failover": fo}, indent=2))


if __name__ == "__main__":
    main()
