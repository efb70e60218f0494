"""Where the state is, for `fieldwatch up` and every command that reads or changes it.

The first of these that is given wins (README, "Where the data is"):

1. `--db URL`: a sqlite path or postgresql:// URL;
2. `--data DIR`: a `fieldwatch up` data directory;
3. `--config FILE`: a collector.yaml's `db:`, or an all-in-one fieldwatch.yaml's `data:`
   (only when the file sets it);
4. the environment variable FIELDWATCH_DATA;
5. `./fieldwatch-data`, for a command only when it exists.

`fieldwatch up` chooses its directory by steps 2-5 and is the only command that creates one.
No other command ever creates a data directory: run from another directory, a ticket or device
command says where it looked instead of reading a fresh empty database. Commands that only
read also refuse a directory or sqlite file without a database in it; commands that change
state create the database file in an existing data directory, or where `--db`/`db:` names it.
Relative paths are taken from the current directory, as `fieldwatch up` takes them.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldwatch.cli.common import CommandLineError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from fieldwatch.collector.config import CollectorConfig
    from fieldwatch.collector.store.store import Store

ENV = "FIELDWATCH_DATA"
DEFAULT_DATA = Path("fieldwatch-data")
DB_FILE = "fieldwatch.db"
# keys only the all-in-one config has (fieldwatch/cli/up.py UpConfig)
_UP_KEYS = frozenset({"data", "mqtt_port", "http_port", "agent", "collector"})


@dataclass(frozen=True)
class State:
    url: str  # the store
    data: Path | None  # the `fieldwatch up` data directory holding it, if it is in one
    source: str  # how it was found, for messages: "--data", "$FIELDWATCH_DATA", ...
    collector: CollectorConfig | None  # --config's collector settings (desk, diag, broker)


def add_state_options(p: argparse.ArgumentParser, config_help: str | None = None) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", type=Path, metavar="DIR",
                   help=f"`fieldwatch up`'s data directory (default: ${ENV}, else "
                        "./fieldwatch-data if it exists)")
    g.add_argument("--db", metavar="URL", help="sqlite path or postgresql:// URL")
    p.add_argument("--config", type=Path, metavar="FILE", help=config_help or (
        "collector.yaml (its db: and desk: settings) or fieldwatch.yaml (its data:)"))


def read_config(path: Path) -> tuple[CollectorConfig, Path | None, str | None]:
    """(collector settings, data directory, db URL) from a collector.yaml or a fieldwatch.yaml;
    the last two only where the file sets them."""
    from fieldwatch.config import validate_doc
    from fieldwatch.errors import ConfigError, LocatedError
    from fieldwatch.yamlmarks import load_yaml_file

    try:
        doc = load_yaml_file(path)
    except LocatedError as exc:
        raise ConfigError(exc.problems) from None
    top = doc.data if isinstance(doc.data, dict) else {}
    if _UP_KEYS & set(top) or isinstance(top.get("broker"), str):
        from fieldwatch.cli.up import UpConfig

        up: UpConfig = validate_doc(UpConfig, doc)
        return up.collector, (up.data if "data" in up.model_fields_set else None), None
    from fieldwatch.collector.config import CollectorConfig

    cfg: CollectorConfig = validate_doc(CollectorConfig, doc)
    return cfg, None, (cfg.db if "db" in cfg.model_fields_set else None)


def up_data_dir(data: Path | None, config_data: Path | None) -> tuple[Path, str]:
    """`fieldwatch up`'s data directory (steps 2-5; it creates the default) and its source."""
    if data is not None:
        return data.expanduser().resolve(), "--data"
    if config_data is not None:
        return config_data.expanduser().resolve(), "config data:"
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser().resolve(), f"${ENV}"
    return DEFAULT_DATA.resolve(), "default"


Settings = tuple["CollectorConfig | None", Path | None, str | None]


def config_settings(args: argparse.Namespace) -> Settings:
    """read_config of --config, or nothing."""
    config: Path | None = getattr(args, "config", None)
    return read_config(config) if config else (None, None, None)


def locate(args: argparse.Namespace, *, write: bool = False,
           settings: Settings | None = None) -> State:
    """The state named by the command line, its config or the environment (steps 1-5);
    `settings`: config_settings(args) when the caller has read them already."""
    config: Path | None = getattr(args, "config", None)
    cfg, cfg_data, cfg_db = settings or config_settings(args)
    if getattr(args, "db", None):
        return _database(args.db, "--db", cfg, write)
    if getattr(args, "data", None) is not None:
        return _directory(Path(args.data), "--data", cfg, write)
    if cfg_db:
        return _database(cfg_db, f"{config}: db", cfg, write)
    if cfg_data is not None:
        return _directory(cfg_data, f"{config}: data", cfg, write)
    if os.environ.get(ENV):
        return _directory(Path(os.environ[ENV]), f"${ENV}", cfg, write)
    if DEFAULT_DATA.is_dir():
        return _directory(DEFAULT_DATA, "./fieldwatch-data", cfg, write)
    named = f"; {config} names no db: or data:" if config else ""
    raise CommandLineError(
        f"no fieldwatch data found: no ./fieldwatch-data in {Path.cwd()} and ${ENV} is not set"
        f"{named}. Run it where `fieldwatch up` keeps its data, or say where: --data DIR, "
        f"--db URL, --config FILE or {ENV}=DIR")


def _directory(d: Path, source: str, cfg: CollectorConfig | None, write: bool) -> State:
    d = d.expanduser().resolve()
    if not d.is_dir():
        raise CommandLineError(f"{source}: no data directory {d} (only `fieldwatch up` "
                               "creates one)")
    db = d / DB_FILE
    if not write and not db.is_file():
        raise CommandLineError(f"{source}: {d} holds no {DB_FILE}: not a `fieldwatch up` data "
                               "directory, or it has not started yet")
    return State(f"sqlite:///{db}", d, source, cfg)


def _database(db: str, source: str, cfg: CollectorConfig | None, write: bool) -> State:
    from fieldwatch.collector.store.db import db_url

    url = db_url(db)
    if url.startswith("sqlite:///") and not write:
        path = Path(url[len("sqlite:///"):])
        if not path.is_file():
            raise CommandLineError(f"{source}: no database at {path}")
    return State(url, None, source, cfg)


def open_store(args: argparse.Namespace, *, write: bool = False, policy: Any = None) -> Store:
    """The store `locate` finds, schema migrated (the collector does the same at start)."""
    from fieldwatch.collector.store.store import Store

    where = locate(args, write=write)
    return Store(open_engine_at(where.url, where.source), policy)


def open_engine_at(url: str, source: str = "") -> sa.Engine:
    """`open_engine(url)`; a store that cannot be reached is StoreUnavailable, one line saying
    what, where and why (the CLI prints it and exits 1), not a traceback."""
    import sqlalchemy as sa

    from fieldwatch.collector.store.db import open_engine
    from fieldwatch.collector.store.failures import classify, describe
    from fieldwatch.errors import StoreUnavailable

    try:
        return open_engine(url)
    except Exception as exc:  # noqa: BLE001 - only the store's failures are put in one line
        if classify(exc) != "store":
            raise
        where = sa.make_url(url).render_as_string(hide_password=True)
        via = f" (from {source})" if source else ""
        raise StoreUnavailable(f"cannot reach the store {where}{via}: {describe(exc)}"
                               ) from None
