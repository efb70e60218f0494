"""`fieldwatch report kpi|monthly` — the figures the service is managed by."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from fieldwatch.cli.desk import add_desk_options, close_desk, open_desk
from fieldwatch.collector.report import month_bounds, monthly_markdown
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
    t = out["tickets"]
    print(f"tickets opened {out['since']} .. {out['until']}: {t['opened']} "
          f"(acknowledged {t['acknowledged']}, resolved {t['resolved']}, still open {t['open']})")
    print(f"MTTA: {_dur(out['mtta_s'])}   MTTR: {_dur(out['mttr_s'])}")
    print(f"first-time fix: {_pct(out['first_time_fix_rate'])}   "
          f"recurrence: {_pct(out['recurrence_rate'])}   satisfaction: "
          f"{out['satisfaction']['mean']} ({out['satisfaction']['count']} scores)")
    for p, clocks in out["sla"].items():
        print(f"SLA {p}: response {_pct(clocks['response']['compliance'])}, "
              f"resolution {_pct(clocks['resolution']['compliance'])}")
    for c in out["causes"][:10]:
        print(f"  cause {c['cause']}: {c['count']} ({c['cumulative_percent']}% cumulative)")
    return 0


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
        text = monthly_markdown(desk.kpi(since, until), since)
    finally:
        close_desk(desk)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min"


def _pct(r: float | None) -> str:
    return "-" if r is None else f"{100 * r:.1f}%"
