"""`fieldwatch rules check|test|backtest` — validate, unit-test and replay rule files."""

from __future__ import annotations

import argparse
import json
import sys

from fieldwatch.cli.state import add_state_options
from fieldwatch.collector.rules.loader import load_rules
from fieldwatch.durations import parse_duration
from fieldwatch.errors import RuleError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rules", help="validate, test and backtest rule files")
    rsub = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rsub.add_parser("check", help="validate rule files; file:line:col errors, exit 1")
    check.add_argument("paths", nargs="*", default=["rules"], metavar="PATH")
    check.set_defaults(func=check_rules)
    test = rsub.add_parser("test", help="run rule unit tests (input series → expected alerts)")
    test.add_argument("paths", nargs="+", metavar="FILE")
    test.add_argument("--json", action="store_true", help="machine-readable results")
    test.set_defaults(func=test_rules)
    bt = rsub.add_parser("backtest", help="replay stored metric history through rules")
    bt.add_argument("rules", nargs="+", metavar="RULES")
    bt.add_argument("--since", default="7d", help="how far back to replay (default 7d)")
    bt.add_argument("--until", default=None, help="stop this long before now (default: now)")
    bt.add_argument("--source", choices=("history", "messages"), default="history",
                    help="replay the metric history (default; reaches back history.raw_for) "
                    "or the stored raw messages (reaches back keep_raw_for)")
    bt.add_argument("--json", action="store_true", help="machine-readable report")
    add_state_options(bt)
    bt.set_defaults(func=backtest_rules)


def _problems(exc: RuleError) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return 1


def check_rules(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(args.paths)
    except RuleError as exc:
        return _problems(exc)
    print(f"{len(ruleset.rules)} rules OK")
    return 0


def test_rules(args: argparse.Namespace) -> int:
    from fieldwatch.collector.rules.testing import run_test_files

    try:
        results = run_test_files(args.paths)
    except RuleError as exc:
        return _problems(exc)
    failed = [r for r in results if not r.ok]
    if args.json:
        json.dump([{"file": r.file, "name": r.name, "ok": r.ok, "failures": r.failures}
                   for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.file}: {r.name}")
            for f in r.failures:
                print(f"    {f}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def backtest_rules(args: argparse.Namespace) -> int:
    import time

    from fieldwatch.cli.state import open_store
    from fieldwatch.collector.rules.backtest import backtest, format_report

    try:
        ruleset = load_rules(args.rules)
    except RuleError as exc:
        return _problems(exc)
    try:
        since = parse_duration(args.since)
        until = parse_duration(args.until) if args.until else 0.0
    except ValueError as exc:
        print(f"fieldwatch: {exc}", file=sys.stderr)
        return 2
    now = time.time()  # the CLI is the edge: the replay itself takes times as arguments
    store = open_store(args)
    try:
        report = backtest(store.engine, ruleset, now - since, now - until,
                          store.policy.sla.verify_window, source=args.source)
    finally:
        store.engine.dispose()
    if args.json:
        json.dump(report.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0
