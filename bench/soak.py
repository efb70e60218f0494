"""The collector's memory over a bounded soak (issue 18): does its RSS level off?

`fieldwatch collector run` as a process (SQLite, the default rule pack, a private Mosquitto
with the shipped inflight window), fed by D devices each publishing one metrics message of
S samples every `--interval` seconds, for `--minutes`. The collector's RSS (/proc) is sampled
every `--every` seconds; the figure is the RSS slope by least squares over each third of the
run, in MB per minute: a collector that levels off shows a last third near 0. The issue's
soak was 1,000 devices every 10 s for 10 minutes (0.8 MB/min at the end); the default here
is the same devices five times as often for 5 minutes, the same number of messages.

    python bench/soak.py [--devices 1000] [--interval 2] [--minutes 5] [--samples 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import _servers  # noqa: F401 - the repo root on sys.path
import httpx
import paho.mqtt.client as mqtt
from _servers import Mosquitto

from fieldwatch import wire
from fieldwatch.cli.up import default_rules_dir
from tests.e2e.procs import Proc, wait_for, write_yaml


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def history_jobs(base: str) -> tuple[float, float]:
    """(rolled-up, deleted) so far: the history's periodic jobs, to set beside RSS steps."""
    text = httpx.get(f"{base}/metrics").text
    sums = [0.0, 0.0]
    for line in text.splitlines():
        for i, name in enumerate(("history_rollups_total", "history_deleted_total")):
            if line.startswith(f"fieldwatch_collector_{name}"):
                sums[i] += float(line.rsplit(" ", 1)[1])
    return sums[0], sums[1]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB), in MB per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 60 * sum((t - mx) * (m - my) for t, m in points) / var if var else 0.0


def publish(port: int, devices: int, samples: int, interval: float, until: float,
            stop: threading.Event) -> int:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-load")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    seq, sent = 0, 0
    try:
        while time.monotonic() < until and not stop.is_set():
            seq += 1
            t = time.monotonic()
            for d in range(devices):
                values = [wire.Sample("cpu.percent", float((d + seq) % 60)),
                          wire.Sample("mem.used_percent", 40.0 + d % 20),
                          wire.Sample("disk.used_percent", 50.0, {"mount": "/"})]
                values += [wire.Sample(f"soak.m{i}", float((d * i + seq) % 100), {"i": str(i)})
                           for i in range(samples - len(values))]
                msg = wire.Metrics(device=f"soak-{d}", site="soak", seq=seq, ts=time.time(),
                                   samples=values, agent="soak")
                client.publish(wire.topic("soak", f"soak-{d}", "metrics"), wire.encode(msg),
                               qos=1)
                sent += 1
            stop.wait(max(0.0, interval - (time.monotonic() - t)))
    finally:
        client.loop_stop()
        client.disconnect()
    return sent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--every", type=float, default=5.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto", persistence=False).start()
        cfg = write_yaml(root / "collector.yaml", {
            "broker": {"host": "127.0.0.1", "port": broker.port}, "client_id": "soak",
            "rules": [str(default_rules_dir())], "db": f"sqlite:///{root / 'fw.db'}"})
        proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                    root / "collector.log")
        stop = threading.Event()
        try:
            base = proc.wait_output(r"HTTP API on (http://\S+)/", 60).group(1)
            wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], 30)
            t0 = time.monotonic()
            until = t0 + args.minutes * 60
            sent: list[int] = []
            load = threading.Thread(target=lambda: sent.append(publish(
                broker.port, args.devices, args.samples, args.interval, until, stop)))
            load.start()
            points: list[tuple[float, float]] = []
            jobs: list[list[float]] = []  # [s, RSS, rolled up, deleted] when the jobs did work
            last = (0.0, 0.0)
            while time.monotonic() < until:
                points.append((time.monotonic() - t0, rss_mb(proc.proc.pid)))
                done = history_jobs(base)
                if done != last:
                    jobs.append([round(points[-1][0]), round(points[-1][1], 1), *done])
                    last = done
                time.sleep(args.every)
            load.join(60)
            health = httpx.get(f"{base}/healthz").json()
        finally:
            stop.set()
            proc.stop()
            broker.stop()
    span = (until - t0) / 3
    thirds = [[p for p in points if k * span <= p[0] < (k + 1) * span] for k in range(3)]
    print(json.dumps({
        "bench": "soak", "devices": args.devices, "interval_s": args.interval,
        "minutes": args.minutes, "samples_per_message": args.samples,
        "messages_sent": sent[0] if sent else None, "queued_at_end": health["queued"],
        "rss_mb_start": round(points[0][1], 1), "rss_mb_end": round(points[-1][1], 1),
        "rss_mb_max": round(max(m for _, m in points), 1),
        "slope_mb_per_min_by_third": [round(slope(t), 3) for t in thirds],
        "history_jobs": jobs, "rss_mb_series": [round(m, 1) for _, m in points]}))


if __name__ == "__main__":
    main()
