"""`fieldwatch snmp walk TARGET [OID]` — what a device exposes, numerically (no MIB lookups).

TARGET is `host[:port]`, or with `--config agent.yaml` the device id of a configured SNMP
target (its credentials are used). Exit 1 when the device does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from fieldwatch.errors import ConfigError, Problem, SourceError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("snmp", help="SNMP tools")
    ssub = p.add_subparsers(dest="snmp_command", required=True, metavar="ACTION")
    w = ssub.add_parser("walk", help="walk a device's OIDs (GETBULK)")
    w.add_argument("target", metavar="TARGET", help="host[:port], or a device id with --config")
    w.add_argument("oid", nargs="?", default="1.3.6.1.2.1", help="subtree (default mib-2)")
    w.add_argument("--config", type=Path, help="agent.yaml: take TARGET's settings from it")
    w.add_argument("-v", "--snmp-version", choices=["2c", "3"], default="2c")
    w.add_argument("-c", "--community", default="public")
    w.add_argument("-u", "--user", help="SNMPv3 user")
    w.add_argument("-a", "--auth-protocol", default="SHA")
    w.add_argument("-A", "--auth-key")
    w.add_argument("-x", "--priv-protocol", default="AES")
    w.add_argument("-X", "--priv-key")
    w.add_argument("--timeout", default="2s")
    w.add_argument("--retries", type=int, default=1)
    w.add_argument("--max-repetitions", type=int, default=50)
    w.add_argument("--json", action="store_true", help="a JSON list of {oid, value}")
    w.set_defaults(func=walk)


def _target(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from fieldwatch.agent.snmp.config import SnmpTarget

    if args.config:
        from fieldwatch.agent.config import AgentConfig
        from fieldwatch.config import load_config

        cfg = load_config(AgentConfig, args.config)
        for t in cfg.snmp.targets:
            if t.device == args.target:
                return t, t.timeout or cfg.snmp.timeout, (
                    cfg.snmp.retries if t.retries is None else t.retries)
        raise ConfigError([Problem(str(args.config), 0, 0,
                                   f"no SNMP target with device {args.target!r}")])
    host, _, port = args.target.rpartition(":") if args.target.count(":") == 1 else (
        args.target, "", "")
    spec: dict[str, object] = {"device": "walk", "host": host or args.target,
                               "port": int(port) if port else 161,
                               "version": args.snmp_version}
    if args.snmp_version == "2c":
        spec["community"] = args.community
    else:
        if not args.user:
            raise ConfigError([Problem("<command line>", 0, 0, "SNMPv3 needs -u USER")])
        spec["v3"] = {k: v for k, v in {
            "user": args.user, "auth_protocol": args.auth_protocol, "auth_key": args.auth_key,
            "priv_protocol": args.priv_protocol, "priv_key": args.priv_key}.items()
            if v is not None}
    from fieldwatch.durations import parse_duration
    from fieldwatch.structs import convert
    from fieldwatch.yamlmarks import Loaded

    target = convert(SnmpTarget, spec, Loaded(spec, {}, "<command line>"))
    try:
        return target, parse_duration(args.timeout), args.retries
    except ValueError as exc:
        raise ConfigError([Problem("<command line>", 0, 0, f"--timeout: {exc}")]) from None


async def _walk(target, timeout: float, retries: int, root: tuple[int, ...],  # type: ignore[no-untyped-def]
                reps: int) -> list[tuple[tuple[int, ...], object]]:
    from fieldwatch.agent.snmp.client import SnmpClient

    client = SnmpClient(concurrency=1)
    try:
        session = await client.session(target, timeout, retries)
        return await session.walk(root, reps)
    finally:
        client.close()


def walk(args: argparse.Namespace) -> int:
    target, timeout, retries = _target(args)
    try:
        root = tuple(int(p) for p in args.oid.lstrip(".").split("."))
    except ValueError:
        raise ConfigError([Problem("<command line>", 0, 0,
                                   f"{args.oid!r} is not a numeric OID")]) from None
    try:
        rows = asyncio.run(_walk(target, timeout, retries, root, args.max_repetitions))
    except SourceError as exc:
        print(f"fieldwatch: {target.host}:{target.port}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump([{"oid": ".".join(map(str, o)), "value": v} for o, v in rows], sys.stdout,
                  indent=2)
        sys.stdout.write("\n")
    else:
        for oid, value in rows:
            print(f".{'.'.join(map(str, oid))} = {value!r}" if isinstance(value, str)
                  else f".{'.'.join(map(str, oid))} = {value}")
    if not rows:
        print(f"(nothing under .{args.oid.lstrip('.')})", file=sys.stderr)
    return 0
