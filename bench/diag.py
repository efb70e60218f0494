"""Remote diagnostics: what safety costs, measured against the bare thing in the same run.

- round trip: signed request → real Mosquitto → agent (verify, nonce fsync, consent, validate,
  run `dns_lookup localhost`, audit fsync) → result; peer: a bare MQTT echo over the same broker
- runner: `run_argv(["/bin/true"])` vs `subprocess.run(["/bin/true"])`
- drain: 100 MB through `run_argv` (kept at a 64 KiB cap) vs `subprocess.run` to /dev/null
- signing: sign + verify of a request vs raw Ed25519 sign + verify of the same bytes

    python bench/diag.py [--trials 200]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from _servers import Mosquitto
from fieldwatch.agent.diag.config import DiagConfig, RateLimit
from fieldwatch.agent.diag.handler import DiagHandler
from fieldwatch.agent.diag.runner import run_argv
from fieldwatch.agent.diag.service import DiagService

from fieldwatch import signing, wire
from fieldwatch.clock import SystemClock


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 3)


def client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311)
    # paho leaves Nagle on: small QoS 1 packets then wait for delayed ACKs (~40 ms a hop),
    # which would hide everything measured here
    c.on_socket_open = lambda cl, u, sock: sock.setsockopt(socket.IPPROTO_TCP,
                                                           socket.TCP_NODELAY, 1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def round_trips(port: int, tmp: Path, trials: int) -> dict[str, object]:
    key_path, pub = signing.generate(tmp / "keys")
    key = signing.load_private(key_path)
    cfg = DiagConfig(trusted_keys=[pub], rate_limit=RateLimit(max=trials + 10, per=3600))
    handler = DiagHandler(cfg, "dev", "site", tmp / "state", SystemClock(),
                          signing.trusted(cfg.trusted_keys))
    agent = client(port, "bench-agent")
    service = DiagService(lambda: handler, "site", "dev", lambda kind, p: agent.publish(
        wire.topic("site", "dev", kind), p, qos=1), 2, 32)
    service.attach(agent)
    agent.subscribe(service.topic, qos=1)
    echo = client(port, "bench-echo")
    echo.on_message = lambda c, u, m: c.publish("bench/pong", m.payload, qos=1)
    echo.subscribe("bench/ping", qos=1)
    got = threading.Event()
    me = client(port, "bench-requester")
    me.on_message = lambda c, u, m: got.set()
    me.subscribe([(wire.topic("site", "dev", "diag/res"), 1), ("bench/pong", 1)])
    time.sleep(0.5)  # subscriptions settle (once, before timing)
    diag, bare = [], []
    for _ in range(trials):
        got.clear()
        t0 = time.perf_counter()
        now = time.time()
        req = signing.sign(wire.DiagRequest(device="dev", site="site", id=uuid.uuid4().hex,
                                            check="dns_lookup", issued=now, expires=now + 60,
                                            nonce=uuid.uuid4().hex,
                                            args={"name": "localhost"}), key)
        me.publish(service.topic, wire.encode_diag(req), qos=1)
        assert got.wait(10)
        diag.append(time.perf_counter() - t0)
        got.clear()
        t0 = time.perf_counter()
        me.publish("bench/ping", b"x" * 300, qos=1)
        assert got.wait(10)
        bare.append(time.perf_counter() - t0)
    for c in (me, echo, agent):
        c.loop_stop()
        c.disconnect()
    service.stop()
    return {"trials": trials, "diag_ms": {"p50": pct(diag, 0.5), "p99": pct(diag, 0.99)},
            "bare_echo_ms": {"p50": pct(bare, 0.5), "p99": pct(bare, 0.99)},
            "overhead_p50_ms": round((statistics.median(diag) - statistics.median(bare)) * 1000,
                                     3)}


def runner(n: int) -> dict[str, object]:
    ours, peer = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        run_argv(["/bin/true"], 5, 1024)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run(["/bin/true"], check=True)
        peer.append(time.perf_counter() - t0)
    return {"run_argv_true_ms_p50": pct(ours, 0.5), "subprocess_run_true_ms_p50": pct(peer, 0.5)}


def drain() -> dict[str, object]:
    argv = ["/usr/bin/head", "-c", "100000000", "/dev/zero"]
    t0 = time.perf_counter()
    out = run_argv(argv, 60, 65536)
    ours = time.perf_counter() - t0
    assert out.output_bytes == 100_000_000 and len(out.output) == 65536
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    peer = time.perf_counter() - t0
    return {"run_argv_100MB_s": round(ours, 3), "run_argv_MB_per_s": round(100 / ours),
            "to_devnull_100MB_s": round(peer, 3)}


def sign_verify(n: int, tmp: Path) -> dict[str, object]:
    key = signing.load_private(signing.generate(tmp / "k2")[0])
    keys = {signing.key_id(key.public_key()): key.public_key()}
    req = wire.DiagRequest(device="dev", site="site", id="i" * 32, check="ping", issued=1.0,
                           expires=2.0, nonce="n" * 32, args={"host": "gw"})
    t0 = time.perf_counter()
    for _ in range(n):
        signing.verify(signing.sign(req, key), keys)
    ours = (time.perf_counter() - t0) / n
    data = wire.signing_bytes(req)
    t0 = time.perf_counter()
    for _ in range(n):
        key.public_key().verify(key.sign(data), data)
    raw = (time.perf_counter() - t0) / n
    return {"sign_verify_us": round(ours * 1e6, 1), "raw_ed25519_us": round(raw * 1e6, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # Nagle off on the broker too: otherwise delayed ACKs (~40 ms a hop) hide everything else
        broker = Mosquitto(tmp / "mosquitto", persistence=False,
                           extra="set_tcp_nodelay true\n").start()
        try:
            out = {"round_trip": round_trips(broker.port, tmp, args.trials),
                   "runner": runner(50), "drain": drain(),
                   "signing": sign_verify(2000, tmp)}
        finally:
            broker.stop()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
