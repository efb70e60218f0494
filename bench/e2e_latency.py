"""Publish a threshold-crossing sample → ticket row committed, over a private Mosquitto.

Prints JSON: p50/p99/max latency in ms over N trials (each trial a new device, so each opens a
new ticket), with the collector in this process (its worker thread, the real MQTT ingest and a
real SQLite file). Target (issue "Walking skeleton"): p99 < 250 ms.

    python bench/e2e_latency.py [--trials 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from _servers import Mosquitto
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.service import Collector

from fieldwatch import wire
from fieldwatch.config import BrokerConfig

RULE = """
rules:
  - {name: hot, metric: temp.celsius, when: value > 80, severity: P1,
     ticket: {title: "{device} hot"}}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto", persistence=False).start()
        (root / "rules.yaml").write_text(RULE)
        collector = Collector(CollectorConfig(
            broker=BrokerConfig(port=broker.port), rules=[root / "rules.yaml"],
            db=f"sqlite:///{root / 'fw.db'}", client_id="bench-latency"))
        collector.start()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        deadline = time.monotonic() + 10
        while not collector.ingest.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        latencies = []
        try:
            for i in range(args.trials):
                device = f"dev-{i}"
                msg = wire.Metrics(device=device, site="bench", seq=1, ts=time.time(),
                                   samples=[wire.Sample("temp.celsius", 95.0, {"sensor": "cpu"})])
                before = collector.stats.get("tickets_opened_total")
                t0 = time.perf_counter()
                pub.publish(wire.topic("bench", device, "metrics"), wire.encode(msg), qos=1)
                limit = time.monotonic() + 5
                while collector.stats.get("tickets_opened_total") == before:
                    if time.monotonic() > limit:
                        raise SystemExit(f"trial {i}: no ticket within 5 s")
                    time.sleep(0.0002)
                latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            pub.loop_stop()
            pub.disconnect()
            collector.stop()
            broker.stop()
    latencies.sort()
    print(json.dumps({
        "bench": "e2e_latency", "trials": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "max_ms": round(latencies[-1], 2),
        "target_p99_ms": 250,
        "p99_vs_target": round(latencies[int(len(latencies) * 0.99) - 1] / 250, 3),
    }))


if __name__ == "__main__":
    main()
