"""`fieldwatch deadletter list|show` — messages the store refused as data, set aside.

The collector's worker puts a message here when the store rejects it (a value out of range…)
so the rest of its batch is stored (collector/store/writer.py). Reads the store directly, so
it works while the collector runs. `show ID --payload` prints the payload as received, e.g. to
republish it with `mosquitto_pub -t TOPIC -s` once the cause is fixed.
"""

from __future__ import annotations

import argparse
import sys

from fieldwatch.cli.common import add_state_options, open_store, print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("deadletter", help="messages the store refused: list, show")
    dsub = p.add_subparsers(dest="deadletter_command", required=True, metavar="ACTION")
    ls = dsub.add_parser("list", help="set-aside messages, newest first")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/operations.md)")
    add_state_options(ls)
    ls.set_defaults(func=list_letters)
    show = dsub.add_parser("show", help="one set-aside message with its payload")
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--payload", action="store_true",
                      help="print only the payload, byte for byte")
    add_state_options(show)
    show.set_defaults(func=show_letter)


def list_letters(args: argparse.Namespace) -> int:
    from fieldwatch.collector.store.deadletter import DeadLetters, letter_json

    store = open_store(args)
    try:
        letters = DeadLetters(store.engine)
        rows = [letter_json(r) for r in letters.list(args.limit)]
        total = letters.count()
    finally:
        store.engine.dispose()
    if args.json:
        print_json(rows)
        return 0
    print_table([{**r, "reason": r["reason"][:80]} for r in rows],
                ["id", "at", "kind", "site", "device", "error", "reason"])
    print(f"{total} set aside in all")
    return 0


def show_letter(args: argparse.Namespace) -> int:
    from fieldwatch.collector.store.deadletter import DeadLetters, letter_json

    store = open_store(args)
    try:
        row = DeadLetters(store.engine).get(args.id)
    finally:
        store.engine.dispose()
    if row is None:
        print(f"fieldwatch: no dead letter {args.id}", file=sys.stderr)
        return 1
    if args.payload:
        sys.stdout.buffer.write(bytes(row["payload"]))
        sys.stdout.flush()
        return 0
    print_json([letter_json(row)])
    return 0
