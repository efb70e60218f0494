"""Collector ingest throughput vs a bare paho subscriber that only decodes JSON, same run.

Both consumers drain the same backlog: N devices × C cycles of one 50-sample metrics message,
published at QoS 1 into a private Mosquitto while the consumer's persistent session is
offline; the clock runs from reconnect to the last message handled. The collector's figure
includes decoding, rule evaluation (the default pack plus 50 rules on the synthetic metrics) and
storage (one SQLite transaction per batch); the subscriber's figure is paho + json.loads only
(measured before fieldwatch existed: about 544,000 samples/s, NOTES.md).

    python bench/ingest.py [--devices 1000] [--cycles 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from _servers import Mosquitto
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.service import Collector

from fieldwatch import wire
from fieldwatch.cli.up import default_rules_dir
from fieldwatch.config import BrokerConfig

SAMPLES = 50


def payloads(devices: int, cycles: int) -> list[tuple[str, bytes]]:
    out = []
    t0 = time.time() - cycles * 10
    for c in range(cycles):
        for d in range(devices):
            samples = [wire.Sample("cpu.percent", 20.0 + d % 7),
                       wire.Sample("mem.used_percent", 50.0 + c % 3),
                       wire.Sample("disk.used_percent", 60.0, {"mount": "/"})]
            samples += [wire.Sample(f"synthetic.m{i}", float((d + c + i) % 100), {"unit": "1"})
                        for i in range(SAMPLES - len(samples))]
            msg = wire.Metrics(device=f"dev-{d}", site="bench", seq=c + 1, ts=t0 + c * 10,
                               samples=samples, agent="bench")
            out.append((wire.topic("bench", f"dev-{d}", "metrics"), wire.encode(msg)))
    return out


def publish_all(port: int, messages: list[tuple[str, bytes]]) -> None:
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(topic, body, qos=1) for topic, body in messages]
    for info in infos:
        info.wait_for_publish(60)
    pub.loop_stop()
    pub.disconnect()


def bare_subscriber(port: int, messages: list[tuple[str, bytes]]) -> float:
    n = len(messages)
    done = threading.Event()
    state = {"count": 0, "samples": 0, "first": 0.0, "last": 0.0}

    def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
        if state["count"] == 0:
            state["first"] = time.perf_counter()
        state["samples"] += len(json.loads(msg.payload)["samples"])
        state["count"] += 1
        if state["count"] == n:
            state["last"] = time.perf_counter()
            done.set()

    def session(start: bool) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare",
                        clean_session=False)
        c.on_message = on_message
        c.connect("127.0.0.1", port)
        c.subscribe(wire.topic("+", "+", "metrics"), qos=1)
        c.loop_start()
        if not start:
            time.sleep(0.3)
            c.loop_stop()
            c.disconnect()
        return c

    session(start=False)  # create the persistent session, then go offline
    publish_all(port, messages)
    t0 = time.perf_counter()
    c = session(start=True)
    done.wait(300)
    c.loop_stop()
    c.disconnect()
    return state["samples"] / (state["last"] - t0)


def synthetic_rules(path: Path) -> None:
    lines = ["rules:"]
    for i in range(SAMPLES):
        lines.append(f"  - {{name: synth_{i}, metric: synthetic.m{i}, when: value > 98, "
                     f"for: 1m, severity: P3, ticket: {{title: \"m{i} on {{device}}\"}}}}")
    path.write_text("\n".join(lines) + "\n")


def collector_rate(root: Path, port: int, messages: list[tuple[str, bytes]]) -> dict[str, float]:
    synthetic_rules(root / "synthetic.yaml")
    cfg = CollectorConfig(broker=BrokerConfig(port=port), client_id="bench-collector",
                          rules=[default_rules_dir(), root / "synthetic.yaml"],
                          db=f"sqlite:///{root / 'fw.db'}")
    first = Collector(cfg)  # create the persistent session, then go offline
    first.start()
    deadline = time.monotonic() + 10
    while not first.ingest.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop()
    publish_all(port, messages)
    collector = Collector(cfg)
    t0 = time.perf_counter()
    collector.start()
    n = len(messages)
    limit = time.monotonic() + 300
    while collector.stats.get("stored_total") < n and time.monotonic() < limit:
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    samples = collector.stats.get("samples_total")
    collector.stop()
    return {"samples_per_s": samples / elapsed, "messages": collector.stats.get("stored_total"),
            "seconds": elapsed}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=20)
    args = ap.parse_args()
    messages = payloads(args.devices, args.cycles)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto", persistence=False).start()
        try:
            bare = bare_subscriber(broker.port, messages)
            coll = collector_rate(root, broker.port, messages)
        finally:
            broker.stop()
    print(json.dumps({
        "bench": "ingest", "devices": args.devices, "cycles": args.cycles,
        "messages": len(messages), "samples_per_message": SAMPLES,
        "collector_samples_per_s": round(coll["samples_per_s"]),
        "collector_messages_stored": coll["messages"],
        "collector_seconds": round(coll["seconds"], 2),
        "bare_paho_json_samples_per_s": round(bare),
        "collector_vs_bare": round(coll["samples_per_s"] / bare, 3),
    }))


if __name__ == "__main__":
    main()
