"""Outbox delivery figures, same run, against a local webhook receiver (its own process):

1. deliveries/s: N queued ticket changes drained by the outbox worker (SQLite, default
   concurrency), against the peer: the same number of bare httpx POSTs to the same receiver
   from one keep-alive client at the same concurrency (the HTTP path alone, no database).
2. change → delivery delay p50/p99 while the collector ingests at full rate: a collector
   (in-process, private Mosquitto, default rule pack) drains a publisher that never stops,
   while ticket changes are written at a steady rate through the store; the receiver stamps
   arrival, the change carries its commit time.

    python bench/outbox.py [--changes 2000] [--seconds 10] [--rate 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from _servers import Mosquitto
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.desks import outbox, webhook
from fieldwatch.collector.desks.config import IntegrationsConfig, RetryPolicy, WebhookDesk
from fieldwatch.collector.service import Collector
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.tickets.alerts import TicketChange

from fieldwatch import wire
from fieldwatch.broker import free_port
from fieldwatch.cli.up import default_rules_dir
from fieldwatch.clock import SystemClock
from fieldwatch.config import BrokerConfig


def receiver(port: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    """A webhook receiver (raw ASGI on uvicorn): answers 200, keeps (arrival, change time)."""
    import uvicorn

    seen: list[tuple[float, float]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        if scope["method"] == "POST":
            now = time.time()
            seen.append((now, float(json.loads(body).get("event", {}).get("at") or 0.0)))
            data = b"{}"
        else:
            data = json.dumps(seen).encode()
            seen.clear()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    ready.set()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def change(fp: str, ts: float) -> TicketChange:
    return TicketChange(kind="fire", fingerprint=fp, rule="bench", site="bench",
                        device=f"dev-{fp}", labels={}, severity="P2", title=f"bench {fp}",
                        description="", team=None, value=1.0, first_ts=ts, last_ts=ts)


def drained(url: str) -> list[tuple[float, float]]:
    return [tuple(x) for x in httpx.get(url, timeout=30).json()]  # type: ignore[misc]


def throughput(root: Path, url: str, n: int) -> dict[str, float]:
    sample = webhook.request(url, b"k", _sample_change())
    conc = IntegrationsConfig().concurrency
    with httpx.Client() as client, ThreadPoolExecutor(conc) as pool:
        t0 = time.perf_counter()
        list(pool.map(lambda _: client.post(url, content=sample.content,
                                            headers=dict(sample.headers)), range(n)))
        peer = n / (time.perf_counter() - t0)
    drained(url)
    store = Store(open_engine(f"sqlite:///{root / 'throughput.db'}"))
    cfg = IntegrationsConfig()
    outbox.register_desks(store.engine, "bench", [WebhookDesk(type="webhook", name="hook",
                                                              url=url)], time.time())
    now = time.time()
    for i in range(0, n, 500):
        store.write(BatchWrite(changes=[change(f"t{j}", now) for j in range(i, min(n, i + 500))]),
                    now)
    client = httpx.Client()
    worker = outbox.Worker(store.engine, {"hook": webhook.Webhook("hook", client, url, b"k")},
                           SystemClock(), RetryPolicy(), concurrency=cfg.concurrency,
                           poll=cfg.poll)
    q = outbox.Queue(store.engine)
    t0 = time.perf_counter()
    worker.start()
    while q.counts().get("hook", {}).get("delivered", 0) < n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    worker.stop()
    client.close()
    store.engine.dispose()
    got = len(drained(url))
    return {"outbox_per_s": n / elapsed, "peer_per_s": peer, "received": got}


def _sample_change():  # type: ignore[no-untyped-def]
    from fieldwatch.collector.desks.model import Change

    return Change(key="bench-1-1", reference="bench-1", action="open",
                  ticket={"id": 1, "title": "bench"}, event={"at": time.time()})


def publisher(port: int, stop: mp.Event) -> None:  # type: ignore[valid-type]
    """Publishes 50-sample metrics messages for 500 devices at QoS 1 as fast as it can."""
    msgs = []
    for d in range(500):
        samples = [wire.Sample(f"synthetic.m{i}", float(i)) for i in range(48)]
        samples += [wire.Sample("cpu.percent", 10.0), wire.Sample("mem.used_percent", 40.0)]
        msgs.append((wire.topic("bench", f"dev-{d}", "metrics"), d, samples))
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-outbox-pub")
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    seq = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        seq += 1
        infos = [pub.publish(t, wire.encode(wire.Metrics(
            device=f"dev-{d}", site="bench", seq=seq, ts=time.time(), samples=s,
            agent="bench")), qos=1) for t, d, s in msgs]
        infos[-1].wait_for_publish(30)
    pub.loop_stop()
    pub.disconnect()


def delay_under_ingest(root: Path, url: str, seconds: float, rate: float) -> dict[str, float]:
    broker = Mosquitto(root / "mosquitto", persistence=False).start()
    cfg = CollectorConfig(
        broker=BrokerConfig(port=broker.port), client_id="bench-outbox-collector",
        rules=[default_rules_dir()], db=f"sqlite:///{root / 'ingest.db'}",
        integrations=IntegrationsConfig(targets=[WebhookDesk(type="webhook", name="hook",
                                                             url=url)]))
    collector = Collector(cfg)
    collector.start()
    stop = mp.Event()
    pub = mp.Process(target=publisher, args=(broker.port, stop))
    pub.start()
    store = Store(open_engine(cfg.db, create=False))
    try:
        time.sleep(2.0)  # ingest reaches its pace
        stored0, t0 = collector.stats.get("stored_total"), time.perf_counter()
        n, next_at = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            now = time.time()
            store.write(BatchWrite(changes=[change(f"d{n}", now)]), now)
            n += 1
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
        ingest = (collector.stats.get("stored_total") - stored0) / (time.perf_counter() - t0)
        deadline = time.monotonic() + 30
        seen: list[tuple[float, float]] = []
        while len(seen) < n and time.monotonic() < deadline:
            time.sleep(0.2)
            seen += drained(url)
    finally:
        stop.set()
        pub.join(30)
        collector.stop()
        store.engine.dispose()
        broker.stop()
    delays = sorted((arrived - at) * 1000 for arrived, at in seen)
    q = statistics.quantiles(delays, n=100) if len(delays) > 1 else [0.0] * 99
    return {"changes": n, "delivered": len(delays), "p50_ms": q[49], "p99_ms": q[98],
            "max_ms": delays[-1] if delays else 0.0, "ingest_messages_per_s": ingest}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=20.0, help="ticket changes per second")
    args = ap.parse_args()
    port = free_port()
    ready = mp.Event()
    recv = mp.Process(target=receiver, args=(port, ready), daemon=True)
    recv.start()
    ready.wait(10)
    url = f"http://127.0.0.1:{port}/hook"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tp = throughput(Path(tmp), url, args.changes)
            lat = delay_under_ingest(Path(tmp), url, args.seconds, args.rate)
    finally:
        recv.terminate()
        recv.join()
    print(json.dumps({
        "bench": "outbox", "changes": args.changes,
        "outbox_deliveries_per_s": round(tp["outbox_per_s"]),
        "peer_bare_httpx_posts_per_s": round(tp["peer_per_s"]),
        "outbox_vs_peer": round(tp["outbox_per_s"] / tp["peer_per_s"], 3),
        "received": tp["received"],
        "under_ingest": {"seconds": args.seconds, "changes_per_s": args.rate,
                         "changes": lat["changes"], "delivered": lat["delivered"],
                         "delay_p50_ms": round(lat["p50_ms"], 1),
                         "delay_p99_ms": round(lat["p99_ms"], 1),
                         "delay_max_ms": round(lat["max_ms"], 1),
                         "collector_ingest_messages_per_s": round(lat["ingest_messages_per_s"])},
    }))


if __name__ == "__main__":
    main()
