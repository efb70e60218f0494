"""`fieldwatch silences add|list|expire` — maintenance windows added at run time.

The collector picks up changes within seconds (it re-reads silences every 5 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
import time
from typing import Any

from fieldwatch.cli import human
from fieldwatch.cli.common import print_json, print_table
from fieldwatch.cli.state import add_state_options, open_store
from fieldwatch.durations import parse_duration
from fieldwatch.errors import FieldwatchError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("silences", help="maintenance windows: mute alerts by matcher and time")
    ssub = p.add_subparsers(dest="silences_command", required=True, metavar="ACTION")
    add = ssub.add_parser("add", help="add a silence")
    add.add_argument("--match", "-m", action="append", required=True, metavar="KEY=MATCHER",
                     help="rule, device, site, type, severity or a label: value, !=value, "
                          "=~regex, !~regex (repeat for several; all must match)")
    add.add_argument("--start", help="ISO time or epoch seconds (default: now)")
    end = add.add_mutually_exclusive_group(required=True)
    end.add_argument("--end", help="ISO time or epoch seconds")
    end.add_argument("--duration", help="e.g. 2h, 30m")
    add.add_argument("--author", default=None, help="who (default: the login name)")
    add.add_argument("--reason", required=True, help="why (shown with every muted alert)")
    add.add_argument("--json", action="store_true", help="the new silence, as `list --json`")
    add_state_options(add)
    add.set_defaults(func=add_silence)
    ls = ssub.add_parser("list", help="running and scheduled silences")
    ls.add_argument("--all", action="store_true", help="ended ones too")
    ls.add_argument("--json", action="store_true")
    add_state_options(ls)
    ls.set_defaults(func=list_silences)
    ex = ssub.add_parser("expire", help="end a silence now")
    ex.add_argument("id")
    ex.add_argument("--json", action="store_true", help="the ended silence, as `list --json`")
    add_state_options(ex)
    ex.set_defaults(func=expire_silence)


def _when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FieldwatchError(f"bad time {text!r}: use ISO 8601 (2026-11-28T02:00Z) "
                              "or epoch seconds") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def _matchers(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FieldwatchError(f"--match {item!r}: write KEY=MATCHER, e.g. device=web-01")
        out[key.strip()] = value
    return out


def add_silence(args: argparse.Namespace) -> int:
    from fieldwatch.collector.store.silences import SilenceStore

    now = time.time()  # the CLI is the edge that reads the clock
    starts = _when(args.start) if args.start else now
    if args.duration:
        try:
            ends = starts + parse_duration(args.duration)
        except ValueError as exc:
            raise FieldwatchError(f"--duration: {exc}") from None
    else:
        ends = _when(args.end)
    author = args.author or getpass.getuser()
    store = open_store(args, write=True)
    try:
        silences = SilenceStore(store.engine)
        sid = silences.add(_matchers(args.match), starts, ends, author, args.reason, now)
        row = _one(silences.list(now, include_ended=True), sid)
    finally:
        store.engine.dispose()
    if args.json:
        print_json([row])
    else:
        print(f"silence {sid}: {human.when(starts)} → {human.when(ends)}")
    return 0


def _one(rows: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    return next(r for r in rows if str(r["id"]) == str(sid))


def list_silences(args: argparse.Namespace) -> int:
    from fieldwatch.collector.store.silences import SilenceStore

    store = open_store(args)
    try:
        rows = SilenceStore(store.engine).list(time.time(), include_ended=args.all)
    finally:
        store.engine.dispose()
    if args.json:
        print_json(rows)
        return 0
    print_table([{**r, "matchers": ",".join(f"{k}={v}" for k, v in r["matchers"].items()),
                  "starts": human.when(r["starts_at"]), "ends": human.when(r["ends_at"])}
                 for r in rows],
                ["id", "state", "matchers", "starts", "ends", "author", "reason"])
    return 0


def expire_silence(args: argparse.Namespace) -> int:
    from fieldwatch.collector.store.silences import SilenceStore

    now = time.time()
    store = open_store(args, write=True)
    try:
        silences = SilenceStore(store.engine)
        ok = silences.expire(args.id, now)
        rows = silences.list(now, include_ended=True) if ok else []
    finally:
        store.engine.dispose()
    if not ok:
        print(f"fieldwatch: no running silence {args.id!r}", file=sys.stderr)
        return 1
    if args.json:
        print_json([_one(rows, args.id)])
    else:
        print(f"silence {args.id} expired")
    return 0
