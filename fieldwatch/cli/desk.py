"""Opening the service desk from the command line: store, SLA and teams policy, actor."""

from __future__ import annotations

import argparse
import getpass
from typing import TYPE_CHECKING

from fieldwatch.cli.state import add_state_options, config_settings, locate

if TYPE_CHECKING:
    from fieldwatch.collector.tickets.service_desk import ServiceDesk


def add_desk_options(p: argparse.ArgumentParser) -> None:
    add_state_options(p)


def add_actor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", metavar="NAME", help="who does it (default: your login name)")


def actor(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def open_desk(args: argparse.Namespace, *, write: bool = False) -> ServiceDesk:
    """The same ServiceDesk the API uses, over the store named by --db/--data/--config (the
    config's `desk:` gives the SLA and teams policy)."""
    from fieldwatch.cli.state import open_engine_at
    from fieldwatch.clock import SystemClock
    from fieldwatch.collector.store.store import Store
    from fieldwatch.collector.tickets.config import DeskConfig, load_desk
    from fieldwatch.collector.tickets.service_desk import ServiceDesk

    settings = config_settings(args)
    cfg = settings[0]
    policy = load_desk(cfg.desk if cfg else DeskConfig())  # a broken SLA file is the first news
    where = locate(args, write=write, settings=settings)
    return ServiceDesk(Store(open_engine_at(where.url, where.source), policy), SystemClock())


def close_desk(desk: ServiceDesk) -> None:
    desk.store.engine.dispose()
