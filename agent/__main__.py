"""`python -m fieldwatch.agent run --config F`: the agent without the rest of the CLI.

`fieldwatch agent run` loads every command group (collector, store, rules...); the service
unit starts the agent through here instead, which imports only what the agent needs and keeps
its memory footprint small. Same arguments, same exit codes.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from fieldwatch.errors import ConfigError, FieldwatchError


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fieldwatch.agent")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run the agent daemon in the foreground")
    run.add_argument("--config", type=Path, default=Path("/etc/fieldwatch/agent.yaml"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.daemon import Agent

    from fieldwatch.config import load_config

    try:  # the config, and the files it names (keys, SNMP profiles)
        agent = Agent(load_config(AgentConfig, args.config))
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
