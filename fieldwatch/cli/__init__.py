"""`fieldwatch` — one entry point; each command group lives in its own module.

Only this layer prints and exits: errors raised below become a message and an exit code
(1 for invalid input found, 2 for bad usage or config).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fieldwatch import __version__
from fieldwatch.cli import (
    agent,
    collector,
    deadletter,
    devices,
    diag,
    metrics,
    outbox,
    report,
    rules,
    silences,
    snmp,
    tickets,
    up,
)
from fieldwatch.errors import ConfigError, FieldwatchError, LocatedError

GROUPS = (up, agent, collector, tickets, devices, rules, diag, snmp, silences, outbox, report,
          deadletter, metrics)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fieldwatch", description=(
        "Remote equipment monitoring and auto-ticketing."))
    parser.add_argument("--version", action="version", version=f"fieldwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per cycle is noise
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except LocatedError as exc:
        print(exc, file=sys.stderr)
        return 1
    except FieldwatchError as exc:
        print(f"fieldwatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
