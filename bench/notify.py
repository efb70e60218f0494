"""Notification figures, same run, against a local receiver (its own process, raw ASGI on
uvicorn, answering 200 like a chat robot):

- outbox: N P1 tickets opened through the store (one `open` change each), drained by the
  outbox worker into one Apprise room channel (`json://` to the receiver): routing, template,
  Apprise send and the timeline write of every message, at the default concurrency.
- bare Apprise: the same number of `Apprise.notify()` calls to the same URL from a thread pool
  of the same size, one Apprise object per message as the channel makes (no database).

    python bench/notify.py [--notifications 500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fieldwatch.collector.desks import outbox
from fieldwatch.collector.desks.config import IntegrationsConfig, RetryPolicy
from fieldwatch.collector.notify.apprise_channel import StoreJournal, apprise_send
from fieldwatch.collector.notify.config import NotificationsConfig
from fieldwatch.collector.notify.runtime import build_channels
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.alerts import TicketChange
from fieldwatch.collector.tickets.routing import TeamsSpec

from fieldwatch.broker import free_port
from fieldwatch.clock import SystemClock


def receiver(port: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    """Counts POSTs; a GET returns the count and resets it."""
    import uvicorn

    count = [0]

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["method"] == "POST":
            count[0] += 1
            data = b'{"errcode": 0}'
        else:
            data, count[0] = json.dumps(count[0]).encode(), 0
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    ready.set()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def received(base: str) -> int:
    return int(httpx.get(base + "/count", timeout=30).json())


def ticket(i: int, ts: float) -> TicketChange:
    return TicketChange(kind="fire", fingerprint=f"n{i}", rule="bench", site="bench",
                        device=f"dev-{i}", labels={}, severity="P1", title=f"bench {i}",
                        description="", team="ops", value=1.0, first_ts=ts, last_ts=ts)


def bare(url: str, n: int, conc: int) -> float:
    apprise_send(url, "warm-up", "x")
    with ThreadPoolExecutor(conc) as pool:
        t0 = time.perf_counter()
        results = list(pool.map(lambda i: apprise_send(url, f"[P1] bench {i}", "body"),
                                range(n)))
        elapsed = time.perf_counter() - t0
    assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
    return n / elapsed


def through_outbox(root: Path, url: str, n: int, conc: int) -> float:
    teams = TeamsSpec.model_validate({"teams": {"ops": {"members": [{"name": "op"}]}}})
    store = Store(open_engine(f"sqlite:///{root / 'notify.db'}"))
    cfg = NotificationsConfig.model_validate({
        "channels": [{"name": "room", "url": url}],
        "routes": [{"match": {"severity": ["P1"], "actions": ["open"]}, "channels": ["room"]}]})
    clock = SystemClock()
    channels = build_channels(cfg, teams, StoreJournal(store), clock, Stats())
    outbox.register_desks(store.engine, "bench", channels.registrations, clock.now())
    now = clock.now()
    for i in range(0, n, 500):
        store.write(BatchWrite(changes=[ticket(j, now) for j in range(i, min(n, i + 500))]), now)
    worker = outbox.Worker(store.engine, channels.desks, clock, RetryPolicy(), concurrency=conc,
                           poll=IntegrationsConfig().poll)
    q = outbox.Queue(store.engine)
    t0 = time.perf_counter()
    worker.start()
    deadline = time.monotonic() + 600
    while q.counts().get("room", {}).get("delivered", 0) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    worker.stop()
    store.engine.dispose()
    return n / elapsed


def main() -> None:
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    ap = argparse.ArgumentParser()
    ap.add_argument("--notifications", type=int, default=500)
    args = ap.parse_args()
    n, conc = args.notifications, IntegrationsConfig().concurrency
    port = free_port()
    ready = mp.Event()
    recv = mp.Process(target=receiver, args=(port, ready), daemon=True)
    recv.start()
    ready.wait(10)
    time.sleep(0.5)
    base, url = f"http://127.0.0.1:{port}", f"json://127.0.0.1:{port}/hook"
    try:
        bare_rate = bare(url, n, conc)
        got_bare = received(base)
        with tempfile.TemporaryDirectory() as tmp:
            outbox_rate = through_outbox(Path(tmp), url, n, conc)
        got_outbox = received(base)
    finally:
        recv.terminate()
        recv.join(5)
    print(json.dumps({
        "notifications": n, "concurrency": conc,
        "outbox_notifications_per_s": round(outbox_rate, 1),
        "bare_apprise_per_s": round(bare_rate, 1),
        "outbox_vs_bare": round(outbox_rate / bare_rate, 3),
        "received": {"bare": got_bare - 1, "outbox": got_outbox},  # bare: minus the warm-up
    }, indent=2))


if __name__ == "__main__":
    main()
