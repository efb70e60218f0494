"""Output and signals shared by the commands. Light on purpose: the agent's command imports it
(no store, no pydantic here; where the state is: fieldwatch/cli/state.py)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from fieldwatch.errors import FieldwatchError


class CommandLineError(FieldwatchError):
    """The command line asks for what cannot be (a port in use, no data directory): the CLI
    prints it on one line and exits 2, like an argparse usage error."""


def print_json(rows: Iterable[dict[str, Any]]) -> None:
    json.dump(list(rows), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Columns of already human text (fieldwatch/cli/human.py); None shows as "—"."""
    if not rows:
        print("(none)")
        return
    text = [[("—" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
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


# Where the state is lives in fieldwatch/cli/state.py; these two keep command modules written
# against their old place here working (imported on call, so this module stays light).

def add_state_options(p: Any, config_help: str | None = None) -> None:
    from fieldwatch.cli import state

    state.add_state_options(p, config_help)


def open_store(args: Any, *, write: bool = False) -> Any:
    from fieldwatch.cli import state

    return state.open_store(args, write=write)
