"""`fieldwatch agent run | install | uninstall | acl` — the agent daemon, its system service and
its broker ACL."""

from __future__ import annotations

import argparse
import sys
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
    ins.add_argument("--config", type=Path,
                     help=f"agent.yaml the service runs with (validated first; default "
                          f"{DEFAULT_CONFIG})")
    ins.add_argument("--dry-run", action="store_true", help="print the unit, change nothing")
    ins.add_argument("--user", default="fieldwatch", help="system user to run as")
    ins.add_argument("--python", default=sys.executable,
                     help="interpreter the service runs (default: this one, %(default)s)")
    ins.add_argument("--no-start", action="store_true", help="enable, but do not start now")
    ins.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    ins.set_defaults(func=install_agent)

    acl = asub.add_parser("acl", help="print the Mosquitto ACL lines for this agent's SNMP "
                                      "targets (docs/operations.md)")
    acl.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    acl.set_defaults(func=print_acl)

    en = asub.add_parser("enroll", help="trade a one-time token for this device's broker "
                                        "credentials and write its config (docs/enroll.md)")
    en.add_argument("--collector", required=True, metavar="URL",
                    help="the collector's HTTPS address, e.g. https://collector.example:8443")
    en.add_argument("--token", required=True,
                    help="from `fieldwatch devices enroll`; - reads it from standard input")
    en.add_argument("--ca", type=Path, metavar="PEM",
                    help="CA certificate that signed the collector's (default: system CAs)")
    en.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                    help="agent config to write; secrets go beside it (default %(default)s)")
    en.add_argument("--state-dir", type=Path, help="the agent's state_dir (default: its own)")
    en.add_argument("--allow-http", action="store_true", help=argparse.SUPPRESS)
    en.set_defaults(func=enroll_agent)

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


def enroll_agent(args: argparse.Namespace) -> int:
    from fieldwatch.agent.enroll import fetch, write

    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    bundle = fetch(args.collector, token, args.ca, allow_http=args.allow_http)
    written = write(bundle, args.config, args.state_dir)
    print(f"enrolled as {bundle['site']}/{bundle['device']} (broker user "
          f"{bundle['username']}); wrote {', '.join(str(p) for p in written)} (mode 0600)")
    print(f"start it: fieldwatch agent run --config {args.config}")
    return 0


def install_agent(args: argparse.Namespace) -> int:
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.install import UnitOptions, install, render_unit, service_problems
    from fieldwatch.config import load_config

    config = (args.config or DEFAULT_CONFIG).resolve()
    defaults = args.config is None and args.dry_run and not config.exists()
    if defaults:
        print(f"note: {config} does not exist yet; this is the unit for a default config",
              file=sys.stderr)
        cfg = AgentConfig()
    else:
        cfg = load_config(AgentConfig, config)  # a broken config fails here, not in the service
    opts = UnitOptions(config=config, user=args.user, python=args.python)
    problems = service_problems(cfg, opts, config=not defaults)  # what would stop the service
    for problem in problems:
        print(f"{'warning' if args.dry_run else 'error'}: {problem}", file=sys.stderr)
    if args.dry_run:
        print(render_unit(cfg, opts), end="")
        return 0
    if problems:
        print("fieldwatch agent install: nothing installed", file=sys.stderr)
        return 1
    install(cfg, opts, root=args.root, start=not args.no_start)
    return 0


def print_acl(args: argparse.Namespace) -> int:
    from fieldwatch.agent.acl import render_acl
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.config import load_config

    print(render_acl(load_config(AgentConfig, args.config), str(args.config)), end="")
    return 0


def uninstall_agent(args: argparse.Namespace) -> int:
    from fieldwatch.agent.install import uninstall

    uninstall(root=args.root)
    return 0
