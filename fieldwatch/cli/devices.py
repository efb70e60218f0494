"""`fieldwatch devices list` — known devices, last seen, status."""

from __future__ import annotations

import argparse

from fieldwatch.cli.common import add_state_options, open_store, print_json, print_table
from fieldwatch.jsonout import device_json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("devices", help="known devices")
    dsub = p.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    ls = dsub.add_parser("list", help="every device the collector has heard from")
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/operations.md)")
    add_state_options(ls)
    ls.set_defaults(func=list_devices)


def list_devices(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        rows = [device_json(d) for d in store.list_devices()]
    finally:
        store.engine.dispose()
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["site", "device", "status", "last_seen", "last_seq",
                           "messages_total", "missing", "backfilled"])
    return 0
