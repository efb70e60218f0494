"""Desk pages under a large desk: 10,000 devices, 5,000 open and 100,000 closed tickets.

The data is written straight into a fresh SQLite database (bulk inserts, not through the
collector: what is measured is reading it), with the shipped SLA policy (business-hours
calendars for P2/P3), three timeline events per ticket and a resolution record on every closed
one. The pages are served by the real server (`HttpServer`, uvicorn on 127.0.0.1:0) and asked
over keep-alive HTTP, one request at a time, in one run beside a static file served by the same
server (the floor: loopback, uvicorn and the client), as the supervisor `bench` with its own
API token (the accounts layer looks the caller up on every request, as for a login session).

Reported per request: wall milliseconds as the client saw them (p50 / p95 / max), and the CPU
milliseconds the process spent on it (p50 / p95: the server's work, which other load on a
shared machine does not inflate); the 1-minute load average says how busy the machine was.
  static      /static/desk.css
  queue       /            (5,000 open tickets ordered by SLA urgency, first page of 50)
  queue_cold  /            the first request after start (no breach instants cached yet)
  queue_changed /          each right after a ticket changed (the order made anew)
  queue_q     /?q=...      a search and a filter
  ticket      /tickets/ID  a random open ticket (timeline, clocks, diagnostics)
  similar     /tickets/ID/similar  its case-library suggestions (loaded after the page)
  device_7d   /device?...&range=7d  a random device: inventory, tickets, charts of 4 series
Goals: queue and ticket p95 < 150 ms, device page with a 7-day chart p95 < 300 ms (exit 1
when a wall-clock p95 misses its goal).

Metric history: the embedded store in the same file, read by `EmbeddedHistory` as
`fieldwatch up` reads it. 100 charted devices send 4 series every `--interval` seconds
(default 60) for 7 days; the samples go in as the collector writes them (the worker's
Recorder, then Store.write: tests/web/pages/history.py), an hour of messages a batch, with the
collector's rollup job every 6 hours of that week (the same rows as its every-minute runs, in
fewer calls) and its retention job at the end: raw samples for the last 2 days,
5 min rollups for the week, so a 7-day chart reads the rollups and the unrolled tail from raw.

Usage: python bench/desk.py [--requests 200] [--interval 60] [--keep DIR]  (prints one JSON
document; exit 1 when a goal is missed)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from fieldwatch.collector.history.config import HistoryConfig  # noqa: E402
from fieldwatch.collector.history.jobs import horizons  # noqa: E402
from fieldwatch.collector.history.query import EmbeddedHistory  # noqa: E402
from fieldwatch.collector.history.schema import samples, series  # noqa: E402
from fieldwatch.collector.rules.loader import load_rules  # noqa: E402
from fieldwatch.collector.store.db import open_engine  # noqa: E402
from fieldwatch.collector.store.schema import devices, ticket_events, tickets  # noqa: E402
from fieldwatch.collector.store.store import Store  # noqa: E402
from fieldwatch.collector.telemetry.stats import Stats  # noqa: E402
from fieldwatch.collector.tickets.service_desk import ServiceDesk  # noqa: E402
from fieldwatch.collector.web.accounts.store import AccountStore  # noqa: E402
from fieldwatch.collector.web.api.app import HttpServer, make_app  # noqa: E402
from fieldwatch.collector.web.pages import add_pages  # noqa: E402

from fieldwatch import wire  # noqa: E402
from fieldwatch.cli.up import default_rules_dir  # noqa: E402
from fieldwatch.clock import FakeClock, SystemClock  # noqa: E402
from tests.web.pages.history import StoredHistory  # noqa: E402

DEVICES, OPEN, CLOSED = 10_000, 5_000, 100_000
SITES = [f"site-{i:02d}" for i in range(40)]
TEAMS = ["hardware", "network", "field", "desk"]
CAUSES = ["fan bearing worn", "disk full of logs", "PSU failed", "cable loose", "firmware bug",
          "paper jam", "UPS battery aged", "overheating: dust", "config error", "NIC flapping"]
RULES = ["disk_nearly_full", "memory_pressure", "device_offline", "temp_high", "manual"]
METRICS = [("disk.used_percent", {"mount": "/"}), ("disk.used_percent", {"mount": "/var"}),
           ("cpu.percent", {}), ("temp.celsius", {"sensor": "cpu"})]
GOALS = {"queue": 150.0, "ticket": 150.0, "device_7d": 300.0}
CHUNK = 5000


def generate(engine: sa.Engine, now: float, rng: random.Random) -> dict[str, Any]:
    """Devices, tickets and events, written in bulk; returns what the requests pick from."""
    names = [(SITES[i % len(SITES)], f"dev-{i:05d}") for i in range(DEVICES)]
    with engine.begin() as conn:
        conn.execute(devices.insert(), [
            {"site": s, "device": d, "first_seen": now - 90 * 86400, "last_seen": now - 10,
             "status": "online", "messages_total": 1000, "agent": "0.1", "last_seq": 1000,
             "inventory": {"type": rng.choice(["server", "printer", "ups", "switch"]),
                           "model": f"M-{rng.randint(1, 40)}", "serial": f"SN{i:08d}"}}
            for i, (s, d) in enumerate(names)])
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for n in range(OPEN + CLOSED):
        tid = n + 1
        site, dev = names[rng.randrange(DEVICES)]
        rule = rng.choice(RULES)
        prio = rng.choice(["P1", "P2", "P2", "P3", "P3", "P3"])
        is_open = n < OPEN
        opened = now - (rng.uniform(0, 3 * 86400) if is_open else rng.uniform(4, 90) * 86400)
        acked = None if is_open and rng.random() < 0.5 else opened + rng.uniform(60, 7200)
        cause = rng.choice(CAUSES)
        row = {"id": tid, "fingerprint": f"{rule}-{site}-{dev}-{tid}", "rule": rule,
               "site": site, "device": dev, "labels": {"mount": "/"}, "severity": prio,
               "priority": prio, "sla_priority": prio,
               "state": rng.choice(["open", "acknowledged", "in_progress"]) if is_open
               else "closed",
               "title": f"{cause.capitalize()} on {dev}", "description": f"{rule} on {site}",
               "team": rng.choice(TEAMS), "opened_at": opened, "updated_at": opened,
               "last_seen": opened, "last_value": rng.uniform(0, 100), "occurrences": 1,
               "source": "manual" if rule == "manual" else "rule", "assignee": f"tech-{n % 30}",
               "acknowledged_at": acked, "pauses": [], "reopen_count": 0, "recurrences": 0,
               "on_recurrence": "reopen"}
        if is_open and row["state"] == "open":
            row["acknowledged_at"] = None
        if not is_open:
            resolved = opened + rng.uniform(600, 3 * 86400)
            row.update(resolved_at=resolved, closed_at=resolved + 7 * 86400,
                       close_reason="verified", satisfaction=rng.randint(1, 5),
                       resolution={"cause": cause, "fix": f"fixed: {cause}", "parts": [],
                                   "minutes": 30, "mode": "remote"})
        rows.append(row)
        events += [{"ticket_id": tid, "at": opened, "actor": f"rule:{rule}", "kind": "opened",
                    "reason": f"{rule} firing", "data": {"value": row["last_value"]}},
                   {"ticket_id": tid, "at": opened, "actor": "system", "kind": "assigned",
                    "reason": "routed", "data": {"to": row["assignee"]}}]
        if not is_open:
            events.append({"ticket_id": tid, "at": row["closed_at"], "actor": "system",
                           "kind": "closed", "reason": "verified", "data": None})
        if len(rows) >= CHUNK:
            _flush(engine, rows, events)
    _flush(engine, rows, events)
    return {"names": names}


def _flush(engine: sa.Engine, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        if rows:
            conn.execute(tickets.insert(), rows)
        if events:
            conn.execute(ticket_events.insert(), events)
    rows.clear()
    events.clear()


def fill_history(store: Store, chosen: list[tuple[str, str]], now: float, interval: float,
                 rng: random.Random) -> dict[str, Any]:
    """7 days of the charted devices' metrics up to `now` as a collector would have stored
    them: written an hour at a time, rolled up every 6 hours, retention applied at `now`."""
    span, hour = 7 * 86400.0, 3600.0
    clock = FakeClock(now - span)
    history = StoredHistory(store, clock)
    base = {(dev, m): rng.uniform(20, 70) for _, dev in chosen for m in range(len(METRICS))}
    written = rolled = 0
    t = rolled_at = now - span
    while t < now:
        end = min(t + hour, now)
        msgs = []
        for k in range(math.ceil((end - t) / interval)):
            ts = t + k * interval
            day = (ts % 86400) / 86400
            msgs += [history.message(site, dev, ts, [
                wire.Sample(metric, base[(dev, m)] + 10 * day, labels)
                for m, (metric, labels) in enumerate(METRICS)]) for site, dev in chosen]
        clock.t = end
        written += history.write(msgs)
        if end - rolled_at >= 6 * hour or end >= now:  # the rows of every minute's runs
            rolled += history.roll_up()
            rolled_at = end
        t = end
    gone = history.retention()
    with store.engine.connect() as conn:
        raw = conn.execute(sa.select(sa.func.count()).select_from(samples)).scalar_one()
    return {"samples_written": written, "rollup_rows": rolled, "raw_rows_kept": raw,
            "raw_rows_deleted": gone["samples"]}


def timed(client: httpx.Client, paths: list[str]) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) per request. The server runs in this process and requests go one at
    a time, so the process's CPU time over a request is the server's work on it (plus the
    client's, well under a millisecond): a figure a busy shared machine does not inflate."""
    out = []
    for path in paths:
        t0, c0 = time.perf_counter(), time.process_time()
        r = client.get(path)
        out.append(((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000))
        if r.status_code != 200:
            raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
    return out


def changed(client: httpx.Client, desk: ServiceDesk, ids: list[int], n: int,
            rng: random.Random) -> list[tuple[float, float]]:
    """The queue, each time right after a ticket changed (a comment; not timed)."""
    out = []
    for _ in range(n):
        desk.store.add_event(rng.choice(ids), time.time(), "bench", "comment", "still here")
        out += timed(client, ["/"])
    return out


def p95(values: list[float]) -> float:
    s = sorted(values)
    return round(s[max(0, math.ceil(0.95 * len(s)) - 1)], 1)


def summary(times: list[tuple[float, float]]) -> dict[str, float]:
    wall, cpu = [w for w, _ in times], [c for _, c in times]
    return {"n": len(times), "p50_ms": round(statistics.median(wall), 1), "p95_ms": p95(wall),
            "max_ms": round(max(wall), 1), "cpu_p50_ms": round(statistics.median(cpu), 1),
            "cpu_p95_ms": p95(cpu)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per page kind")
    ap.add_argument("--interval", type=float, default=60.0,
                    help="seconds between a charted device's samples")
    ap.add_argument("--keep", type=Path, help="keep the database in this directory (and use "
                    "the one an earlier run left there)")
    args = ap.parse_args()
    rng = random.Random(14)
    tmp = tempfile.TemporaryDirectory(prefix="fw-bench-desk-")
    where = args.keep or Path(tmp.name)
    where.mkdir(parents=True, exist_ok=True)
    reuse = (where / "desk.db").exists()
    engine = open_engine(f"sqlite:///{where / 'desk.db'}")
    now = time.time()
    store = Store(engine)
    t0 = time.perf_counter()
    if reuse:  # --keep DIR of an earlier run: its data (times are as they were then)
        with engine.connect() as conn:
            now = conn.execute(sa.select(sa.func.max(devices.c.last_seen))).scalar_one() + 10
            charted = [(r.site, r.device) for r in conn.execute(
                sa.select(series.c.site, series.c.device).distinct())]
        history: dict[str, Any] = {}
    else:
        names = generate(engine, now, rng)["names"]
        t1 = time.perf_counter()
        charted = rng.sample(names, 100)
        history = fill_history(store, charted, now, args.interval, rng)
        history["fill_s"] = round(time.perf_counter() - t1, 1)
    made = time.perf_counter() - t0

    desk = ServiceDesk(store, SystemClock())
    accounts = AccountStore(engine, clock=desk.clock)
    if accounts.user("bench") is None:
        accounts.add("bench", "supervisor", sites=["*"])
    token = accounts.new_token("bench", "bench/desk.py")  # a user's own API token
    app = make_app(desk, Stats(), accounts=accounts)
    ruleset = load_rules([default_rules_dir()])
    backend = EmbeddedHistory(engine, horizons(HistoryConfig()), desk.clock)  # as `up`'s
    add_pages(app, desk, lambda: backend, rules=lambda: ruleset)
    server = HttpServer(app, port=0)
    server.start()
    n = args.requests
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            cold = timed(client, ["/"])
            with engine.connect() as conn:
                open_ids = list(conn.execute(sa.select(tickets.c.id).where(
                    tickets.c.state != "closed")).scalars())
            results = {
                "static": summary(timed(client, ["/static/desk.css"] * n)),
                "queue_cold": {"ms": round(cold[0][0], 1), "cpu_ms": round(cold[0][1], 1)},
                "queue": summary(timed(client, ["/"] * n)),
                "queue_changed": summary(changed(client, desk, open_ids, n // 4, rng)),
                "queue_q": summary(timed(client, [
                    f"/?q={rng.choice(CAUSES).split()[0]}&team={rng.choice(TEAMS)}"
                    for _ in range(n // 2)])),
                "ticket": summary(timed(client, [f"/tickets/{rng.choice(open_ids)}"
                                                 for _ in range(n)])),
                "similar": summary(timed(client, [f"/tickets/{rng.choice(open_ids)}/similar"
                                                  for _ in range(n // 4)])),
                "device_7d": summary(timed(client, [
                    "/device?" + str(httpx.QueryParams({"site": s, "id": d, "range": "7d"}))
                    for s, d in (rng.choice(charted) for _ in range(n // 2))])),
            }
    finally:
        server.stop()
        engine.dispose()
        tmp.cleanup()
    met = {k: results[k]["p95_ms"] < goal for k, goal in GOALS.items()}
    met_cpu = {k: results[k]["cpu_p95_ms"] < goal for k, goal in GOALS.items()}
    out = {"load_average_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
           "devices": DEVICES, "open_tickets": OPEN, "closed_tickets": CLOSED,
           "history": history, "generate_s": round(made, 1), "goals_p95_ms": GOALS,
           "results": results, "goals_met": met, "goals_met_on_cpu_time": met_cpu}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
