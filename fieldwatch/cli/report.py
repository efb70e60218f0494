"""`fieldwatch report kpi|monthly` — the figures the service is managed by."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldwatch.cli import human
from fieldwatch.cli.desk import add_desk_options, close_desk, open_desk
from fieldwatch.collector.tickets.report import month_bounds, monthly_markdown
from fieldwatch.durations import parse_duration
from fieldwatch.errors import TransitionRefused


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="KPIs and monthly summaries")
    rsub = p.add_subparsers(dest="report_command", required=True, metavar="ACTION")
    k = rsub.add_parser("kpi", help="MTTA, MTTR, SLA compliance, recurrence, first-time fix ...")
    k.add_argument("--since", default="30d", help="how far back tickets were opened (30d)")
    k.add_argument("--json", action="store_true", help="stable JSON (docs/operations.md)")
    add_desk_options(k)
    k.set_defaults(func=kpi)
    m = rsub.add_parser("monthly", help="a Markdown summary of one month")
    m.add_argument("--month", help="YYYY-MM (default: the previous month, UTC)")
    m.add_argument("--out", type=Path, help="write here instead of standard output")
    m.add_argument("--json", action="store_true",
                   help="the month's KPIs as `report kpi --json` gives them")
    add_desk_options(m)
    m.set_defaults(func=monthly)


def kpi(args: argparse.Namespace) -> int:
    try:
        seconds = parse_duration(args.since)
    except ValueError as exc:
        raise TransitionRefused(f"--since: {exc}") from None
    desk = open_desk(args)
    try:
        now = desk.clock.now()
        out = desk.kpi(now - seconds, now)
    finally:
        close_desk(desk)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print("\n".join(kpi_lines(out)))
    return 0


def kpi_lines(k: dict[str, Any]) -> list[str]:
    t, sat = k["tickets"], k["satisfaction"]
    lines = [
        f"tickets opened {human.when(k['since'])} .. {human.when(k['until'])}: {t['opened']} "
        f"(acknowledged {t['acknowledged']}, resolved {t['resolved']}, still open {t['open']})",
        f"MTTA: {human.duration(k['mtta_s'])}   MTTR: {human.duration(k['mttr_s'])}",
        f"first-time fix: {human.percent(k['first_time_fix_rate'])}   "
        f"recurrence: {human.percent(k['recurrence_rate'])}   satisfaction: "
        + (f"{sat['mean']:g}/5 ({sat['count']} scores)" if sat["count"] else human.NONE),
        f"SLA clocks as of {human.when(k.get('as_of') or k['until'])}; compliance = met / "
        "(met + breached)"]
    for p, clocks in k["sla"].items():
        if not any(c["met"] + c["breached"] + c["pending"] for c in clocks.values()):
            lines.append(f"SLA {p}: no tickets")
            continue
        lines.append(f"SLA {p}: " + ", ".join(
            f"{name} {human.percent(c['compliance'])} ({c['met']} met, {c['breached']} "
            f"breached, {c['pending']} pending)" for name, c in clocks.items()))
    for c in k["causes"][:10]:
        lines.append(f"  cause {c['cause']}: {c['count']} "
                     f"({c['cumulative_percent']}% cumulative)")
    return lines


def monthly(args: argparse.Namespace) -> int:
    desk = open_desk(args)
    try:
        if args.month:
            try:
                year, month = (int(x) for x in args.month.split("-"))
                since, until = month_bounds(year, month)
            except ValueError:
                raise TransitionRefused(f"--month: expected YYYY-MM, got {args.month!r}") from None
        else:
            now = datetime.fromtimestamp(desk.clock.now(), UTC)
            y, m = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
            since, until = month_bounds(y, m)
        figures = desk.kpi(since, until)
    finally:
        close_desk(desk)
    text = (json.dumps(figures, indent=2) + "\n") if args.json else monthly_markdown(figures,
                                                                                       since)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
