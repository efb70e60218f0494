"""`fieldwatch metrics series|query` — the metric history (docs/history.md)."""

from __future__ import annotations

import argparse
import sys
import time

from fieldwatch.cli.common import add_state_options, open_store, print_json, print_table
from fieldwatch.durations import parse_duration
from fieldwatch.errors import FieldwatchError
from fieldwatch.jsonout import iso


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("metrics", help="metric history: series and points")
    msub = p.add_subparsers(dest="metrics_command", required=True, metavar="ACTION")
    ls = msub.add_parser("series", help="the series kept (a series: device, metric, labels)")
    ls.add_argument("--device", help="exact device name")
    ls.add_argument("--site", help="exact site name")
    ls.add_argument("--metric", help="exact metric name")
    ls.add_argument("--since", help="only series with data this far back (default: all kept)")
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/history.md)")
    add_state_options(ls)
    ls.set_defaults(func=list_series)
    q = msub.add_parser("query", help="points of the series a selector matches")
    q.add_argument("selector", metavar="SELECTOR",
                   help='e.g. \'disk.used_percent{device="web-01", mount="/"}\'')
    q.add_argument("--since", default="1h", help="how far back (default 1h)")
    q.add_argument("--until", default=None, help="stop this long before now (default: now)")
    q.add_argument("--step", default=None, help="one point per step, e.g. 5m (default: the "
                   "data's own resolution, chosen by the range)")
    q.add_argument("--json", action="store_true", help="stable JSON (docs/history.md)")
    add_state_options(q)
    q.set_defaults(func=query_points)


def _durations(*texts: str | None) -> list[float]:
    try:
        return [parse_duration(t) if t else 0.0 for t in texts]
    except ValueError as exc:
        raise FieldwatchError(str(exc)) from None


def list_series(args: argparse.Namespace) -> int:
    from fieldwatch.collector.history import Query
    from fieldwatch.collector.history.jsonout import key_json
    from fieldwatch.collector.history.query import EmbeddedHistory
    from fieldwatch.collector.history.selector import matcher
    from fieldwatch.collector.rules.selectors import Selector

    [since] = _durations(args.since)
    now = time.time()  # the CLI is the edge: the query takes times as arguments
    sel = Selector({}, matcher("=", args.device) if args.device else None,
                   matcher("=", args.site) if args.site else None)
    query = Query(args.metric or "", sel, now - since if since else 0.0, now if since else 0.0)
    store = open_store(args)
    try:
        rows = [key_json(k) for k in EmbeddedHistory(store.engine).series(query)]
    finally:
        store.engine.dispose()
    if args.json:
        print_json(rows)
    else:
        print_table([{**r, "labels": ", ".join(f"{k}={v}" for k, v in r["labels"].items())}
                     for r in rows], ["site", "device", "metric", "labels"])
    return 0


def query_points(args: argparse.Namespace) -> int:
    from fieldwatch.collector.history.jsonout import build_query, series_json
    from fieldwatch.collector.history.query import EmbeddedHistory

    since, until = _durations(args.since, args.until)
    now = time.time()
    query = build_query(args.selector, now - since, now - until, args.step)
    store = open_store(args)
    try:
        found = EmbeddedHistory(store.engine).query(query)
    finally:
        store.engine.dispose()
    if args.json:
        print_json(series_json(s) for s in found)
        return 0
    if not found:
        print("(no data)", file=sys.stderr)
    for s in found:
        labels = ", ".join(f'{k}="{v}"' for k, v in s.key.labels)
        print(f"{s.key.site}/{s.key.device} {s.key.metric}{{{labels}}}: {len(s.points)} "
              f"points ({s.resolution})")
        lows, highs = s.minimum or [], s.maximum or []
        for i, (t, v) in enumerate(s.points):
            extra = f"  min {lows[i]:g}  max {highs[i]:g}" if i < len(lows) else ""
            print(f"  {iso(t)}  {v:g}{extra}")
    return 0
