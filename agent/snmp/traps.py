"""SNMP trap receiver (v1, v2c and v3): each trap becomes a `wire.Event` on its device's topic.

The sender's address picks the device: a configured target with that address, or else a
device named after the address (`snmp-10-0-0-7`), counted in `unknown_sources`. Standard traps
get names (`snmp.trap.linkDown`); any other trap is `snmp.trap` with its OID in `trap_oid`.
Every varbind is kept in the event's fields under its numeric OID.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from fieldwatch.agent.snmp.config import SnmpTarget, TrapConfig, TrapUser
from fieldwatch.agent.snmp.mapping import Value
from fieldwatch.agent.snmp.poller import Publish
from fieldwatch.agent.snmp.profile import Oid

from fieldwatch import wire
from fieldwatch.clock import Clock

log = logging.getLogger(__name__)

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
_STANDARD = (1, 3, 6, 1, 6, 3, 1, 1, 5)
TRAP_NAMES = {_STANDARD + (1,): "coldStart", _STANDARD + (2,): "warmStart",
              _STANDARD + (3,): "linkDown", _STANDARD + (4,): "linkUp",
              _STANDARD + (5,): "authenticationFailure"}
# varbinds of link traps worth a short field name (the suffix is the ifIndex)
_IF_FIELDS = {(1, 3, 6, 1, 2, 1, 2, 2, 1, 1): "ifindex", (1, 3, 6, 1, 2, 1, 2, 2, 1, 2): "ifdescr",
              (1, 3, 6, 1, 2, 1, 2, 2, 1, 7): "admin_status",
              (1, 3, 6, 1, 2, 1, 2, 2, 1, 8): "oper_status",
              (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1): "ifname"}
Fields = dict[str, str | int | float | bool | None]


def oid_text(oid: Oid) -> str:
    return ".".join(str(i) for i in oid)


def trap_event(site: str, device: str, source: str, varbinds: Sequence[tuple[Oid, Value]],
               ts: float) -> wire.Event:
    """The event for one received trap (pure: the receiver hands in decoded varbinds)."""
    fields: Fields = {"source": source}
    trap_oid: Oid | None = None
    for oid, value in varbinds:
        if oid == TRAP_OID and isinstance(value, str):
            trap_oid = tuple(int(p) for p in value.split(".") if p.isdigit())
            continue
        if oid == SYS_UPTIME and isinstance(value, int):
            fields["uptime_seconds"] = value / 100
            continue
        fields[oid_text(oid)] = value
        for prefix, name in _IF_FIELDS.items():
            if oid[:len(prefix)] == prefix and len(oid) == len(prefix) + 1:
                fields[name] = value
                fields.setdefault("ifindex", oid[-1])
    name = TRAP_NAMES.get(trap_oid) if trap_oid else None
    fields["trap_oid"] = oid_text(trap_oid) if trap_oid else None
    fields["trap"] = name or (oid_text(trap_oid) if trap_oid else "unknown")
    kind = f"snmp.trap.{name}" if name else "snmp.trap"
    return wire.Event(device=device, site=site, type=kind, ts=ts, fields=fields)


def device_for_address(address: str) -> str:
    """A device id for a sender we do not know: `snmp-` and the address, topic-safe."""
    return "snmp-" + address.replace(".", "-").replace(":", "-")


def address_map(targets: Iterable[SnmpTarget], default_site: str) -> dict[str, tuple[str, str]]:
    """Sender IP → (site, device) for configured targets; names are resolved once, here."""
    out: dict[str, tuple[str, str]] = {}
    for t in targets:
        who = (t.site or default_site, t.device)
        try:
            ipaddress.ip_address(t.host)
            out.setdefault(t.host, who)
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(t.host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning("traps from %s cannot be matched: %s does not resolve (%s)",
                        t.device, t.host, exc)
            continue
        for info in infos:
            out.setdefault(str(info[4][0]), who)
    return out


def add_trap_user(engine: Any, u: TrapUser) -> None:
    from fieldwatch.agent.snmp.client import AUTH_PROTOCOLS, PRIV_PROTOCOLS
    from pysnmp.entity import config
    from pysnmp.proto.api import v2c

    akey, pkey = u.auth(), u.priv()
    engine_id = v2c.OctetString(hexValue=u.engine_id.removeprefix("0x"))
    config.add_v3_user(
        engine, u.user,
        AUTH_PROTOCOLS[u.auth_protocol] if akey else config.USM_AUTH_NONE, akey,
        PRIV_PROTOCOLS[u.priv_protocol] if pkey else config.USM_PRIV_NONE, pkey,
        securityEngineId=engine_id)


class TrapReceiver:
    """Listens on cfg.host:cfg.port inside the SNMP thread's loop; `open()` binds at once."""

    def __init__(self, cfg: TrapConfig, targets: Iterable[SnmpTarget], default_site: str,
                 publish: Publish, clock: Clock) -> None:
        self.cfg, self.publish, self.clock = cfg, publish, clock
        self.default_site = default_site
        self.by_address = address_map(targets, default_site)
        self.received = 0
        self.unknown_sources: Counter[str] = Counter()
        self.errors = 0
        self.port = 0
        self._engine: Any = None
        self._receiver: Any = None

    def open(self) -> None:
        """Bind the socket (OSError if the port is taken) and start receiving in this loop."""
        from pysnmp.carrier.asyncio.dgram import udp, udp6
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntfrcv

        family = socket.AF_INET6 if ":" in self.cfg.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.cfg.host, self.cfg.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._engine = engine.SnmpEngine()
        mod = udp6 if family == socket.AF_INET6 else udp
        transport = mod.UdpAsyncioTransport().open_server_mode(sock=sock)
        config.add_transport(self._engine, mod.DOMAIN_NAME, transport)
        for i, community in enumerate(self.cfg.communities):
            config.add_v1_system(self._engine, f"trap-{i}", community)
        for u in self.cfg.v3_users:
            add_trap_user(self._engine, u)
        self._receiver = ntfrcv.NotificationReceiver(self._engine, self._on_trap)
        log.info("SNMP trap receiver on %s:%d", self.cfg.host, self.port)

    def _on_trap(self, snmp_engine: Any, state: Any, context_engine_id: Any, context_name: Any,
                 var_binds: Any, cb_ctx: Any) -> None:
        from fieldwatch.agent.snmp.client import decode

        try:
            _, address = snmp_engine.message_dispatcher.get_transport_info(state)
            source = str(address[0])
            site, device = self.by_address.get(source, (None, None))
            if device is None:
                if self.unknown_sources[source] == 0:
                    log.warning("trap from unknown source %s: published as device %s",
                                source, device_for_address(source))
                self.unknown_sources[source] += 1
                site, device = self.default_site, device_for_address(source)
            vbs = [(tuple(name), decode(value)) for name, value in var_binds]
            event = trap_event(site, device, source, vbs, self.clock.now())
            self.publish(site, device, "events", wire.encode(event))
            self.received += 1
        except Exception:  # noqa: BLE001 - a bad trap is counted, never kills the receiver
            self.errors += 1
            log.exception("could not handle a trap (counted in snmp.trap_errors_total)")

    def close(self) -> None:
        if self._engine is not None:
            if self._receiver is not None:
                self._receiver.close(self._engine)
            self._engine.close_dispatcher()
            self._engine = None
