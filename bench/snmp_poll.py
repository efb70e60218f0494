"""SNMP polling figures, one run, JSON on stdout.

1. OIDs/s walking mib-2 of a private net-snmp snmpd: fieldwatch (pysnmp, GETBULK x50, no MIB
   lookups) vs net-snmp's `snmpbulkwalk -Cr50` (the peer); median of --reps runs; ratio.
2. Wall time (and our CPU time) to poll N snmpsim devices x ~30 OIDs (system + if-mib) with the
   agent's poller, N in --sizes; then the largest N again with one dead address added, which
   may add no more than its own timeout.
Targets (issue 5): >= 10,000 OIDs/s walking; 1,000 devices in <= 15 s on one core.

    python bench/snmp_poll.py [--reps 3] [--sizes 100,500,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fieldwatch.agent.snmp.client import SnmpClient  # noqa: E402
from fieldwatch.agent.snmp.config import SnmpConfig  # noqa: E402
from fieldwatch.agent.snmp.poller import SnmpPoller  # noqa: E402

from tests.snmp.agents import (  # noqa: E402
    COMMUNITY,
    Snmpd,
    Snmpsim,
    free_udp_port,
    switch_records,
    write_snmprec,
)

MIB2 = (1, 3, 6, 1, 2, 1)
DEAD_TIMEOUT = 2.0


async def _walks(port: int, reps: int) -> list[tuple[int, float]]:
    target = SnmpConfig.model_validate({"targets": [{
        "device": "bench", "host": "127.0.0.1", "port": port, "community": COMMUNITY}]}).targets[0]
    client = SnmpClient()
    try:
        session = await client.session(target, 5.0, 1)
        await session.walk(MIB2, 50)  # warm-up: engine and caches
        out = []
        for _ in range(reps):
            t = time.perf_counter()
            rows = await session.walk(MIB2, 50)
            out.append((len(rows), time.perf_counter() - t))
        return out
    finally:
        client.close()


def netsnmp_walks(port: int, reps: int) -> list[tuple[int, float]]:
    cmd = ["snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-On", "-t", "5", "-r", "1", "-Cr50",
           f"127.0.0.1:{port}", ".1.3.6.1.2.1"]
    env = {**os.environ, "MIBS": ""}
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm-up
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, check=True, env=env, text=True)
        dt = time.perf_counter() - t
        out.append((sum(1 for line in r.stdout.splitlines() if line.startswith(".")), dt))
    return out


def rate(runs: list[tuple[int, float]]) -> dict[str, object]:
    rates = [n / dt for n, dt in runs]
    return {"oids": runs[-1][0], "oids_per_s": round(statistics.median(rates)),
            "runs": [round(r) for r in rates]}


async def _poll(port: int, n: int, dead: bool) -> dict[str, object]:
    targets: list[dict[str, object]] = [
        {"device": f"d{i:04d}", "host": "127.0.0.1", "port": port, "community": f"d{i:04d}",
         "profiles": ["system", "if-mib"]} for i in range(n)]
    if dead:
        targets.append({"device": "dead", "host": "127.0.0.1", "port": free_udp_port(),
                        "profiles": ["system", "if-mib"], "timeout": DEAD_TIMEOUT, "retries": 0})
    cfg = SnmpConfig.model_validate({"targets": targets, "timeout": "5s", "retries": 1,
                                     "concurrency": 64})
    sent = [0]
    poller = SnmpPoller(cfg, "bench", lambda s, d, k, p: sent.__setitem__(0, sent[0] + 1))
    await poller.open()
    try:
        cpu, t = time.process_time(), time.perf_counter()
        results = await poller.poll_all()
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    finally:
        poller.close()
    live = [r for r in results if r.device != "dead"]
    values = sum(len(r.samples) for r in live)
    return {"devices": n, "dead": dead, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "ok": sum(1 for r in live if r.error is None), "samples": values,
            "samples_per_device": round(values / max(1, len(live)), 1),
            "requests": sum(st.session.requests for st in poller.targets if st.session),
            "published": sent[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="100,500,1000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="fw-snmp-bench-"))
    out: dict[str, object] = {"bench": "snmp_poll", "cpus": os.cpu_count()}

    snmpd = Snmpd(work / "snmpd").start()
    try:
        ours = rate(asyncio.run(_walks(snmpd.port, args.reps)))
        peer = rate(netsnmp_walks(snmpd.port, args.reps))
    finally:
        snmpd.stop()
    out["walk_mib2"] = {"fieldwatch": ours, "snmpbulkwalk": peer,
                        "ratio_fieldwatch_to_netsnmp": round(
                            int(ours["oids_per_s"]) / int(peer["oids_per_s"]), 3),
                        "target_oids_per_s": 10_000,
                        "meets_target": int(ours["oids_per_s"]) >= 10_000}

    switch = write_snmprec(work / "switch.src", switch_records())
    t = time.perf_counter()
    sim = Snmpsim(work / "sim", {f"d{i:04d}": switch for i in range(max(sizes))}).start(600)
    out["snmpsim_start_s"] = round(time.perf_counter() - t, 1)
    try:
        polls = [asyncio.run(_poll(sim.port, n, dead=False)) for n in sizes]
        with_dead = asyncio.run(_poll(sim.port, max(sizes), dead=True))
    finally:
        sim.stop()
    biggest = polls[-1]
    extra = float(with_dead["wall_s"]) - float(biggest["wall_s"])  # type: ignore[arg-type]
    out["poll"] = polls
    out["poll_with_one_dead"] = {**with_dead, "dead_timeout_s": DEAD_TIMEOUT,
                                 "extra_wall_s": round(extra, 3),
                                 "extra_within_timeout": extra <= DEAD_TIMEOUT}
    out["target_1000_devices_s"] = 15.0
    out["meets_1000_target"] = any(p["devices"] >= 1000 and float(p["wall_s"]) <= 15.0  # type: ignore[arg-type]
                                   for p in polls)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
