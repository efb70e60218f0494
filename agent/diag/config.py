"""The agent's `diag:` config section: what may run here, against what, and with whose consent.

Everything a diagnostic can touch is named here by the device's owner (services, log files,
roots, spools, SNMP neighbours, fixed operator commands); a request can only pick among them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from fieldwatch.durations import Duration
from fieldwatch.structs import Secret, Strict

Policy = Literal["auto", "ask", "never"]
BUILTIN_NAMES = frozenset({  # agent/diag/checks.py builds them
    "list", "ping", "traceroute", "dns_lookup", "tcp_port", "http_check", "top_processes",
    "disk_usage", "service_status", "log_tail", "smart_status", "snmp_get", "snmp_walk",
    "restart_service", "clear_spool"})
CHANGING_BUILTINS = frozenset({"restart_service", "clear_spool"})
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}$"


class RateLimit(Strict):
    max: Annotated[int, msgspec.Meta(ge=1)] = 30  # diagnostics run at most this many times...
    per: Duration = 3600.0  # ...in this window (refused ones do not count)


class PolicyConfig(Strict):
    """`auto`: may run when a rule fires; `ask`: needs an approval on the ticket; `never`."""

    read_only: Policy = "auto"
    changing: Policy = "never"  # a device runs nothing that changes it unless its owner says so
    checks: dict[str, Policy] = {}  # per diagnostic, overrides its class


class SnmpNeighbour(Strict):
    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 161
    version: Literal["1", "2c"] = "2c"
    community_env: str | None = None  # default community: "public"
    timeout: Duration = 2.0

    def community(self) -> Secret:
        return Secret(os.environ.get(self.community_env, "") if self.community_env
                      else "public")


class OperatorCommand(Strict):
    """A fixed argv the device's owner allows; requests cannot add arguments to it."""

    argv: Annotated[list[str], msgspec.Meta(min_length=1)]
    description: str = ""
    changing: bool = True
    timeout: Duration | None = None

    def __post_init__(self) -> None:
        if not self.argv[0].startswith("/"):
            raise ValueError("argv: argv[0] must be an absolute path (no PATH lookup)")


class DiagConfig(Strict):
    enabled: bool = True
    trusted_keys: list[Path] = []  # the collector's public key(s); none: every request refused
    audit_log: Path | None = None  # default: <state_dir>/diag-audit.jsonl
    # rotated at this size (.1 … .<audit_keep>, the oldest dropped): disk use stays bounded
    audit_max_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 10 * 2**20
    audit_keep: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    timeout: Duration = 30.0  # per diagnostic, unless the request or the command says less
    max_output: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024)] = 64 * 1024  # per result
    max_validity: Duration = 900.0  # requests valid for longer than this are refused
    clock_skew: Duration = 60.0  # tolerated difference between collector and agent clocks
    workers: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2
    queue_max: Annotated[int, msgspec.Meta(ge=1)] = 32  # waiting; beyond it refused as `busy`
    rate_limit: RateLimit = RateLimit()
    policy: PolicyConfig = PolicyConfig()
    defaults: dict[str, dict[str, str | int | bool]] = {}  # default args per check (rule runs)
    roots: list[Path] = []  # disk_usage looks only under these
    logs: dict[str, Path] = {}  # log_tail: name → file
    journal_units: list[str] = []  # log_tail: systemd units readable with journalctl
    services: list[str] = []  # service_status / restart_service
    service_manager: Literal["auto", "systemd", "sysv"] = "auto"
    spools: dict[str, Path] = {}  # clear_spool: name → directory whose contents may be removed
    backup_dir: Path | None = None  # clear_spool archives first; default <state_dir>/diag-backups
    backup_max_bytes: Annotated[int, msgspec.Meta(ge=0)] = 512 * 2**20  # larger: not cleared
    smart_devices: list[str] = []  # smart_status: /dev/sda ...
    snmp_neighbours: dict[str, SnmpNeighbour] = {}
    commands: dict[str, OperatorCommand] = {}

    def __post_init__(self) -> None:
        for key in ("services", "journal_units"):
            for n in getattr(self, key):
                if not re.fullmatch(_NAME, n):
                    raise ValueError(f"{key}: {n!r} is not a plain unit/service name")

        clash = sorted(set(self.commands) & BUILTIN_NAMES)
        if clash:
            raise ValueError(f"commands: {', '.join(clash)} would shadow built-in diagnostics")
        if self.policy.changing == "auto":
            raise ValueError("policy.changing: changing diagnostics need an approval; "
                             "use ask or never")
        changing = CHANGING_BUILTINS | {n for n, c in self.commands.items() if c.changing}
        bad = sorted(n for n, p in self.policy.checks.items() if p == "auto" and n in changing)
        if bad:
            raise ValueError(f"policy.checks: {', '.join(bad)} change the device; "
                             "use ask or never")
        for name, spool in self.spools.items():
            if not spool.is_absolute() or spool == Path("/"):
                raise ValueError(f"spools.{name}: must be an absolute directory other than /")
