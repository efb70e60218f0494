"""`fieldwatch outbox list|retry` — what waits for external desks, and dead letters back in line.

Reads and writes the store directly (like `tickets`), so it works while the collector runs:
the collector's worker picks retried rows up at its next poll.
"""

from __future__ import annotations

import argparse
import time

from fieldwatch.cli import human
from fieldwatch.cli.common import CommandLineError, print_json, print_table
from fieldwatch.cli.state import add_state_options, open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("outbox", help="deliveries to external desks: list, retry dead letters")
    osub = p.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    ls = osub.add_parser("list", help="outbox rows, newest first (default: dead letters)")
    ls.add_argument("--state", choices=["dead", "pending", "delivered", "all"], default="dead")
    ls.add_argument("--desk", help="only this desk")
    ls.add_argument("--ticket", type=int, help="only this ticket")
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/desks.md)")
    add_state_options(ls)
    ls.set_defaults(func=list_outbox)
    rt = osub.add_parser("retry", help="put dead letters back in the queue")
    rt.add_argument("ids", type=int, nargs="*", metavar="ID", help="outbox row ids")
    rt.add_argument("--desk", help="every dead letter of this desk")
    rt.add_argument("--all", action="store_true", help="every dead letter")
    rt.add_argument("--json", action="store_true", help='{"requeued": N}')
    add_state_options(rt)
    rt.set_defaults(func=retry_outbox)


def list_outbox(args: argparse.Namespace) -> int:
    from fieldwatch.collector.desks.outbox import Queue
    from fieldwatch.collector.desks.routes import outbox_json

    store = open_store(args)
    try:
        q = Queue(store.engine)
        rows = [outbox_json(r) for r in q.list(None if args.state == "all" else args.state,
                                               args.desk, args.ticket, args.limit)]
        counts = q.counts()
    finally:
        store.engine.dispose()
    if args.json:
        print_json(rows)
        return 0
    now = time.time()
    print_table([{**{k: human.value(r[k]) for k in ("id", "desk", "action", "state",
                                                    "attempts", "last_error")},
                  "ticket": human.value(r["ticket_id"]), "created": human.when(r["created_at"]),
                  "next_try": _next_try(r["next_at"], now)} for r in rows],
                ["id", "desk", "ticket", "action", "state", "attempts", "created", "next_try",
                 "last_error"])
    for desk, by_state in sorted(counts.items()):
        print(f"{desk}: " + ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())))
    return 0


def _next_try(at: str | None, now: float) -> str:
    ts = human.epoch(at)
    return human.NONE if ts is None else "now" if ts <= now else human.when_ago(at, now)


def retry_outbox(args: argparse.Namespace) -> int:
    from fieldwatch.collector.desks.outbox import Queue

    if not (args.ids or args.desk or args.all):
        raise CommandLineError("give row ids, --desk NAME or --all")
    store = open_store(args, write=True)
    try:
        n = Queue(store.engine).retry(time.time(), args.ids, args.desk)
    finally:
        store.engine.dispose()
    if args.json:
        print_json([{"requeued": n}])
    else:
        print(f"requeued {n} dead letter{'s' if n != 1 else ''}")
    return 0 if n or args.all or args.desk else 1
