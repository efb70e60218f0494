"""Rule engine throughput and memory: the pure engine (no I/O) fed 10,000 devices × 50 metrics
with 500 rules loaded. Prints JSON; target ≥ 200,000 samples/s on one core and ≤ 1 KiB per
active series.

"On one core" is measured as the process's CPU time in the engine (the engine is one thread):
on a shared 2-core machine wall time also counts other processes' turns; it is printed too
(`samples_per_s_wall`). The steady state is every cycle after the first (which creates the
series state; its rate is printed separately).

    python bench/rules_eval.py [--devices 10000] [--metrics 50] [--rules 500] [--cycles 4]

The rule mix is what a large site runs: per metric one threshold family (site- and
device-type-specific variants with label matchers, `for` and `clear`), and on a fifth of the
metrics window functions (rate, avg_over, max_over, predict_linear) and anomaly baselines.
About 1 % of readings are abnormal, so alerts do fire, pend and resolve during the run.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import tracemalloc

from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import ruleset_from_text

from fieldwatch import wire


def make_rules(n_rules: int, n_metrics: int) -> str:
    lines = ["rules:"]
    per = max(1, n_rules // n_metrics)
    k = 0
    for m in range(n_metrics):
        name = f"m{m}.value"
        windowed = m % 5 == 0
        for j in range(per):
            if k >= n_rules:
                break
            k += 1
            sel = ""
            if j % 3 == 1:
                sel = f"    site: site{j % 7}\n"
            elif j % 3 == 2:
                sel = f"    labels: {{inst: \"=~i[0-{j % 5}]\"}}\n"
            if windowed and j % 4 == 1:
                cond = "rate(5m) > 50"
            elif windowed and j % 4 == 2:
                cond = "avg_over(10m) > 95 and max_over(5m) > 99"
            elif windowed and j % 4 == 3:
                cond = "predict_linear(1h, 4h) > 150"
            elif windowed and j == 4:
                lines.append(f"  - name: r{k}\n    metric: {name}\n{sel}    anomaly: {{z: 6}}\n"
                             "    severity: P3\n    ticket: {title: \"{device} {value}\"}")
                continue
            else:
                cond = f"value > {90 + j % 9}"
            lines.append(
                f"  - name: r{k}\n    metric: {name}\n{sel}    when: {cond}\n"
                f"    for: {j % 3}m\n    clear: value < 80\n    severity: P{1 + j % 3}\n"
                "    ticket: {title: \"{device} {labels.inst} {value:.0f}\"}")
    lines.append("  - {name: offline, kind: offline, for: 1m, no_data_for: 5m, severity: P1,"
                 " ticket: {title: \"{device} offline\"}}")
    return "\n".join(lines) + "\n"


def make_cycles(devices: int, metrics: int, cycles: int, seed: int = 1):  # type: ignore[no-untyped-def]
    """One poll cycle of every device at a time (made lazily: like live traffic, a cycle's
    messages exist while they are evaluated, then go)."""
    rnd = random.Random(seed)
    names = [f"m{m}.value" for m in range(metrics)]
    labels = [{"inst": f"i{m % 4}"} for m in range(metrics)]
    for c in range(cycles):
        ts = 1_800_000_000.0 + c * 10
        batch = []
        for d in range(devices):
            samples = []
            for m in range(metrics):
                v = rnd.random() * 60 + 10
                if rnd.random() < 0.01:
                    v = 97 + rnd.random() * 10
                samples.append(wire.Sample(names[m], v, labels[m]))
            batch.append(wire.Metrics(device=f"dev{d}", site=f"site{d % 7}", seq=c + 1, ts=ts,
                                      samples=samples))
        yield batch


def run(engine: Engine, st: EngineState, cycles) -> tuple[int, int, float, float]:  # type: ignore[no-untyped-def]
    """Evaluate each cycle and tick once after it; returns (samples, transitions, CPU seconds
    and wall seconds spent in the engine, garbage collection included)."""
    transitions = 0
    n = 0
    cpu = wall = 0.0
    for batch in cycles:
        c0, w0 = time.process_time(), time.perf_counter()
        out = engine.evaluate(st, batch)
        out += engine.tick(st, batch[0].ts + 5, connected=True)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        transitions += len(out)
        n += sum(len(m.samples) for m in batch)
        del batch, out
    return n, transitions, cpu, wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--rules", type=int, default=500)
    ap.add_argument("--cycles", type=int, default=4)
    args = ap.parse_args()
    ruleset = ruleset_from_text(make_rules(args.rules, args.metrics))
    # throughput: the first cycle creates series state, later ones are the steady state;
    # Python's garbage collector runs as it would in the collector (default thresholds)
    engine, st = Engine(ruleset), EngineState()
    cycles = make_cycles(args.devices, args.metrics, args.cycles)
    gc.collect()
    first_n, _, first_cpu, _ = run(engine, st, [next(cycles)])
    n, transitions, steady_cpu, steady_wall = run(engine, st, cycles)
    open_alerts = len(st.alerts)
    del engine, st
    # memory: a fresh state measured with tracemalloc over the same input (messages freed
    # after each cycle, so what remains is the engine's state)
    engine2, st2 = Engine(ruleset), EngineState()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    run(engine2, st2, make_cycles(args.devices, args.metrics, args.cycles))
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    # series with state of their own (the shared placeholder for series no rule reads is not
    # counted, though the dict slots pointing at it are in state_bytes)
    active = sum(1 for d in st2.devices.values() for s in d.series.values() if s.rules)
    total_series = args.devices * args.metrics
    rate = n / steady_cpu
    result = {
        "bench": "rules_eval",
        "devices": args.devices, "metrics": args.metrics, "rules": len(ruleset.rules),
        "cycles": args.cycles, "samples": first_n + n,
        "samples_per_s_cpu": round(rate),
        "samples_per_s_wall": round(n / steady_wall),
        "samples_per_s_first_cycle_cpu": round(first_n / first_cpu),
        "transitions": transitions, "alerts_open_at_end": open_alerts,
        "series_total": total_series, "series_with_state": active,
        "state_bytes": used,
        "bytes_per_active_series": round(used / active) if active else 0,
        "bytes_per_series_overall": round(used / total_series),
        "target_samples_per_s": 200_000, "target_bytes_per_series": 1024,
        "ok": rate >= 200_000 and (used / max(active, 1)) <= 1024,
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
