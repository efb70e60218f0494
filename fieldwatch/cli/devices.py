"""`fieldwatch devices list|history` — known devices, last seen, status, maintenance history."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

from fieldwatch.cli import human
from fieldwatch.cli.common import print_json, print_table
from fieldwatch.cli.desk import add_desk_options, close_desk, open_desk
from fieldwatch.cli.state import add_state_options, open_store
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
    from fieldwatch.cli import enroll  # enroll, rotate, retire, enrolled, enroll-audit

    enroll.register(dsub)


def list_devices(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        rows = add_refused(store.engine, [device_json(d) for d in store.list_devices()])
    finally:
        store.engine.dispose()
    if args.json:
        print_json(rows)
    else:
        now = time.time()
        print_table([device_row(d if d["confirmed"] else {**d, "status": "unconfirmed"}, now)
                     for d in rows],
                    ["site", "device", "status", "last_seen", "last_seq", "messages_total",
                     "missing", "backfilled", "refused"])
    return 0


def device_row(d: Mapping[str, Any], now: float) -> dict[str, str]:
    return {**{k: human.value(d.get(k)) for k in ("site", "device", "last_seq",
                                                  "messages_total", "missing", "backfilled",
                                                  "refused")},
            "status": human.value(d.get("status"))
            + (f" ({d['status_cause']})" if d.get("status_cause") else ""),
            "last_seen": human.relative(d.get("last_seen"), now)}


def device_history(args: argparse.Namespace) -> int:
    desk = open_desk(args)
    try:
        h = desk.device_history(args.device, args.site)
    finally:
        close_desk(desk)
    if args.json:
        print_json([h])
        return 0
    print(f"{h['site']}/{h['device']}: first seen {human.when(h['first_seen'])}, "
          f"last seen {human.when(h['last_seen'])}")
    for k, v in human.inventory(h["inventory"]):
        print(f"{k:>12}: {v}")
    rows = [{"id": str(t["id"]), "opened": human.when(t["opened_at"]), "state": t["state"],
             "priority": t["priority"], "rule": t["rule"], "title": t["title"],
             "fix": human.value((t["resolution"] or {}).get("fix"))} for t in h["tickets"]]
    print_table(rows, ["id", "opened", "state", "priority", "rule", "title", "fix"])
    return 0
