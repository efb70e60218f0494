"""Remote-write figures, one run, against a private VictoriaMetrics (Debian `victoria-metrics`):

1. keeping up: a collector (private Mosquitto, SQLite, the default pack plus 50 synthetic rules,
   as bench/ingest.py) drains a backlog of N devices × C cycles of 50-sample messages with a
   remote-write exporter to VictoriaMetrics running beside it on the same machine. Figures: the
   collector's ingest rate (samples stored/s, from reconnect to the last message stored), the
   exporter's rate over the same start (samples accepted/s, to the last sample accepted), their
   ratio (goal: 1.0 — the exporter keeps up) and how long after the last store the last send
   came (the catch-up lag), and the CPU the exporter's threads spent per sample (its own and
   the read-ahead helper's: thread CPU clocks, so other work on a shared machine does not
   count). The collector's rate without an exporter, same backlog, is the baseline (the
   exporter shares the collector's process). `load_average_1m` says how busy the machine was.
2. the exporter alone: a second exporter (its own cursor) sends the same stored messages to a
   fresh VictoriaMetrics with nothing else running — its ceiling on this machine.
3. disk: a known data set — D devices × 50 series × K cycles at 10 s (sine-like gauges, counters,
   constants; see `known_data`) — written to a fresh VictoriaMetrics, flushed, and merged;
   VictoriaMetrics' own `vm_data_size_bytes` (data parts plus indexdb) per sample, and the
   storage directory's size on disk per sample.

    python bench/remote_write.py [--devices 1000] [--cycles 20] [--disk-devices 100]
                                 [--disk-cycles 360]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _servers import Mosquitto
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.history.exporter import Exporter
from fieldwatch.collector.history.remote_config import RemoteWriteConfig
from fieldwatch.collector.history.remote_write import Encoder, send
from fieldwatch.collector.service import Collector
from fieldwatch.collector.telemetry.stats import Stats
from ingest import SAMPLES, payloads, publish_all, synthetic_rules

from fieldwatch import wire
from fieldwatch.cli.up import default_rules_dir
from fieldwatch.clock import SystemClock
from fieldwatch.config import BrokerConfig
from tests.remote.servers import VictoriaMetrics


def thread_cpu(prefix: str) -> float:
    """CPU seconds so far of this process's live threads whose name starts with `prefix` (the
    exporter's and its read-ahead helper's)."""
    total = 0.0
    for t in threading.enumerate():
        if t.name.startswith(prefix) and t.ident is not None:
            with contextlib.suppress(OSError):  # ended meanwhile
                total += time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    return total


def wait(check, limit: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("bench step did not finish in time")
        time.sleep(0.005)


def keeping_up(root: Path, port: int, vm: VictoriaMetrics | None,
               messages: list[tuple[str, bytes]], tuning: dict[str, object] | None = None
               ) -> dict[str, float]:
    """With `vm` None: the collector alone (the baseline: bench/ingest.py's figure)."""
    synthetic_rules(root / "synthetic.yaml")
    name = "fw.db" if vm else "baseline.db"
    cfg = CollectorConfig(broker=BrokerConfig(port=port), client_id=f"bench-{name}",
                          rules=[default_rules_dir(), root / "synthetic.yaml"],
                          db=f"sqlite:///{root / name}",
                          remote_write=[RemoteWriteConfig.model_validate(
                              {"name": "vm", "url": vm.write_url, **(tuning or {})})]
                          if vm else [])
    first = Collector(cfg)  # create the persistent session and the cursor, then go offline
    first.start()
    wait(first.ingest.connected.is_set, 10)
    first.stop()
    publish_all(port, messages)
    n, samples = len(messages), len(messages) * SAMPLES
    collector = Collector(cfg)
    stats = collector.stats
    t0 = time.perf_counter()
    collector.start()
    wait(lambda: stats.get("stored_total") >= n, 600)
    stored_at = time.perf_counter() - t0
    if vm is None:
        collector.stop()
        return {"collector_alone_samples_per_s": round(samples / stored_at)}
    wait(lambda: stats.get("remote_write_samples_total", "vm") >= samples, 600)
    sent_at = time.perf_counter() - t0
    exporter_cpu = thread_cpu("remote-write-vm")
    collector.stop()
    ingest_rate, export_rate = samples / stored_at, samples / sent_at
    return {"collector_samples_per_s": round(ingest_rate),
            "remote_write_samples_per_s": round(export_rate),
            "remote_write_vs_ingest": round(export_rate / ingest_rate, 3),
            "catch_up_after_last_store_s": round(sent_at - stored_at, 2),
            "exporter_cpu_us_per_sample": round(exporter_cpu / samples * 1e6, 2),
            "rejected_samples": stats.get("remote_write_rejected_samples_total", "vm"),
            "retries": stats.get("remote_write_retries_total", "vm")}


def exporter_alone(root: Path, vm: VictoriaMetrics, samples: int) -> dict[str, float]:
    collector = Collector(CollectorConfig(db=f"sqlite:///{root / 'fw.db'}", rules=[]))
    engine = collector.store.engine
    exp = Exporter(RemoteWriteConfig(name="alone", url=vm.write_url, settle=0), engine,
                   SystemClock(), Stats())
    t0 = time.perf_counter()
    sent = requests = 0
    while True:
        r = exp.run_once()
        if r.retry:
            raise RuntimeError(r.retry)
        if r.idle:
            break
        sent, requests = sent + r.sent_samples, requests + r.requests
    elapsed = time.perf_counter() - t0
    exp.stop()
    engine.dispose()
    assert sent == samples, (sent, samples)
    return {"exporter_alone_samples_per_s": round(sent / elapsed),
            "exporter_alone_requests": requests}


def known_data(devices: int, cycles: int, t0: float) -> list[wire.Metrics]:
    """Per device and 10 s cycle: 20 slow sine-like gauges rounded to 0.1, 20 counters growing
    by a device-dependent step, 10 constants — a mix like a real agent's."""
    out = []
    for c in range(cycles):
        ts = t0 + 10 * c
        for d in range(devices):
            samples = [wire.Sample(f"gauge.g{i}", round(50 + 30 * math.sin((c + d * 7 + i) / 60),
                                                        1), {"unit": "1"}) for i in range(20)]
            samples += [wire.Sample(f"counter.c{i}_total", float((c + 1) * (d % 13 + i + 1)))
                        for i in range(20)]
            samples += [wire.Sample(f"const.k{i}", float(i)) for i in range(10)]
            out.append(wire.Metrics(device=f"dev-{d}", site="bench", seq=c + 1, ts=ts,
                                    samples=samples))
    return out


def disk(root: Path, devices: int, cycles: int) -> dict[str, float]:
    vm = VictoriaMetrics(root / "vm-disk")
    vm.start()
    try:
        msgs = known_data(devices, cycles, float(int(time.time()) - 10 * cycles))
        enc = Encoder()
        with httpx.Client(timeout=60) as client:
            for i in range(0, len(msgs), 200):  # 10,000 samples a request
                send(client, vm.write_url, enc.batch(msgs[i:i + 200]).body())
        samples = sum(len(m.samples) for m in msgs)
        vm.flush()
        wait(lambda: vm.rows() >= samples, 120)
        time.sleep(5)  # let the in-memory parts merge into files
        vm.flush()
        size = vm.disk_bytes()
        on_disk = sum(p.stat().st_size for p in (vm.dir / "data").rglob("*") if p.is_file())
        return {"disk_samples": samples, "disk_series": devices * SAMPLES,
                "vm_data_size_bytes": size, "vm_bytes_per_sample": round(size / samples, 3),
                "storage_dir_bytes": on_disk,
                "storage_dir_bytes_per_sample": round(on_disk / samples, 3)}
    finally:
        vm.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--disk-devices", type=int, default=100)
    ap.add_argument("--disk-cycles", type=int, default=360)
    args = ap.parse_args()
    messages = payloads(args.devices, args.cycles)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto", persistence=False).start()
        vm = VictoriaMetrics(root / "vm")
        vm.start()
        try:
            base = keeping_up(root, broker.port, None, messages)
            up = keeping_up(root, broker.port, vm, messages)
        finally:
            broker.stop()
            vm.stop()
        vm2 = VictoriaMetrics(root / "vm-alone")
        vm2.start()
        try:
            alone = exporter_alone(root, vm2, len(messages) * SAMPLES)
        finally:
            vm2.stop()
        space = disk(root, args.disk_devices, args.disk_cycles)
    print(json.dumps({"bench": "remote_write", "load_average_1m": round(os.getloadavg()[0], 2),
                      "devices": args.devices, "cycles": args.cycles,
                      "messages": len(messages), "samples_per_message": SAMPLES,
                      **base, **up, **alone, **space}))


if __name__ == "__main__":
    main()
