"""`fieldwatch diag run|list|keygen|onsite` and `fieldwatch tickets approve` — remote
diagnostics from the command line (docs/diagnostics.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fieldwatch.cli import human
from fieldwatch.cli.common import print_json, print_table
from fieldwatch.cli.state import ENV, add_state_options, config_settings, locate
from fieldwatch.durations import parse_duration

DEFAULT_CONFIG = Path("/etc/fieldwatch/collector.yaml")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("diag", help="remote diagnostics on devices")
    dsub = p.add_subparsers(dest="diag_command", required=True, metavar="ACTION")
    run = dsub.add_parser("run", help="run an allow-listed diagnostic on a device")
    run.add_argument("device", help="DEVICE or SITE/DEVICE")
    run.add_argument("check", help="e.g. ping, tcp_port, disk_usage (see `diag list`)")
    run.add_argument("args", nargs="*", metavar="NAME=VALUE", help="arguments, e.g. host=gw")
    _common(run)
    run.add_argument("--ticket", type=int, help="attach to this ticket (and use its approval)")
    run.add_argument("--by", default="cli", help="who asks (recorded on the ticket)")
    run.set_defaults(func=run_diag)
    ls = dsub.add_parser("list", help="the diagnostics a device offers, with its policy")
    ls.add_argument("device", help="DEVICE or SITE/DEVICE")
    _common(ls)
    ls.set_defaults(func=list_diag)
    key = dsub.add_parser("keygen", help="create the collector's Ed25519 signing key pair")
    key.add_argument("--out", type=Path, default=Path("/etc/fieldwatch"),
                     help="directory for diag-collector.key and diag-collector.pub")
    key.add_argument("--force", action="store_true", help="replace an existing key pair")
    key.set_defaults(func=keygen)
    shw = dsub.add_parser("show", help="a ticket's diagnostics with their full output")
    shw.add_argument("id", type=int)
    shw.add_argument("--json", action="store_true")
    add_state_options(shw)
    shw.set_defaults(func=show)
    ons = dsub.add_parser("onsite", help="mark a ticket needs_onsite with a visit checklist")
    ons.add_argument("id", type=int)
    ons.add_argument("--by", required=True)
    ons.add_argument("--reason", default="remote diagnosis did not fix it")
    ons.add_argument("--json", action="store_true")
    add_state_options(ons, config_help="collector config: its database, and its rules to name "
                      "the metric to check")
    ons.set_defaults(func=onsite)


def _common(p: argparse.ArgumentParser) -> None:
    add_state_options(p, config_help=(
        "collector config: broker, database and diag.private_key (default "
        f"{DEFAULT_CONFIG} if it exists; without it: `fieldwatch up`'s data directory, its "
        "key and broker)"))
    p.add_argument("--mqtt-port", type=int, help="broker port when no config is used")
    p.add_argument("--timeout", type=parse_duration, default=60.0, help="wait this long")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def register_ticket_actions(tsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Hook for `fieldwatch tickets`: the `approve` action."""
    ap = tsub.add_parser("approve", help="record an approval of a changing action on a ticket")
    ap.add_argument("id", type=int)
    ap.add_argument("action", help="the diagnostic to authorize, e.g. restart_service")
    ap.add_argument("--by", required=True, help="who authorizes it")
    ap.add_argument("--on-behalf-of", default="", help="the customer it is authorized for")
    ap.add_argument("--note", default="")
    ap.add_argument("--valid-for", type=parse_duration, default=86400.0,
                    help="use it within this long (default 24h); it is good for one run")
    ap.add_argument("--json", action="store_true", help="the approval recorded")
    add_state_options(ap)
    ap.set_defaults(func=approve)


def _diag_store(args: argparse.Namespace, write: bool = False):  # type: ignore[no-untyped-def]
    from fieldwatch.cli.state import open_engine_at
    from fieldwatch.collector.diag.store import DiagStore

    where = locate(args, write=write)
    return DiagStore(open_engine_at(where.url, where.source))


def _collector(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(collector config, its DiagStore): from --config, or /etc/fieldwatch/collector.yaml when
    no other place is named; next to `fieldwatch up` (its data directory), with up's MQTT port
    and signing key."""
    import msgspec

    from fieldwatch.cli.state import open_engine_at, read_config
    from fieldwatch.collector.config import CollectorConfig
    from fieldwatch.collector.diag.local import KEY_NAME
    from fieldwatch.collector.diag.store import DiagStore

    settings = config_settings(args)
    if settings[0] is None and DEFAULT_CONFIG.exists() and not (
            args.data or args.db or os.environ.get(ENV)):
        default = read_config(DEFAULT_CONFIG)[0]
        settings = (default, None, default.db)  # its database, even when left at the default
    cfg = settings[0] or CollectorConfig()
    where = locate(args, settings=settings)
    port = getattr(args, "mqtt_port", None)
    if where.data is not None:  # a `fieldwatch up` data directory: its broker and its key
        port = port or _up_port(where.data)
        key = where.data / "keys" / f"{KEY_NAME}.key"
        if cfg.diag.private_key is None and key.exists():
            cfg = cfg.model_copy(update={"diag": cfg.diag.model_copy(
                update={"private_key": key})})
    if port:
        cfg = cfg.model_copy(update={"broker": msgspec.structs.replace(cfg.broker, port=port)})
    return cfg, DiagStore(open_engine_at(where.url, where.source))


def _up_port(data: Path) -> int | None:
    """The MQTT port `fieldwatch up` wrote into its data directory (it may be a free port)."""
    try:
        return int((data / "mqtt-port").read_text().strip())
    except (OSError, ValueError):
        return None


def _parse_args(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"fieldwatch diag run: expected NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


def _send(args: argparse.Namespace, check: str, params: dict[str, str],
          ticket: int | None, by: str):  # type: ignore[no-untyped-def]
    from fieldwatch.clock import SystemClock
    from fieldwatch.collector.diag.oneshot import resolve_device, run_once

    cfg, store = _collector(args)
    try:
        site, device = resolve_device(store, args.device)
        return run_once(cfg, store, SystemClock(), site, device, check, params, ticket=ticket,
                        by=by, timeout=args.timeout)
    finally:
        store.engine.dispose()


def run_diag(args: argparse.Namespace) -> int:
    res = _send(args, args.check, _parse_args(args.args), args.ticket, args.by)
    if res is None:
        print(f"no answer from {args.device} within {args.timeout:g}s", file=sys.stderr)
        return 1
    if args.json:
        import msgspec

        print(json.dumps(msgspec.to_builtins(res), indent=2))
    else:
        sys.stdout.write(res.output)
        tail = f" ({res.reason}: {res.detail})" if res.status == "refused" else (
            f" — output cut at the cap ({res.output_bytes} bytes printed)" if res.truncated
            else "")
        print(f"[{res.check} on {res.site}/{res.device}: {res.status}"
              f"{'' if res.exit_code is None else f', exit {res.exit_code}'}{tail}]",
              file=sys.stderr)
    return 0 if res.status == "ok" else 1


def list_diag(args: argparse.Namespace) -> int:
    res = _send(args, "list", {}, None, "cli")
    if res is None:
        print(f"no answer from {args.device} within {args.timeout:g}s", file=sys.stderr)
        return 1
    if res.status != "ok":
        print(f"{args.device} refused: {res.reason}: {res.detail}", file=sys.stderr)
        return 1
    checks = json.loads(res.output)
    if args.json:
        print_json(checks)
        return 0
    rows = [{**c, "args": " ".join(a["name"] + ("*" if a.get("required") else "")
                                   for a in c["args"])} for c in checks]
    print_table(rows, ["name", "class", "policy", "args", "help"])
    return 0


def keygen(args: argparse.Namespace) -> int:
    from fieldwatch import signing

    key, pub = signing.generate(args.out, force=args.force)
    kid = signing.key_id(signing.load_public(pub))
    print(f"private key: {key} (mode 0600; set diag.private_key in collector.yaml)")
    print(f"public key:  {pub} (copy to each agent; list it in diag.trusted_keys)")
    print(f"key id:      {kid}")
    return 0


def approve(args: argparse.Namespace) -> int:
    import time

    from fieldwatch.jsonout import iso

    now = time.time()
    store = _diag_store(args, write=True)
    try:
        aid = store.approve(args.id, args.action, args.by, now, args.valid_for,
                            on_behalf_of=args.on_behalf_of, note=args.note)
    finally:
        store.engine.dispose()
    if args.json:
        print_json([{"id": aid, "ticket": args.id, "action": args.action, "by": args.by,
                     "on_behalf_of": args.on_behalf_of, "note": args.note, "at": iso(now),
                     "expires_at": iso(now + args.valid_for)}])
        return 0
    who = f"{args.by} on behalf of {args.on_behalf_of}" if args.on_behalf_of else args.by
    print(f"approval {aid}: {who} authorized {args.action} on ticket {args.id}, "
          f"valid until {human.when(now + args.valid_for)}")
    return 0


def onsite(args: argparse.Namespace) -> int:
    import time

    from fieldwatch.collector.diag.onsite import checklist

    metrics: dict[str, str] = {}
    if args.config:  # its rules name the metric to look at
        from fieldwatch.collector.rules.loader import load_rules

        cfg, store = _collector(args)
        metrics = {r.name: r.metric for r in load_rules(cfg.rules).rules}
    else:
        store = _diag_store(args, write=True)
    try:
        facts = store.visit_facts(args.id)
        facts["metric"] = metrics.get(facts["ticket"]["rule"], "")
        items = checklist(facts)
        marked = store.mark_onsite(args.id, args.by, args.reason, items, time.time())
        if not marked:
            items = (store.onsite(args.id) or {}).get("checklist", items)
    finally:
        store.engine.dispose()
    if args.json:
        print_json([{"ticket": args.id, "needs_onsite": True, "checklist": items}])
    else:
        print(f"ticket {args.id} needs on-site work{'' if marked else ' (already marked)'}:")
        for i, item in enumerate(items, 1):
            print(f"{i:>3}. {item}")
    return 0


def show(args: argparse.Namespace) -> int:
    from fieldwatch.jsonout import iso

    store = _diag_store(args)
    try:
        rows = store.requests_of(args.id)
        visit = store.onsite(args.id)
    finally:
        store.engine.dispose()
    if args.json:
        print_json([{**r, "sent_at": iso(r["sent_at"]), "finished_at": iso(r["finished_at"])}
                    for r in rows])
        return 0
    if not rows:
        print(f"no diagnostics on ticket {args.id}")
    for r in rows:
        res = r.get("result") or {}
        who = "rule" if r["auto"] else r["requested_by"]
        params = f" {human.value(r['args'])}" if r["args"] else ""
        print(f"== {r['check_name']}{params} by {who} at {human.when(r['sent_at'])}: "
              f"{r['status']}{' (' + r['reason'] + ')' if r['reason'] else ''}")
        if res.get("output"):
            sys.stdout.write(res["output"] if res["output"].endswith("\n")
                             else res["output"] + "\n")
        if res.get("truncated"):
            print(f"   [cut at the cap: {res['output_bytes']} bytes were printed]")
    if visit:
        print(f"\nneeds on-site work ({visit['reason']}):")
        for i, item in enumerate(visit["checklist"], 1):
            print(f"{i:>3}. {item}")
    return 0
