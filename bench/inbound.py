"""Inbound webhook → ticket state change (issue 16): the collector's API (HttpGuard, the
inbound routes) on a real socket (uvicorn, in process), a store holding `--tickets` open tickets
each linked to a Jira issue, and a second desk registered so every change also writes its
outbox row. Each request is a signed `jira:issue_updated` webhook in Jira's documented shape
(tests/fixtures/inbound); the time is from sending it to the answer, which comes after the
ticket's change is committed. Acknowledge every ticket, then resolve every ticket, one request
at a time; then the same with `--clients` senders at once.

Peer: the same request to a route on the same server that only reads the body and answers
(the HTTP path alone, no signature, no database).

On a shared machine the wall-clock quantiles follow the load; the CPU time the process spent
per serial request (sender and server, one process) does not much: `cpu_ms_per_request`, for
the webhook and for the peer — their difference is the route's own work.

    python bench/inbound.py [--tickets 2000] [--clients 4] [--db URL]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fieldwatch.collector.desks import outbox  # noqa: E402
from fieldwatch.collector.desks.config import IntegrationsConfig  # noqa: E402
from fieldwatch.collector.desks.routes import add_routes, routes  # noqa: E402
from fieldwatch.collector.store.db import open_engine  # noqa: E402
from fieldwatch.collector.store.schema import desk_links  # noqa: E402
from fieldwatch.collector.store.store import BatchWrite, Store  # noqa: E402
from fieldwatch.collector.telemetry.stats import Stats  # noqa: E402
from fieldwatch.collector.tickets.alerts import TicketChange  # noqa: E402
from fieldwatch.collector.tickets.service_desk import ServiceDesk  # noqa: E402
from fieldwatch.collector.web.api.app import HttpServer, make_app  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from fieldwatch.clock import SystemClock  # noqa: E402

SECRET = "bench-secret"
FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/inbound/jira_issue_updated.json"
STATUS = {"ack": ("In Progress", "indeterminate"), "resolve": ("Done", "done")}


def change(i: int, ts: float) -> TicketChange:
    return TicketChange(kind="fire", fingerprint=f"b{i}", rule="bench", site="bench",
                        device=f"dev-{i}", labels={}, severity="P1", title=f"bench {i}",
                        description="", team=None, value=1.0, first_ts=ts, last_ts=ts)


def webhook(template: dict, tid: int, action: str) -> tuple[bytes, dict[str, str]]:
    name, cat = STATUS[action]
    doc = json.loads(json.dumps(template))
    doc["timestamp"] = int(time.time() * 1000)
    doc["issue"]["key"] = f"OPS-{tid}"
    doc["issue"]["fields"]["labels"] = ["fieldwatch", f"fieldwatch-{tid}"]
    doc["issue"]["fields"]["status"] = {"name": name, "statusCategory": {"key": cat}}
    body = json.dumps(doc).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature": sig,
                  "X-Atlassian-Webhook-Identifier": f"{tid}-{action}"}


def cpu() -> float:
    """This process's CPU time (user + system), all threads."""
    t = os.times()
    return t.user + t.system


def quantiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100)
    return {"p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "max_ms": round(max(ms), 2)}


def run(url: str, bodies: list[tuple[bytes, dict[str, str]]], clients: int) -> list[float]:
    def one(item: tuple[bytes, dict[str, str]], client: httpx.Client) -> float:
        t0 = time.perf_counter()
        r = client.post(url, content=item[0], headers=item[1])
        elapsed = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise SystemExit(f"{r.status_code}: {r.text}")
        return elapsed

    pool_clients = [httpx.Client(timeout=30) for _ in range(clients)]
    try:
        if clients == 1:
            return [one(b, pool_clients[0]) for b in bodies]
        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(lambda ib: one(ib[1], pool_clients[ib[0] % clients]),
                                 enumerate(bodies)))
    finally:
        for c in pool_clients:
            c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--db", default=None, help="store URL (default: SQLite in a temp dir)")
    args = ap.parse_args()
    os.environ["FW_BENCH_JIRA"] = "tok"
    os.environ["FW_BENCH_IN"] = SECRET
    template = json.loads(FIXTURE.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(open_engine(args.db or f"sqlite:///{Path(tmp) / 'inbound.db'}"))
        cfg = IntegrationsConfig.model_validate({"targets": [
            {"type": "jira", "name": "jira", "url": "http://127.0.0.1:9", "project": "OPS",
             "api_token": {"env": "FW_BENCH_JIRA"},
             "inbound": {"secret": {"env": "FW_BENCH_IN"}, "reconcile": 0}},
            {"type": "webhook", "name": "other", "url": "http://127.0.0.1:9/hook"}]})
        outbox.register_desks(store.engine, cfg.instance, cfg.targets, time.time())
        now = time.time()
        ids: list[int] = []
        for i in range(0, args.tickets, 500):
            ids += store.write(BatchWrite(changes=[change(j, now) for j in range(
                i, min(args.tickets, i + 500))]), now)
        with store.engine.begin() as conn:
            conn.execute(desk_links.insert(), [{"ticket_id": t, "desk": "jira",
                                                "external_id": f"OPS-{t}", "linked_at": now}
                                               for t in ids])
        clock, stats = SystemClock(), Stats()
        app = make_app(ServiceDesk(store, clock), stats, tokens=lambda: frozenset({"t"}))
        add_routes(app, routes(store, cfg, clock, stats, tokens=lambda: {"t"}))

        async def peer(request: Request) -> Response:
            await request.body()
            return JSONResponse({"status": "ok"})

        add_routes(app, [Route("/bench/peer", peer, methods=["POST"])])
        server = HttpServer(app, port=0)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        for _ in range(100):
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        half = len(ids) // 2
        try:
            acks = [webhook(template, t, "ack") for t in ids]
            resolves = [webhook(template, t, "resolve") for t in ids]
            url = base + "/api/v1/inbound/jira"
            c0 = cpu()
            peer_ms = run(base + "/bench/peer", acks[:500], 1)
            c1 = cpu()
            serial = run(url, acks[:half], 1) + run(url, resolves[:half], 1)
            c2 = cpu()
            parallel = run(url, acks[half:], args.clients) + run(url, resolves[half:],
                                                                 args.clients)
        finally:
            server.stop()
        states = {t["state"] for t in store.list_tickets(None, len(ids) + 10)}
        rows = outbox.Queue(store.engine).counts()
        echoed = [r for r in outbox.Queue(store.engine).list("pending", "jira", None, 10)
                  if r["action"] != "open"]
        store.engine.dispose()
    print(json.dumps({
        "bench": "inbound", "desk": "jira", "store": "postgresql" if args.db else "sqlite",
        "tickets": len(ids), "goal_p99_ms": 50, "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine
        "webhook_to_state_change_serial": quantiles(serial),
        f"webhook_to_state_change_{args.clients}_clients": quantiles(parallel),
        "peer_http_only_serial": quantiles(peer_ms),
        "cpu_ms_per_request": {"webhook": round((c2 - c1) / len(serial) * 1000, 3),
                               "peer": round((c1 - c0) / len(peer_ms) * 1000, 3)},
        "all_resolved": states == {"resolved"},
        "outbox_rows_to_other_desk": rows.get("other", {}).get("pending", 0),
        "outbox_rows_echoed_to_jira": len(echoed),
        "changes_applied": stats.get("inbound_changes_total", "jira:applied"),
    }))


if __name__ == "__main__":
    main()
