"""`fieldwatch` — one entry point; each command lives in its own module, imported only when it
runs.

`fieldwatch agent run` must cost what `python -m fieldwatch.agent run` costs (issue 12 #10):
importing every command's module would load the collector side (SQLAlchemy, pydantic, the rule
engine) into the agent. So the top-level parser knows only the command names and their help
lines; the chosen command's module is imported and registers its own parser.

Only this layer prints and exits: errors raised below become a message and an exit code
(1 for invalid input found, 2 for bad usage or config). Output cut short by a closed pipe
(`| head`) ends quietly with 141, as a shell reports a process killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from fieldwatch import __version__
from fieldwatch.cli.common import CommandLineError
from fieldwatch.errors import ConfigError, FieldwatchError, LocatedError
from fieldwatch.redact import redact_logged_urls

# name → (module whose `register(sub)` adds the command, its line in `fieldwatch --help`);
# tests/cli/test_lazy.py checks each line matches what the module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("fieldwatch.cli.up", "all-in-one: broker, collector, local agent, web page"),
    "agent": ("fieldwatch.cli.agent", "the monitoring agent"),
    "collector": ("fieldwatch.cli.collector", "the collector (rules, tickets, API)"),
    "cluster": ("fieldwatch.cli.cluster", "cluster mode: declare the RabbitMQ topology"),
    "tickets": ("fieldwatch.cli.tickets", "service desk: list, show and work tickets"),
    "devices": ("fieldwatch.cli.devices", "known devices"),
    "rules": ("fieldwatch.cli.rules", "validate, test and backtest rule files"),
    "diag": ("fieldwatch.cli.diag", "remote diagnostics on devices"),
    "snmp": ("fieldwatch.cli.snmp", "SNMP tools"),
    "silences": ("fieldwatch.cli.silences", "maintenance windows: mute alerts by matcher and time"),
    "outbox": ("fieldwatch.cli.outbox", "deliveries to external desks: list, retry dead letters"),
    "report": ("fieldwatch.cli.report", "KPIs and monthly summaries"),
    "deadletter": ("fieldwatch.cli.deadletter", "messages the store refused: list, show"),
    "users": ("fieldwatch.cli.users", "desk users: add, passwords, site grants, API tokens"),
    "metrics": ("fieldwatch.cli.metrics", "metric history: series and points"),
}

SIGPIPE_EXIT = 141  # 128 + SIGPIPE


def command_of(argv: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option (top-level options take no
    values)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None, *, every: bool = False) -> argparse.ArgumentParser:
    """The parser with `command` (or, with `every`, each command) fully registered; the others
    are placeholders carrying only their help line."""
    parser = argparse.ArgumentParser(prog="fieldwatch", description=(
        "Remote equipment monitoring and auto-ticketing."))
    parser.add_argument("--version", action="version", version=f"fieldwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, helptext) in COMMANDS.items():
        if every or name == command:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=helptext)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader went away (`| head`): nothing more to say to it, and no traceback
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_EXIT


def _run(argv: list[str]) -> int:
    args = build_parser(command_of(argv)).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per cycle is noise
    redact_logged_urls()  # httpx logs each request's URL, credentials and all
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CommandLineError as exc:
        print(f"fieldwatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except LocatedError as exc:
        print(exc, file=sys.stderr)
        return 1
    except FieldwatchError as exc:
        print(f"fieldwatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = _store_failure(exc)  # the database went away during the command
        if line is None:
            raise
        print(f"fieldwatch {args.command}: {line}", file=sys.stderr)
        return 1


def _store_failure(exc: Exception) -> str | None:
    """One line for a failure of the store itself (classified as `store`), else None; imports
    the classifier only when the exception is SQLAlchemy's (the agent's commands stay light)."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    from fieldwatch.collector.store.failures import classify, describe

    return f"the store failed: {describe(exc)}" if classify(exc) == "store" else None
