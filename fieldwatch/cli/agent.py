"""`fieldwatch agent run | install | uninstall` — the agent daemon and its system service."""

from __future__ import annotations

import argparse
from pathlib import Path

from fieldwatch.cli.common import stop_on_signals

DEFAULT_CONFIG = Path("/etc/fieldwatch/agent.yaml")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("agent", help="the monitoring agent")
    asub = p.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    run = asub.add_parser("run", help="run the agent daemon in the foreground")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    run.set_defaults(func=run_agent)

    ins = asub.add_parser("install", help="install the agent as a hardened systemd service")
    ins.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                     help="agent.yaml the service runs with (validated first)")
    ins.add_argument("--dry-run", action="store_true", help="print the unit, change nothing")
    ins.add_argument("--user", default="fieldwatch", help="system user to run as")
    ins.add_argument("--no-start", action="store_true", help="enable, but do not start now")
    ins.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    ins.set_defaults(func=install_agent)

    uni = asub.add_parser("uninstall", help="stop, disable and remove the systemd service")
    uni.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    uni.set_defaults(func=uninstall_agent)


def run_agent(args: argparse.Namespace) -> int:
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.daemon import Agent
    from fieldwatch.config import load_config

    cfg = load_config(AgentConfig, args.config)
    stop = stop_on_signals()
    Agent(cfg).run(stop)
    return 0


def install_agent(args: argparse.Namespace) -> int:
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.install import UnitOptions, install, render_unit
    from fieldwatch.config import load_config

    config = args.config.resolve()
    cfg = load_config(AgentConfig, config)  # a broken config fails here, not in the service
    opts = UnitOptions(config=config, user=args.user)
    if args.dry_run:
        print(render_unit(cfg, opts), end="")
        return 0
    install(cfg, opts, root=args.root, start=not args.no_start)
    return 0


def uninstall_agent(args: argparse.Namespace) -> int:
    from fieldwatch.agent.install import uninstall

    uninstall(root=args.root)
    return 0
