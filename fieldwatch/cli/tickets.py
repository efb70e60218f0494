"""`fieldwatch tickets ...` — the service desk from a terminal (same service layer as the API).

Every command takes --data/--db (or --config), prints a human view, and `--json` the stable
shapes of docs/operations.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from fieldwatch.cli.common import print_json, print_table
from fieldwatch.cli.desk import actor, add_actor, add_desk_options, close_desk, open_desk
from fieldwatch.cli.diag import register_ticket_actions
from fieldwatch.collector.service_desk import ServiceDesk
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.lifecycle import CLOSE_REASONS
from fieldwatch.errors import TransitionRefused

LIST_COLUMNS = ["id", "state", "priority", "device", "title", "team", "assignee",
                "occurrences", "opened_at"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("tickets", help="service desk: list, show and work tickets")
    tsub = p.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")

    ls = tsub.add_parser("list", help="list tickets, newest first")
    ls.add_argument("--status", help="a state, or `open` for every not-yet-resolved state")
    for f in ("team", "assignee", "priority", "site", "device", "rule"):
        ls.add_argument(f"--{f}")
    ls.add_argument("--limit", type=int, default=1000)
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/operations.md)")
    add_desk_options(ls)
    ls.set_defaults(func=list_tickets)
    register_ticket_actions(tsub)  # `tickets approve` (fieldwatch/cli/diag.py)

    show = tsub.add_parser("show", help="one ticket: SLA clocks, timeline, similar past fixes")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    add_desk_options(show)
    show.set_defaults(func=show_ticket)

    create = tsub.add_parser("create", help="open a ticket by hand (a fault phoned in)")
    create.add_argument("--device", required=True)
    create.add_argument("--site", default="manual")
    create.add_argument("--title", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--customer", help="who reported it and how to reach them")
    create.add_argument("--priority", choices=["P1", "P2", "P3"], default="P3")
    create.add_argument("--team")
    _common(create, create_ticket)

    def action(name: str, helptext: str) -> argparse.ArgumentParser:
        a = tsub.add_parser(name, help=helptext)
        a.add_argument("id", type=int)
        return a

    for name, helptext in (("ack", "acknowledge (stops the response clock)"),
                           ("start", "mark in progress"),
                           ("resume", "the customer answered: SLA clocks run again")):
        a = action(name, helptext)
        a.add_argument("--text", help="optional remark for the timeline")
        _common(a, _act(name))
    a = action("wait", "waiting on the customer: SLA clocks pause")
    a.add_argument("--text", help="what we wait for")
    _common(a, _act("wait"))
    a = action("assign", "assign to a person")
    a.add_argument("assignee")
    _common(a, _act("assign"))
    a = action("comment", "add a comment to the timeline")
    a.add_argument("text")
    _common(a, _act("comment"))
    a = action("resolve", "resolve with a structured note")
    a.add_argument("--note", required=True, help="what was done (the fix)")
    a.add_argument("--cause", default="unspecified", help="root cause, short and reusable")
    a.add_argument("--part", action="append", default=[], help="a part used (repeatable)")
    a.add_argument("--minutes", type=float, default=0, help="time spent")
    a.add_argument("--on-site", action="store_true", help="fixed on site (default: remote)")
    _common(a, _act("resolve"))
    a = action("close", "close (resolved tickets; or open ones as wont_fix/duplicate)")
    a.add_argument("--reason", choices=CLOSE_REASONS, default="fixed")
    a.add_argument("--satisfaction", type=int, help="customer score 1-5")
    a.add_argument("--text")
    _common(a, _act("close"))
    a = action("reopen", "reopen a resolved or closed ticket")
    a.add_argument("--text", required=True, help="why")
    _common(a, _act("reopen"))


def _common(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    add_actor(p)
    p.add_argument("--json", action="store_true")
    add_desk_options(p)
    p.set_defaults(func=func)


def _with_desk(fn: Callable[[ServiceDesk, argparse.Namespace], int]
               ) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        desk = open_desk(args)
        try:
            return fn(desk, args)
        finally:
            close_desk(desk)
    return run


def _act(name: str) -> Callable[[argparse.Namespace], int]:
    def run(desk: ServiceDesk, args: argparse.Namespace) -> int:
        note = None
        if name == "resolve":
            try:
                note = Resolution(cause=args.cause, fix=args.note, parts=args.part,
                                  minutes=args.minutes,
                                  mode="on_site" if args.on_site else "remote")
            except ValueError as exc:
                raise TransitionRefused(f"resolution note: {exc}") from None
        t = desk.act(args.id, name, actor(args), text=getattr(args, "text", None),  # type: ignore[arg-type]
                     assignee=getattr(args, "assignee", None), note=note,
                     reason=getattr(args, "reason", None),
                     satisfaction=getattr(args, "satisfaction", None))
        _print_ticket(t, args.json, brief=True)
        return 0
    return _with_desk(run)


@_with_desk
def create_ticket(desk: ServiceDesk, args: argparse.Namespace) -> int:
    t = desk.create(device=args.device, site=args.site, title=args.title,
                    description=args.description, customer=args.customer,
                    priority=args.priority, team=args.team, actor=actor(args))
    _print_ticket(t, args.json, brief=True)
    return 0


@_with_desk
def list_tickets(desk: ServiceDesk, args: argparse.Namespace) -> int:
    rows = desk.list(args.status, args.limit, team=args.team, assignee=args.assignee,
                     priority=args.priority, site=args.site, device=args.device,
                     rule=args.rule)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)
    return 0


@_with_desk
def show_ticket(desk: ServiceDesk, args: argparse.Namespace) -> int:
    _print_ticket(desk.show(args.id), args.json, brief=False)
    return 0


def _print_ticket(t: dict[str, Any], as_json: bool, brief: bool) -> None:
    if as_json:
        print_json([t])
        return
    if brief:
        print(f"ticket {t['id']}: {t['state']} {t['priority']} {t['title']}"
              + (f" (assigned to {t['assignee']})" if t.get("assignee") else ""))
        return
    skip = {"timeline", "similar", "sla", "inventory"}
    for k, v in t.items():
        if k not in skip and v not in (None, {}, []):
            print(f"{k:>15}: {v}")
    for name, c in t["sla"].items():
        state = ("met" if c["stopped_at"] and not c["breached"] else
                 "BREACHED" if c["breached"] else "paused" if c["paused"] else "running")
        print(f"{'sla ' + name:>15}: {state}, {c['percent']}% used, due {c['due']}")
    print("\ntimeline:")
    print_table(t["timeline"], ["at", "actor", "kind", "reason"])
    if t["similar"]:
        print("\nsimilar past fixes:")
        for s in t["similar"]:
            r = s["resolution"]
            print(f"  #{s['id']} ({s['device']}): {r['cause']} — {r['fix']}")
