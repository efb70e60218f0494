"""Options and output shared by the commands that read state."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from fieldwatch.collector.store.db import db_url, open_engine
from fieldwatch.collector.store.store import Store


def add_state_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", metavar="DIR", help="data directory (default ./fieldwatch-data)")
    g.add_argument("--db", metavar="URL", help="sqlite path or postgresql:// URL")


def open_store(args: argparse.Namespace) -> Store:
    return Store(open_engine(db_url(args.db, args.data)))


def print_json(rows: Iterable[dict[str, Any]]) -> None:
    json.dump(list(rows), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    text = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip())


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, for daemons to wait on and then shut down cleanly."""
    stop = threading.Event()

    def _handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    return stop
