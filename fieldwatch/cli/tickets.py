"""`fieldwatch tickets list|show` — the service desk's view of the ticket store."""

from __future__ import annotations

import argparse

from fieldwatch.cli.common import add_state_options, open_store, print_json, print_table
from fieldwatch.cli.diag import register_ticket_actions
from fieldwatch.jsonout import iso, ticket_json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("tickets", help="service desk: list and show tickets")
    tsub = p.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")
    ls = tsub.add_parser("list", help="list tickets, newest first")
    ls.add_argument("--status", help="a state, or `open` for every not-yet-resolved state")
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/operations.md)")
    add_state_options(ls)
    ls.set_defaults(func=list_tickets)
    show = tsub.add_parser("show", help="one ticket with its timeline")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    add_state_options(show)
    show.set_defaults(func=show_ticket)
    register_ticket_actions(tsub)  # `tickets approve` (fieldwatch/cli/diag.py)


def list_tickets(args: argparse.Namespace) -> int:
    rows = [ticket_json(t) for t in open_store(args).list_tickets(args.status)]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["id", "state", "severity", "device", "title", "occurrences",
                           "opened_at"])
    return 0


def show_ticket(args: argparse.Namespace) -> int:
    store = open_store(args)
    found = [t for t in store.list_tickets(limit=1_000_000) if t["id"] == args.id]
    if not found:
        print(f"no ticket {args.id}")
        return 1
    ticket = ticket_json(found[0])
    events = [{**e, "at": iso(e["at"])} for e in store.timeline(args.id)]
    if args.json:
        print_json([{**ticket, "timeline": events}])
        return 0
    for k, v in ticket.items():
        print(f"{k:>12}: {v}")
    print("\ntimeline:")
    print_table(events, ["at", "actor", "kind", "reason"])
    return 0
