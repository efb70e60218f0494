"""`fieldwatch agent run` — the agent daemon."""

from __future__ import annotations

import argparse
from pathlib import Path

from fieldwatch.cli.common import stop_on_signals


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("agent", help="the monitoring agent")
    asub = p.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    run = asub.add_parser("run", help="run the agent daemon in the foreground")
    run.add_argument("--config", type=Path, default=Path("/etc/fieldwatch/agent.yaml"))
    run.set_defaults(func=run_agent)


def run_agent(args: argparse.Namespace) -> int:
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.daemon import Agent
    from fieldwatch.config import load_config

    cfg = load_config(AgentConfig, args.config)
    stop = stop_on_signals()
    Agent(cfg).run(stop)
    return 0
