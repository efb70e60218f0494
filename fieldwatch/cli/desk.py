"""Opening the service desk from the command line: store, SLA and teams policy, actor."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from fieldwatch.cli.common import add_state_options
from fieldwatch.clock import SystemClock
from fieldwatch.collector.service_desk import ServiceDesk
from fieldwatch.collector.store.db import db_url, open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.config import DeskConfig, load_desk


def add_desk_options(p: argparse.ArgumentParser) -> None:
    add_state_options(p)
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="collector.yaml whose `db` and `desk:` (SLA, teams) to use")


def add_actor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", metavar="NAME", help="who does it (default: your login name)")


def actor(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def open_desk(args: argparse.Namespace) -> ServiceDesk:
    """The same ServiceDesk the API uses, over the store named by --db/--data/--config."""
    desk_cfg, db = DeskConfig(), None
    if getattr(args, "config", None):
        from fieldwatch.collector.config import CollectorConfig
        from fieldwatch.config import load_config

        cfg = load_config(CollectorConfig, args.config)
        desk_cfg, db = cfg.desk, cfg.db
    url = db_url(args.db, args.data) if (args.db or args.data or not db) else db_url(db)
    return ServiceDesk(Store(open_engine(url), load_desk(desk_cfg)), SystemClock())


def close_desk(desk: ServiceDesk) -> None:
    desk.store.engine.dispose()
