"""Collector ingest throughput vs a bare paho subscriber that only decodes JSON, same run.

Both consumers drain the same backlog: N devices × C cycles of one 50-sample metrics message,
published at QoS 1 into a private Mosquitto while the consumer's persistent session is
offline; the clock runs from reconnect to the last message handled. The collector's figure
includes decoding, rule evaluation (the default pack plus 50 rules on the synthetic metrics) and
storage (one SQLite transaction per batch); the subscriber's figure is paho + json.loads only
(measured before fieldwatch existed: about 544,000 samples/s, NOTES.md).

    python bench/ingest.py [--devices 1000] [--cycles 20] [--ack both|receive|commit]
        [--inflight 1000] [--rounds 1]

`--ack`: `commit` is the collector as shipped, acknowledging each message once its batch
committed (issue 15), with the broker's inflight window (`max_inflight_messages`) at
`--inflight`, and queueing payloads, decoded again as the worker takes them (issue 18);
`receive` is the collector before: acknowledged as `on_message` returned, decoded messages
queued; `both`
(default) runs the two alternately in one run, `--rounds` times, so they share the machine's
load. The broker's queue is sized for the backlog either way.
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


def collector_rate(root: Path, port: int, messages: list[tuple[str, bytes]],
                   after_commit: bool = True) -> dict[str, float]:
    synthetic_rules(root / "synthetic.yaml")
    db = root / "fw.db"
    for leftover in root.glob("fw.db*"):  # each run starts from an empty store
        leftover.unlink()
    cfg = CollectorConfig(broker=BrokerConfig(port=port), client_id="bench-collector",
                          rules=[default_rules_dir(), root / "synthetic.yaml"],
                          db=f"sqlite:///{db}")
    first = Collector(cfg)  # create the persistent session, then go offline
    first.ingest.ack_after_commit = after_commit
    first.start()
    deadline = time.monotonic() + 10
    while not first.ingest.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop()
    publish_all(port, messages)
    collector = Collector(cfg)
    collector.ingest.ack_after_commit = after_commit
    if not after_commit:  # the collector before issues 15/18: decoded messages queued
        collector.queue.pack = collector.queue.unpack = None  # type: ignore[attr-defined]
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
    ap.add_argument("--ack", choices=("both", "receive", "commit"), default="both")
    ap.add_argument("--inflight", type=int, default=1000,
                    help="the broker's max_inflight_messages (shipped config: 1000)")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    messages = payloads(args.devices, args.cycles)
    modes = {"both": ["receive", "commit"], "receive": ["receive"], "commit": ["commit"]}
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes[args.ack]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto", persistence=False,
                           inflight=args.inflight).start()
        try:
            bare = bare_subscriber(broker.port, messages)
            for _ in range(args.rounds):
                for mode in runs:
                    runs[mode].append(collector_rate(root, broker.port, messages,
                                                     after_commit=mode == "commit"))
        finally:
            broker.stop()
    out: dict[str, object] = {
        "bench": "ingest", "devices": args.devices, "cycles": args.cycles,
        "messages": len(messages), "samples_per_message": SAMPLES,
        "broker_max_inflight": args.inflight,
        "bare_paho_json_samples_per_s": round(bare)}
    for mode, results in runs.items():
        best = max(results, key=lambda r: r["samples_per_s"])
        prefix = "collector" if mode == "commit" else "collector_ack_on_receive"
        out[f"{prefix}_samples_per_s"] = round(best["samples_per_s"])
        out[f"{prefix}_rounds_samples_per_s"] = [round(r["samples_per_s"]) for r in results]
        out[f"{prefix}_messages_stored"] = best["messages"]
        out[f"{prefix}_seconds"] = round(best["seconds"], 2)
        out[f"{prefix}_vs_bare"] = round(best["samples_per_s"] / bare, 3)
    if len(runs) == 2:
        out["ack_after_commit_vs_on_receive"] = round(
            out["collector_samples_per_s"]  # type: ignore[operator]
            / out["collector_ack_on_receive_samples_per_s"], 3)  # type: ignore[operator]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
