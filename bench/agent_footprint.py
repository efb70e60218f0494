"""Agent footprint: average RSS/PSS (MB), CPU (% of one core) and collection-cycle time of the
fieldwatch agent at a 10 s interval against a local Mosquitto, measured in the same run as the
peers installable from Debian (prometheus-node-exporter scraped every interval, collectd with
the mqtt plugin, glances exporting CSV). Prints one JSON document.

    python bench/agent_footprint.py [--duration 120] [--interval 10] [--warmup 10]

Method (as in /work/shared/baselines.md): every subject runs in the foreground, all at once,
tracked by PID with its children; after `warmup` s, RSS and PSS are sampled each second from
/proc/PID/smaps_rollup and averaged, CPU is the change of utime+stime over the window. The
agent's cycle time is its own `agent.cycle_seconds` sample, read off the broker. A peer that is
not installed is reported as missing, not a failure. Targets: RSS <= 30 MB, CPU <= 0.1 %,
cycle <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psutil
import yaml
from _servers import Mosquitto

from fieldwatch import wire
from fieldwatch.broker import free_port

TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def memory(procs: list[psutil.Process]) -> tuple[float, float]:
    rss = pss = 0
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss += int(rest.split()[0])
                elif key == "Pss":
                    pss += int(rest.split()[0])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


class Subject:
    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None,
                 scrape: str | None = None) -> None:
        self.name, self.argv, self.scrape = name, argv, scrape
        self.log = tempfile.NamedTemporaryFile(prefix=f"fw-bench-{name}-", suffix=".log",  # noqa: SIM115
                                               delete=False)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.rss: list[float] = []
        self.pss: list[float] = []
        self.cpu0 = self.cpu1 = 0.0
        self.scrapes = 0
        self.nprocs = 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def result(self, window: float) -> dict[str, Any]:
        if not self.rss:
            return {"missing": f"exited early; see {self.log.name}"}
        out = {"rss_mb": round(sum(self.rss) / len(self.rss), 1),
               "pss_mb": round(sum(self.pss) / len(self.pss), 1),
               "cpu_percent": round(100 * (self.cpu1 - self.cpu0) / window, 3),
               "cpu_resolution_percent": round(100 / TICK / window, 3),
               "processes": self.nprocs, "command": " ".join(self.argv)}
        if self.scrape:
            out["scrapes"] = self.scrapes
        return out


def start_agent(work: Path, port: int, interval: float, name: str = "fieldwatch_agent",
                **extra: Any) -> Subject:
    cfg = work / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({
        "device": name.replace("_", "-"), "site": "bench", "interval": f"{interval}s",
        "broker": {"host": "127.0.0.1", "port": port}, "state_dir": str(work / name),
        **extra}))
    # as the installed service runs it (agent/install.py)
    return Subject(name, [sys.executable, "-m", "fieldwatch.agent", "run", "--config",
                          str(cfg)])


def start_node_exporter() -> Subject | str:
    exe = shutil.which("prometheus-node-exporter")
    if exe is None:
        return "not installed (apt-get install prometheus-node-exporter)"
    port = free_port()
    return Subject("node_exporter", [exe, f"--web.listen-address=127.0.0.1:{port}"],
                   scrape=f"http://127.0.0.1:{port}/metrics")


def start_collectd(work: Path, port: int, interval: float) -> Subject | str:
    exe = shutil.which("collectd") or ("/usr/sbin/collectd"
                                       if Path("/usr/sbin/collectd").exists() else None)
    if exe is None:
        return "not installed (apt-get install collectd-core)"
    conf = work / "collectd.conf"
    plugins = ["cpu", "memory", "load", "df", "disk", "interface", "thermal", "mqtt"]
    conf.write_text(
        f'Interval {interval}\nBaseDir "{work}"\nPIDFile "{work}/collectd.pid"\n'
        'PluginDir "/usr/lib/collectd"\nTypesDB "/usr/share/collectd/types.db"\n'
        + "".join(f"LoadPlugin {p}\n" for p in plugins)
        + f'<Plugin mqtt>\n  <Publish "bench">\n    Host "127.0.0.1"\n    Port {port}\n'
        '    ClientId "collectd-bench"\n    QoS 0\n  </Publish>\n</Plugin>\n')
    return Subject("collectd", [exe, "-f", "-C", str(conf)])


def start_glances(work: Path, interval: float) -> Subject | str:
    exe = shutil.which("glances")
    if exe is None:
        return "not installed (apt-get install glances)"
    return Subject("glances", [exe, "-q", "-t", str(int(interval)), "--export", "csv",
                               "--export-csv-file", str(work / "glances.csv")])


class CycleListener:
    """The agent's own `agent.cycle_seconds`, read off the broker."""

    def __init__(self, port: int) -> None:
        self.cycles: list[float] = []
        self.messages = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(
            wire.topic("bench", "fieldwatch-agent", "metrics"), 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        msg = wire.decode(message.payload)
        if isinstance(msg, wire.Metrics):
            self.messages += 1
            self.cycles += [s.value for s in msg.samples if s.name == "agent.cycle_seconds"]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def measure(subjects: list[Subject], warmup: float, duration: float, interval: float) -> None:
    stop = threading.Event()

    def scraper(s: Subject) -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                try:
                    http.get(s.scrape).raise_for_status()  # type: ignore[arg-type]
                    s.scrapes += 1
                except httpx.HTTPError:
                    pass
                stop.wait(interval)

    threads = [threading.Thread(target=scraper, args=(s,), daemon=True)
               for s in subjects if s.scrape]
    for t in threads:
        t.start()
    time.sleep(warmup)
    start = time.monotonic()
    for s in subjects:
        s.cpu0 = cpu_seconds(tree(s.proc.pid))
    while time.monotonic() - start < duration:
        for s in subjects:
            procs = tree(s.proc.pid)
            if procs:
                s.nprocs = max(s.nprocs, len(procs))
                rss, pss = memory(procs)
                s.rss.append(rss)
                s.pss.append(pss)
        time.sleep(1.0)
    for s in subjects:
        s.cpu1 = cpu_seconds(tree(s.proc.pid))
    stop.set()
    for t in threads:
        t.join(10)


def pysnmp_imported_without_targets() -> bool:
    code = ("import sys, tempfile, pathlib\n"
            "from fieldwatch.agent.config import AgentConfig\n"
            "from fieldwatch.agent.daemon import Agent\n"
            "a = Agent(AgentConfig(state_dir=pathlib.Path(tempfile.mkdtemp())))\n"
            "print(any(m.startswith('pysnmp') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    return out == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fw-footprint-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        listener = CycleListener(broker.port)
        started: dict[str, Subject | str] = {
            "fieldwatch_agent": start_agent(work, broker.port, args.interval),
            # remote diagnostics (on by default) load `cryptography` for request signatures
            "fieldwatch_agent_diag_off": start_agent(work, broker.port, args.interval,
                                                     "fieldwatch_agent_diag_off",
                                                     diag={"enabled": False}),
            "node_exporter": start_node_exporter(),
            "collectd": start_collectd(work, broker.port, args.interval),
            "glances": start_glances(work, args.interval),
        }
        running = [s for s in started.values() if isinstance(s, Subject)]
        try:
            measure(running, args.warmup, args.duration, args.interval)
        finally:
            for s in running:
                s.stop()
            listener.stop()
            broker.stop()
    results: dict[str, Any] = {
        name: (s.result(args.duration) if isinstance(s, Subject) else {"missing": s})
        for name, s in started.items()}
    agent = results["fieldwatch_agent"]
    if listener.cycles:
        agent["cycle_ms_mean"] = round(1000 * sum(listener.cycles) / len(listener.cycles), 2)
        agent["cycle_ms_max"] = round(1000 * max(listener.cycles), 2)
        # the first cycle primes psutil and runs SMART's hourly smartctl scan
        agent["cycle_ms_each"] = [round(1000 * c, 1) for c in listener.cycles]
        agent["messages_received"] = listener.messages
    ratios = {}
    for peer in ("node_exporter", "collectd", "glances"):
        p = results[peer]
        if "rss_mb" in p and "rss_mb" in agent:
            ratios[f"agent_rss_vs_{peer}"] = round(agent["rss_mb"] / p["rss_mb"], 2)
            if p["cpu_percent"] > 0:
                ratios[f"agent_cpu_vs_{peer}"] = round(agent["cpu_percent"] / p["cpu_percent"], 2)
    targets = {
        "rss_mb_le_30": agent.get("rss_mb", 1e9) <= 30,
        "cpu_percent_le_0.1": agent.get("cpu_percent", 1e9) <= 0.1,
        "cycle_ms_le_50": agent.get("cycle_ms_max", 1e9) <= 50,
        "pysnmp_not_imported_without_targets": not pysnmp_imported_without_targets(),
    }
    print(json.dumps({
        "bench": "agent_footprint", "python": platform.python_version(),
        "cpus": os.cpu_count(), "duration_s": args.duration, "interval_s": args.interval,
        "results": results, "ratios": ratios, "targets": targets}, indent=2))


if __name__ == "__main__":
    main()
