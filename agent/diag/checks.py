"""The allow-list: every diagnostic this agent can run, with its argument schema and class.

A check turns validated arguments into a plan — a fixed argv (run without a shell) or an
in-process function — and nothing else can run. Operator commands from the agent config join
the list as fixed argvs that take no arguments.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fieldwatch.agent.diag import args as a
from fieldwatch.agent.diag import probes
from fieldwatch.agent.diag.config import DiagConfig

READ_ONLY, CHANGING = "read_only", "changing"


@dataclass(frozen=True)
class Argv:
    argv: list[str]
    timeout: float | None = None  # None: the configured default
    ok_codes: frozenset[int] = frozenset({0})
    # Secrets go in files of a private temporary directory named by an environment variable
    # (e.g. net-snmp's SNMPCONFPATH), never on the command line where `ps` shows them.
    private_files: tuple[tuple[str, str], ...] = ()
    private_dir_env: str | None = None


@dataclass(frozen=True)
class Call:
    fn: Callable[[float], tuple[int, bytes]]  # fn(timeout) -> (exit code, output)


Plan = Argv | Call


class Unavailable(Exception):
    """The tool a check needs is not installed here."""


@dataclass(frozen=True)
class Check:
    name: str
    cls: str  # READ_ONLY or CHANGING
    help: str
    params: tuple[a.Param, ...]
    plan: Callable[[dict[str, Any]], Plan] = field(compare=False)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "class": self.cls, "help": self.help,
                "args": [{"name": p.name, "help": p.help,
                          **({"required": True} if p.required else {}),
                          **({"default": p.default} if p.default is not None else {})}
                         for p in self.params]}


def _tool(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin:/usr/local/sbin")
    if path is None:
        raise Unavailable(f"{name} is not installed on this device")
    return path


def _service_manager(cfg: DiagConfig) -> str:
    if cfg.service_manager != "auto":
        return cfg.service_manager
    return "systemd" if Path("/run/systemd/system").is_dir() else "sysv"


def build_registry(cfg: DiagConfig, state_dir: Path = Path("/var/lib/fieldwatch/agent")
                   ) -> dict[str, Check]:
    """Every check this config allows, by name. Config choices are read at validation time."""
    host = a.Param("host", a.host, "hostname or IP address", required=True)
    count = a.Param("count", a.integer(1, 10), "packets", default=3)
    service = a.Param("service", a.choice(lambda: cfg.services), "a configured service",
                      required=True)
    neighbour = a.Param("neighbour", a.choice(lambda: cfg.snmp_neighbours),
                        "a configured SNMP neighbour", required=True)
    mgr = functools.partial(_service_manager, cfg)

    def ping(v: dict[str, Any]) -> Plan:
        return Argv([_tool("ping"), "-n", "-c", str(v["count"]), "-i", "0.2", "-W", "2", "--",
                     v["host"]])

    def traceroute(v: dict[str, Any]) -> Plan:
        return Argv([_tool("traceroute"), "-n", "-q", "1", "-w", "2", "-m", str(v["max_hops"]),
                     "--", v["host"]])

    def service_status(v: dict[str, Any]) -> Plan:
        if mgr() == "systemd":
            return Argv([_tool("systemctl"), "status", "--no-pager", "--lines=20", "--",
                         v["service"]])
        return Argv([_tool("service"), v["service"], "status"])

    def restart_service(v: dict[str, Any]) -> Plan:
        if mgr() == "systemd":
            return Argv([_tool("systemctl"), "restart", "--", v["service"]], timeout=120)
        return Argv([_tool("service"), v["service"], "restart"], timeout=120)

    def log_tail(v: dict[str, Any]) -> Plan:
        name, lines = v["log"], v["lines"]
        if name in cfg.logs:
            return Call(lambda _t: probes.tail_file(cfg.logs[name], lines))
        return Argv([_tool("journalctl"), "--no-pager", "-o", "short-iso", "-n", str(lines),
                     "-u", name])

    def smart_status(v: dict[str, Any]) -> Plan:
        # smartctl's exit status is a bit mask; bits 0-2 mean it could not ask the disk.
        return Argv([_tool("smartctl"), "--json=c", "-H", "-A", "-i", "--", v["device"]],
                    ok_codes=frozenset(c for c in range(256) if c & 0b111 == 0 and c & 0b1000 == 0))

    def snmp(tool: str) -> Callable[[dict[str, Any]], Plan]:
        def plan(v: dict[str, Any]) -> Plan:
            n = cfg.snmp_neighbours[v["neighbour"]]
            conf = (f"defVersion {n.version}\n"
                    f"defCommunity {n.community().get_secret_value()}\n")
            return Argv([_tool(tool), "-On", "-t", f"{n.timeout:g}", "-r", "1",
                         f"udp:{a.host('host', n.host)}:{n.port}", v["oid"]],
                        private_files=(("snmp.conf", conf),), private_dir_env="SNMPCONFPATH")
        return plan

    def listing(_v: dict[str, Any]) -> Plan:
        pol = cfg.policy
        doc = [{**c.describe(), "policy": pol.checks.get(c.name) or (
                    pol.changing if c.cls == CHANGING else pol.read_only)}
               for c in sorted(checks.values(), key=lambda c: c.name)]
        return Call(lambda _t: (0, (json.dumps(doc, separators=(",", ":")) + "\n").encode()))

    checks: dict[str, Check] = {}
    for c in (
        Check("list", READ_ONLY, "the diagnostics this device offers", (), listing),
        Check("ping", READ_ONLY, "ICMP echo to a host", (host, count), ping),
        Check("traceroute", READ_ONLY, "route to a host (if traceroute is installed)",
              (host, a.Param("max_hops", a.integer(1, 30), "hops", default=15)), traceroute),
        Check("dns_lookup", READ_ONLY, "resolve a name with the device's resolver",
              (a.Param("name", a.host, "name to resolve", required=True),
               a.Param("family", a.choice(lambda: ("any", "ipv4", "ipv6")), "any|ipv4|ipv6",
                       default="any")),
              lambda v: Call(lambda _t: probes.dns_lookup(v["name"], v["family"]))),
        Check("tcp_port", READ_ONLY, "can the device open a TCP connection to host:port",
              (host, a.Param("port", a.port, "TCP port", required=True)),
              lambda v: Call(lambda t: probes.tcp_port(v["host"], v["port"], t))),
        Check("http_check", READ_ONLY, "GET an http(s) URL; status, timing, key headers",
              (a.Param("url", a.url, "http:// or https:// URL", required=True),),
              lambda v: Call(lambda t: probes.http_check(v["url"], t))),
        Check("top_processes", READ_ONLY, "top processes by CPU and by memory",
              (a.Param("n", a.integer(1, 50), "how many", default=10),),
              lambda v: Call(lambda _t: probes.top_processes(v["n"]))),
        Check("disk_usage", READ_ONLY, "largest directories under a configured root",
              (a.Param("path", a.inside(lambda: cfg.roots), "a path inside a configured root",
                       default=None),
               a.Param("depth", a.integer(0, 4), "levels summed below path", default=2),
               a.Param("n", a.integer(1, 100), "how many", default=15)),
              lambda v: Call(functools.partial(_disk_usage, cfg, v))),
        Check("service_status", READ_ONLY, "status of a configured service", (service,),
              service_status),
        Check("log_tail", READ_ONLY, "last lines of a configured log file or journal unit",
              (a.Param("log", a.choice(lambda: [*cfg.logs, *cfg.journal_units]),
                       "a configured log or unit", required=True),
               a.Param("lines", a.integer(1, 1000), "lines", default=100)), log_tail),
        Check("smart_status", READ_ONLY, "SMART health of a configured disk (smartctl --json)",
              (a.Param("device", a.disk(lambda: cfg.smart_devices),
                       "a configured disk (any /dev disk when none are listed)",
                       required=True),), smart_status),
        Check("snmp_get", READ_ONLY, "SNMP GET of one OID on a configured neighbour",
              (neighbour, a.Param("oid", a.oid, "numeric OID", required=True)),
              snmp("snmpget")),
        Check("snmp_walk", READ_ONLY, "SNMP walk of a subtree on a configured neighbour",
              (neighbour, a.Param("oid", a.oid, "numeric OID", default=".1.3.6.1.2.1.1")),
              snmp("snmpbulkwalk")),
        Check("restart_service", CHANGING, "restart a configured service", (service,),
              restart_service),
        Check("clear_spool", CHANGING, "remove the contents of a configured spool directory",
              (a.Param("spool", a.choice(lambda: cfg.spools), "a configured spool",
                       required=True),),
              lambda v: Call(lambda _t: probes.clear_spool(
                  cfg.spools[v["spool"]], cfg.backup_dir or state_dir / "diag-backups",
                  v["spool"], cfg.backup_max_bytes))),
    ):
        checks[c.name] = c
    for name, cmd in cfg.commands.items():
        checks[name] = Check(name, CHANGING if cmd.changing else READ_ONLY,
                             cmd.description or "operator command", (),
                             functools.partial(_fixed, cmd.argv, cmd.timeout))
    return checks


def _fixed(argv: list[str], timeout: float | None, _v: dict[str, Any]) -> Plan:
    return Argv(list(argv), timeout=timeout)


def _disk_usage(cfg: DiagConfig, v: dict[str, Any], timeout: float) -> tuple[int, bytes]:
    roots = [v["path"]] if "path" in v else [Path(r) for r in cfg.roots]
    if not roots:
        return 1, b"no roots configured (diag.roots)\n"
    out = b""
    for r in roots:
        out += probes.disk_usage(Path(r), v["depth"], v["n"], timeout / len(roots))[1]
    return 0, out
