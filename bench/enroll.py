"""Enrollment: how long from `fieldwatch devices enroll` to the device's first metric at the
collector, and what 1,000 enrollments cost, against the shipped production Mosquitto config
(dynamic security, TLS) and the collector's HTTPS route.

- enroll to first metric (goal < 5 s): `fieldwatch devices enroll` (a process), then on the
  "device" `fieldwatch agent enroll` and `fieldwatch agent run` (processes, with the written
  config as is), until the collector's subscriber has the first metrics message; ratio to
  the 5 s goal
- 1,000 enrollments: token issued + HTTPS exchange (account created through the plugin)
  each, in a loop; peer: the same number of bare provisioning calls to the plugin on a fresh
  broker of its own (no token, no HTTP, no database), so the ratio is what the token and the
  route add. Mosquitto 2.0.11's plugin rewrites its whole JSON file on every change, so the
  cost per account grows with the count: the first and last 100 are shown apart

    python bench/enroll.py [--trials 5] [--count 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _servers  # noqa: F401  (repo root on sys.path)
import httpx
from fieldwatch.collector.enroll.acl import DeviceAcl
from fieldwatch.collector.enroll.routes import enroll_routes
from fieldwatch.collector.enroll.service import Endpoint, Enrollment
from fieldwatch.collector.enroll.store import EnrollStore
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.accounts.throttle import Throttle
from fieldwatch.collector.web.api.app import HttpServer, make_app

from fieldwatch import signing, wire
from fieldwatch.clock import SystemClock
from tests.broker.deploy import Client, stage

GOAL = 5.0
FW = [sys.executable, "-m", "fieldwatch"]


def site(tmp: Path):  # type: ignore[no-untyped-def]
    broker = stage(tmp / "mosquitto", {"collector": "c-pw"}, variant="dynsec").start()
    db = tmp / "fieldwatch.db"
    engine = open_engine(f"sqlite:///{db}")
    _, pub = signing.generate(tmp / "keys")
    enrollment = Enrollment(EnrollStore(engine, SystemClock()), broker.provisioner(),
                            Endpoint("127.0.0.1", broker.port, broker.ca.read_text(),
                                     pub.read_text()))
    app = make_app(Store(engine), Stats())
    app.router.routes.extend(enroll_routes(enrollment, Stats(),
                                           Throttle(SystemClock(), 10**6, 600)))
    certs = broker.dir / "certs"
    server = HttpServer(app, port=0, tls_cert=str(certs / "broker.pem"),
                        tls_key=str(certs / "broker.key"))
    server.start()
    return broker, db, enrollment, server


def to_first_metric(tmp: Path, broker, db: Path, server: HttpServer, n: int  # type: ignore[no-untyped-def]
                    ) -> dict[str, float]:
    device = f"bench-{n}"
    collector = Client(broker, "collector", "c-pw", f"collector-{n}").connect()
    collector.subscribe(wire.topic("hq", device, "metrics"))
    conf = tmp / device / "agent.yaml"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    out = subprocess.run([*FW, "devices", "enroll", device, "--site", "hq", "--db", str(db),
                          "--json"], check=True, capture_output=True, text=True, env=env)
    token = json.loads(out.stdout)[0]["token"]
    issued = time.perf_counter()
    subprocess.run([*FW, "agent", "enroll", "--collector", server.url, "--token", token,
                    "--ca", str(broker.ca), "--config", str(conf), "--state-dir",
                    str(tmp / device / "state")], check=True, capture_output=True, env=env)
    enrolled = time.perf_counter()
    agent = subprocess.Popen([*FW, "agent", "run", "--config", str(conf)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not collector.got:
            if time.monotonic() > deadline or agent.poll() is not None:
                raise RuntimeError("no first metric")
            time.sleep(0.005)
        done = time.perf_counter()
        return {"total": done - started, "devices_enroll": issued - started,
                "agent_enroll": enrolled - issued, "agent_run_to_first_metric": done - enrolled}
    finally:
        agent.terminate()
        agent.wait(10)
        collector.close()


def _split(times: list[float]) -> dict[str, float]:
    n = len(times)
    head, tail = times[:min(100, n)], times[-min(100, n):]
    return {"seconds": round(sum(times), 2),
            "per_enrollment_ms": round(sum(times) / n * 1000, 1),
            "first_100_ms_each": round(statistics.mean(head) * 1000, 1),
            "last_100_ms_each": round(statistics.mean(tail) * 1000, 1)}


def many(enrollment: Enrollment, server: HttpServer, ca: Path, count: int) -> dict[str, float]:
    times = []
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as h:
        for i in range(count):
            t = time.perf_counter()
            token = enrollment.enroll(f"many-{i:05d}", "plant")
            r = h.post(server.url + "api/v1/enroll", json={"token": token})
            r.raise_for_status()
            times.append(time.perf_counter() - t)
    return _split(times)


def peer(tmp: Path, count: int) -> dict[str, float]:
    broker = stage(tmp / "peer-mosquitto", {}, variant="dynsec").start()
    p = broker.provisioner()
    times = []
    try:
        for i in range(count):
            t = time.perf_counter()
            p.provision(f"peer/d-{i:05d}~1", "pw", DeviceAcl("peer", f"d-{i:05d}"))
            times.append(time.perf_counter() - t)
    finally:
        p.close()
        broker.stop()
    return _split(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--count", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-enroll-"))
    broker, db, enrollment, server = site(tmp)
    try:
        runs = [to_first_metric(tmp, broker, db, server, n) for n in range(args.trials)]
        totals = [r["total"] for r in runs]
        result: dict[str, object] = {
            "enroll_to_first_metric_s": {
                "median": round(statistics.median(totals), 2), "max": round(max(totals), 2),
                "trials": args.trials, "goal": GOAL,
                "ratio_to_goal": round(statistics.median(totals) / GOAL, 2),
                "median_phases": {k: round(statistics.median(r[k] for r in runs), 2)
                                  for k in runs[0] if k != "total"}},
        }
        full = many(enrollment, server, broker.ca, args.count)
        result["broker_accounts"] = len(enrollment.provisioner.usernames())
        bare = peer(tmp, args.count)
        result[f"enrollments_{args.count}"] = {
            **full, "peer_provision_only": bare,
            "ratio_to_peer": round(full["seconds"] / bare["seconds"], 2)}
        print(json.dumps(result, indent=2))
    finally:
        server.stop()
        enrollment.provisioner.close()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
