"""`fieldwatch rules check` — validate rule files before the collector sees them."""

from __future__ import annotations

import argparse
import sys

from fieldwatch.collector.rules.loader import load_rules
from fieldwatch.errors import RuleError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rules", help="validate and test rule files")
    rsub = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rsub.add_parser("check", help="validate rule files; file:line:col errors, exit 1")
    check.add_argument("paths", nargs="*", default=["rules"], metavar="PATH")
    check.set_defaults(func=check_rules)


def check_rules(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(args.paths)
    except RuleError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    print(f"{len(ruleset.rules)} rules OK")
    return 0
