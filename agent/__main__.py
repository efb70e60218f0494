"""`python -m fieldwatch.agent run --config F`: the agent without the rest of the CLI.

`fieldwatch agent run` loads every command group (collector, store, rules...); the service
unit starts the agent through here instead, which imports only what the agent needs and keeps
its memory footprint small. Same arguments, same exit codes. Its three options are read by
hand: argparse and gettext would cost 0.3 MB of the agent's 30 MB budget (issue 3).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from fieldwatch.errors import ConfigError, FieldwatchError

USAGE = """usage: python -m fieldwatch.agent [-v] run [--config FILE]

  run              run the agent daemon in the foreground
  --config FILE    agent config (default: /etc/fieldwatch/agent.yaml)
  -v, --verbose    debug logging
"""


class UsageError(Exception):
    pass


def parse_args(argv: Sequence[str]) -> tuple[Path, bool]:
    """(config file, verbose) from `[-v] run [--config FILE] [-v]`."""
    config, verbose, action = Path("/etc/fieldwatch/agent.yaml"), False, None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-v", "--verbose"):
            verbose = True
        elif arg == "run" and action is None:
            action = arg
        elif arg == "--config" and action and args and not args[0].startswith("-"):
            config = Path(args.pop(0))  # `--config -v` is a missing FILE, as argparse says
        elif arg.startswith("--config=") and action:
            config = Path(arg.split("=", 1)[1])
        elif arg == "--config" and action:
            raise UsageError("--config needs a FILE")
        else:
            raise UsageError(f"unexpected argument {arg!r}")
    if action is None:
        raise UsageError("the action is missing (run)")
    return config, verbose


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE, end="")
        return 0
    try:
        config, verbose = parse_args(argv)
    except UsageError as exc:
        print(f"{USAGE}python -m fieldwatch.agent: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.daemon import Agent

    from fieldwatch.config import load_config

    try:  # the config, and the files it names (keys, SNMP profiles)
        agent = Agent(load_config(AgentConfig, config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        agent.run(stop)
    except FieldwatchError as exc:
        print(f"fieldwatch agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
