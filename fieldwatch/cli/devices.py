"""`fieldwatch devices list` — known devices, last seen, status."""

from __future__ import annotations

import argparse

from fieldwatch.cli.common import add_state_options, open_store, print_json, print_table
from fieldwatch.cli.desk import add_desk_options, close_desk, open_desk
from fieldwatch.collector.store.refused import add_refused
from fieldwatch.jsonout import device_json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("devices", help="known devices")
    dsub = p.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    ls = dsub.add_parser("list", help="every device the collector has heard from")
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/operations.md)")
    add_state_options(ls)
    ls.set_defaults(func=list_devices)
    hist = dsub.add_parser("history", help="a device's whole maintenance history (its tickets)")
    hist.add_argument("device", metavar="DEVICE", help="DEVICE or SITE/DEVICE")
    hist.add_argument("--site")
    hist.add_argument("--json", action="store_true", help="stable JSON (docs/operations.md)")
    add_desk_options(hist)
    hist.set_defaults(func=device_history)


def list_devices(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        rows = add_refused(store.engine, [device_json(d) for d in store.list_devices()])
    finally:
        store.engine.dispose()
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["site", "device", "status", "last_seen", "last_seq",
                           "messages_total", "missing", "backfilled", "refused"])
    return 0


def device_history(args: argparse.Namespace) -> int:
    desk = open_desk(args)
    try:
        h = desk.device_history(args.device, args.site)
    finally:
        close_desk(desk)
    if args.json:
        print_json([h])
        return 0
    print(f"{h['site']}/{h['device']}: first seen {h['first_seen']}, last seen {h['last_seen']}")
    if h["inventory"]:
        print("inventory: " + ", ".join(f"{k}={v}" for k, v in h["inventory"].items()))
    rows = [{**t, "fix": (t["resolution"] or {}).get("fix", "")} for t in h["tickets"]]
    print_table(rows, ["id", "opened_at", "state", "priority", "rule", "title", "fix"])
    return 0
