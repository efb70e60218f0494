"""`fieldwatch tickets ...` — the service desk from a terminal (same service layer as the API).

Every command takes --data/--db (or --config), prints a human view, and `--json` the stable
shapes of docs/operations.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from typing import Any

from fieldwatch.cli import human
from fieldwatch.cli.common import print_json, print_table
from fieldwatch.cli.desk import actor, add_actor, add_desk_options, close_desk, open_desk
from fieldwatch.cli.diag import register_ticket_actions
from fieldwatch.collector.sla.policy import PRIORITIES
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.tickets.lifecycle import CLOSE_REASONS, STATES
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.errors import TransitionRefused

LIST_COLUMNS = ["id", "state", "priority", "device", "title", "team", "assignee", "seen",
                "opened"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("tickets", help="service desk: list, show and work tickets")
    tsub = p.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")

    ls = tsub.add_parser("list", help="list tickets, newest first")
    ls.add_argument("--status", choices=STATES,
                    help="a state; `open` means every not-yet-resolved state")
    ls.add_argument("--priority", choices=PRIORITIES)
    for f in ("team", "assignee", "site", "device", "rule"):
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
    create.add_argument("--priority", choices=PRIORITIES, default="P3")
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


def _with_desk(fn: Callable[[ServiceDesk, argparse.Namespace], int], write: bool = True
               ) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        desk = open_desk(args, write=write)
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


def _list_tickets(desk: ServiceDesk, args: argparse.Namespace) -> int:
    rows = desk.list(args.status, args.limit, team=args.team, assignee=args.assignee,
                     priority=args.priority, site=args.site, device=args.device,
                     rule=args.rule)
    if args.json:
        print_json(rows)
    else:
        print_table([list_row(t) for t in rows], LIST_COLUMNS)
    return 0


def _show_ticket(desk: ServiceDesk, args: argparse.Namespace) -> int:
    _print_ticket(desk.show(args.id), args.json, brief=False)
    return 0


list_tickets = _with_desk(_list_tickets, write=False)
show_ticket = _with_desk(_show_ticket, write=False)


def list_row(t: Mapping[str, Any]) -> dict[str, str]:
    return {"id": str(t["id"]), "state": t["state"], "priority": t["priority"],
            "device": f"{t['site']}/{t['device']}", "title": t["title"],
            "team": human.value(t.get("team")), "assignee": human.value(t.get("assignee")),
            "seen": human.number(t.get("occurrences")), "opened": human.when(t["opened_at"])}


def _print_ticket(t: dict[str, Any], as_json: bool, brief: bool) -> None:
    if as_json:
        print_json([t])
        return
    if brief:
        print(f"ticket {t['id']}: {t['state']} {t['priority']} {t['title']}"
              + (f" (assigned to {t['assignee']})" if t.get("assignee") else ""))
        return
    print("\n".join(detail_lines(t, time.time())))


def detail_lines(t: Mapping[str, Any], now: float) -> list[str]:
    """`tickets show`: labelled lines, timeline, similar past fixes; nothing empty shown."""
    prio = t["priority"] + (f" (opened as {t['severity']})"
                            if t.get("severity") not in (None, t["priority"]) else "")
    res = t.get("resolution") or {}
    fields: list[tuple[str, str | None]] = [
        ("state", t["state"] + (f" ({t['close_reason']})" if t.get("close_reason") else "")),
        ("priority", prio),
        ("device", f"{t['site']}/{t['device']}"
         + (f" ({t['device_type']})" if t.get("device_type") else "")),
        ("rule", None if t.get("rule") == "manual" else t.get("rule")),
        ("labels", human.value(t.get("labels")) if t.get("labels") else None),
        ("source", t.get("source")),
        ("customer", t.get("customer")),
        ("team", t.get("team")),
        ("assignee", t.get("assignee")),
        ("description", t.get("description") or None),
        ("last value", None if t.get("last_value") is None else
         f"{human.number(t['last_value'])} "
         f"({human.plural(t.get('occurrences') or 0, 'sample')})"),
        ("opened", human.when_ago(t["opened_at"], now)),
        ("acknowledged", _when(t.get("acknowledged_at"), now)),
        ("waiting since", _when(t.get("waiting_since"), now)),
        ("resolved", _when(t.get("resolved_at"), now)),
        ("closed", _when(t.get("closed_at"), now)),
        ("last seen", _when(t.get("last_seen"), now) if t.get("source") != "manual" else None),
        ("updated", _when(t.get("updated_at"), now)),
        ("cause", res.get("cause")),
        ("fix", _fix(res) if res else None),
        ("reopened", f"{t['reopen_count']} times" if t.get("reopen_count") else None),
        ("recurrences", str(t["recurrences"]) if t.get("recurrences") else None),
        ("recurrence of", f"ticket {t['recurrence_of']}" if t.get("recurrence_of") else None),
        ("satisfaction", f"{t['satisfaction']}/5" if t.get("satisfaction") else None),
        ("fingerprint", t.get("fingerprint")),
    ]
    for desk, link in (t.get("desks") or {}).items():
        fields.append((f"desk {desk}", " ".join(x for x in (link.get("external_id"),
                                                             link.get("url")) if x)))
    for name, clock in (t.get("sla") or {}).items():
        fields.append((f"sla {name}", sla_text(clock, now)))
    lines = [f"ticket {t['id']}: {t['title']}"] + [f"{k:>15}: {v}" for k, v in fields if v]
    lines += ["", "timeline:"]
    lines += [f"  {human.when(e['at'])}  {e['actor']}: {e['kind']}"
              + (f" — {e['reason']}" if e.get("reason") else "") for e in t.get("timeline", [])]
    if t.get("similar"):
        lines += ["", "similar past fixes:"]
        for s in t["similar"]:
            r = s["resolution"]
            lines.append(f"  #{s['id']} ({s['device']}): {r['cause']} — {r['fix']}")
    return lines


def _when(v: str | None, now: float) -> str | None:
    return None if v is None else human.when_ago(v, now)


def _fix(res: Mapping[str, Any]) -> str:
    extra = [human.duration(res["minutes"] * 60) if res.get("minutes") else "",
             "on site" if res.get("mode") == "on_site" else "remote",
             ("parts: " + ", ".join(res["parts"])) if res.get("parts") else ""]
    return f"{res.get('fix')} ({', '.join(x for x in extra if x)})"


def sla_text(c: Mapping[str, Any], now: float) -> str:
    """One SLA clock (docs/operations.md CLOCK) in words."""
    used = f"{human.duration(c['elapsed_s'])} of {human.duration(c['target_s'])} used"
    if c.get("stopped_at"):
        state = "BREACHED" if c["breached"] else "met"
        return f"{state} at {human.when(c['stopped_at'])}, {used}"
    if c.get("paused"):
        return f"paused (waiting on the customer), {used}"
    if c["breached"]:
        return f"BREACHED, {used}, was due {human.when_ago(c['due'], now)}"
    return f"running, {used}, due {human.when_ago(c['due'], now)}"
