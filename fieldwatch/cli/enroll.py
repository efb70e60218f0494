"""`fieldwatch devices enroll|rotate|retire|enrolled|enroll-audit` — device identities on the
broker (docs/enroll.md). Tokens and identities live in the collector's database (--data, --db,
--config as every state command); rotate and retire also reach the broker through the
`enroll:` section of the collector's config (--config)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from fieldwatch.cli import human
from fieldwatch.cli.common import CommandLineError, print_json, print_table
from fieldwatch.cli.state import add_state_options, locate, open_engine_at

if TYPE_CHECKING:
    from fieldwatch.collector.enroll.service import Enrollment


def register(dsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    en = dsub.add_parser("enroll", help="a one-time token a device trades for its credentials")
    en.add_argument("name", metavar="NAME", help="the device id")
    en.add_argument("--site", required=True)
    en.add_argument("--targets", metavar="T1,T2",
                    help="SNMP targets it polls and may publish for (DEVICE or SITE/DEVICE)")
    en.add_argument("--ttl", help="how long the token stays valid (default: enroll.token_ttl,"
                                  " 24h)")
    en.add_argument("--collector", metavar="URL", help="the collector's URL, for the printed "
                                                       "device command")
    en.add_argument("--json", action="store_true")
    add_state_options(en)
    en.set_defaults(func=enroll)

    ro = dsub.add_parser("rotate", help="a token for new credentials; the current ones keep "
                                        "working for the overlap window")
    ro.add_argument("name", metavar="NAME")
    ro.add_argument("--site", required=True)
    ro.add_argument("--targets", metavar="T1,T2", help="replace the declared SNMP targets")
    ro.add_argument("--ttl")
    ro.add_argument("--overlap", help="old credentials work this long after the new ones are "
                                      "fetched (default: enroll.overlap, 1h)")
    ro.add_argument("--collector", metavar="URL")
    ro.add_argument("--json", action="store_true")
    add_state_options(ro)
    ro.set_defaults(func=rotate)

    re_ = dsub.add_parser("retire", help="revoke a device's broker credentials now")
    re_.add_argument("name", metavar="NAME")
    re_.add_argument("--site", required=True)
    add_state_options(re_)
    re_.set_defaults(func=retire)

    ls = dsub.add_parser("enrolled", help="enrolled devices and their broker usernames")
    ls.add_argument("--json", action="store_true")
    add_state_options(ls)
    ls.set_defaults(func=enrolled)

    bs = dsub.add_parser("broker-setup", help="Mosquitto dynamic security: the collector's "
                                              "account (and an operators' one) from --config")
    bs.add_argument("--config", type=Path, required=True, metavar="FILE",
                    help="collector.yaml: its broker: account is created, through its enroll: "
                         "admin account")
    bs.add_argument("--ops-user", default="fieldwatch-ops",
                    help="the account `fieldwatch diag run` uses (default %(default)s)")
    bs.add_argument("--ops-password-file", type=Path, metavar="FILE",
                    help="create the operators' account with the password in FILE")
    bs.set_defaults(func=broker_setup)

    au = dsub.add_parser("enroll-audit", help="tokens issued, exchanged and refused")
    au.add_argument("--limit", type=int, default=50)
    au.add_argument("--json", action="store_true")
    add_state_options(au)
    au.set_defaults(func=audit)


def _duration(text: str | None, default: float, what: str) -> float:
    from fieldwatch.durations import parse_duration

    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise CommandLineError(f"{what}: {exc}") from None


def open_enrollment(args: argparse.Namespace, broker: bool) -> Enrollment:
    """The enrollment service on the located store; with `broker`, its provisioner from the
    collector config's `enroll:` section (needed to rotate out and retire)."""
    from fieldwatch.clock import SystemClock
    from fieldwatch.collector.enroll.brokers import from_config
    from fieldwatch.collector.enroll.service import Endpoint, Enrollment
    from fieldwatch.collector.enroll.store import EnrollStore

    where = locate(args, write=True)
    cfg = where.collector.enroll if where.collector else None
    if broker and cfg is None:
        raise CommandLineError("this needs the broker: give --config with the collector's "
                               "collector.yaml, whose `enroll:` section says how to reach it")
    store = EnrollStore(open_engine_at(where.url, where.source), SystemClock())
    provisioner = from_config(cfg) if (broker and cfg is not None) else _NoBroker()
    return Enrollment(store, provisioner, Endpoint("", 0))


class _NoBroker:
    """Issuing a token touches no broker."""

    def provision(self, *a: object) -> None:
        raise AssertionError("no broker here")

    def remove(self, usernames: object) -> None:
        raise AssertionError("no broker here")

    def usernames(self) -> set[str]:
        return set()

    def close(self) -> None:
        pass


def broker_setup(args: argparse.Namespace) -> int:
    from fieldwatch.cli.state import read_config
    from fieldwatch.collector.enroll.brokers import DynsecProvisioner, service_acls

    cfg, _, _ = read_config(args.config)
    if cfg.enroll is None or cfg.enroll.kind != "mosquitto":
        raise CommandLineError(f"{args.config}: needs an `enroll:` section of kind mosquitto")
    secret = cfg.broker.password()
    if not cfg.broker.username or secret is None:
        raise CommandLineError(f"{args.config}: broker: needs the collector's username and "
                               "password_env or password_file")
    accounts = {cfg.broker.username: (secret.get_secret_value(), service_acls("collector"))}
    if args.ops_password_file:
        ops = args.ops_password_file.read_text(encoding="utf-8").strip()
        accounts[args.ops_user] = (ops, service_acls("ops"))
    p = DynsecProvisioner(cfg.enroll.admin)
    try:
        p.setup(accounts)
    finally:
        p.close()
    print(f"broker accounts ready: {', '.join(accounts)} (devices: `fieldwatch devices "
          "enroll`)")
    return 0


def _ttls(args: argparse.Namespace) -> tuple[float, float]:
    where = locate(args, write=True)
    cfg = where.collector.enroll if where.collector else None
    ttl = _duration(args.ttl, cfg.token_ttl if cfg else 86400.0, "--ttl")
    overlap = _duration(getattr(args, "overlap", None), cfg.overlap if cfg else 3600.0,
                        "--overlap")
    return ttl, overlap


def _show_token(args: argparse.Namespace, token: str, ttl: float) -> None:
    from fieldwatch.collector.enroll.acl import parse_targets

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
    targets = [f"{t.site}/{t.device}" for t in parse_targets(args.targets, args.site)]
    if args.json:
        print_json([{"site": args.site, "device": args.name, "token": token,
                     "expires_at": expires.timestamp(), "targets": targets}])
        return
    url = args.collector or "https://COLLECTOR:PORT"
    print(f"enrollment token for {args.site}/{args.name} (shown once; single use; valid until "
          f"{expires:%Y-%m-%d %H:%M} UTC):\n  {token}\n"
          f"on the device:\n  fieldwatch agent enroll --collector {url} --token {token}")


def enroll(args: argparse.Namespace) -> int:
    ttl, _ = _ttls(args)
    e = open_enrollment(args, broker=False)
    try:
        token = e.enroll(args.name, args.site, args.targets, ttl, by="cli")
    except ValueError as exc:
        raise CommandLineError(str(exc)) from None
    finally:
        e.store.engine.dispose()
    _show_token(args, token, ttl)
    return 0


def rotate(args: argparse.Namespace) -> int:
    ttl, overlap = _ttls(args)
    e = open_enrollment(args, broker=False)
    try:
        token = e.rotate(args.name, args.site, ttl, overlap, args.targets, by="cli")
        if args.targets is None:  # shown as they stay
            args.targets = ",".join(f"{s}/{d}" for row in e.store.devices()
                                    if (row["site"], row["device"]) == (args.site, args.name)
                                    for s, d in row["targets"])
    except ValueError as exc:
        raise CommandLineError(str(exc)) from None
    finally:
        e.store.engine.dispose()
    _show_token(args, token, ttl)
    return 0


def retire(args: argparse.Namespace) -> int:
    e = open_enrollment(args, broker=True)
    try:
        gone = e.retire(args.name, args.site)
        swept = e.sweep()
    finally:
        e.provisioner.close()
        e.store.engine.dispose()
    print(f"{args.site}/{args.name}: removed from the broker: "
          f"{', '.join(gone) if gone else '(no live credentials)'}")
    if swept:
        print(f"rotated-out credentials whose overlap ended, removed too: {', '.join(swept)}")
    return 0


def _enrolled(args: argparse.Namespace) -> list[dict[str, object]]:
    e = open_enrollment(args, broker=False)
    try:
        return e.store.devices()
    finally:
        e.store.engine.dispose()


def enrolled(args: argparse.Namespace) -> int:
    rows = _enrolled(args)
    if args.json:
        print_json(rows)
    else:
        print_table([{"site": str(d["site"]), "device": str(d["device"]),
                      "usernames": ", ".join(d["usernames"]) or "(retired)",  # type: ignore[arg-type]
                      "targets": ", ".join(f"{s}/{t}" for s, t in d["targets"]),  # type: ignore[attr-defined]
                      "enrolled": human.when(d["enrolled_at"])} for d in rows],
                    ["site", "device", "usernames", "targets", "enrolled"])
    return 0


def audit(args: argparse.Namespace) -> int:
    e = open_enrollment(args, broker=False)
    try:
        rows = e.store.audit_log(args.limit)
    finally:
        e.store.engine.dispose()
    if args.json:
        print_json(rows)
    else:
        print_table([{k: human.value(r[k]) for k in ("event", "site", "device", "username",
                                                     "address", "reason")}
                     | {"at": human.when(r["at"])} for r in rows],
                    ["at", "event", "site", "device", "username", "address", "reason"])
    return 0
