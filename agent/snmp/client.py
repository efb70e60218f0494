"""The pysnmp edge: one SnmpEngine, one UDP socket, one configured target per device.

We drive pysnmp's command generators directly with numeric OIDs (no MIB resolution per request,
`lookupMib=False` in effect) and turn its values into plain Python at once. pysnmp errors become
`SourceError` with a message an operator can act on. Must run inside one asyncio loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fieldwatch.agent.snmp.config import SnmpTarget
from fieldwatch.agent.snmp.mapping import Column, Value
from fieldwatch.agent.snmp.profile import Oid
from pyasn1.type import univ
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
)
from pysnmp.hlapi.v3arch.asyncio import auth as hauth
from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
from pysnmp.proto import errind, rfc1902, rfc1905

from fieldwatch.errors import SourceError

AUTH_PROTOCOLS = {"MD5": hauth.USM_AUTH_HMAC96_MD5, "SHA": hauth.USM_AUTH_HMAC96_SHA,
         "SHA224": hauth.USM_AUTH_HMAC128_SHA224, "SHA256": hauth.USM_AUTH_HMAC192_SHA256,
         "SHA384": hauth.USM_AUTH_HMAC256_SHA384, "SHA512": hauth.USM_AUTH_HMAC384_SHA512}
PRIV_PROTOCOLS = {"DES": hauth.USM_PRIV_CBC56_DES, "3DES": hauth.USM_PRIV_CBC168_3DES,
         "AES": hauth.USM_PRIV_CFB128_AES, "AES128": hauth.USM_PRIV_CFB128_AES,
         "AES192": hauth.USM_PRIV_CFB192_AES, "AES256": hauth.USM_PRIV_CFB256_AES}
_END = rfc1905.EndOfMibView
_MISSING = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)
_NULL = univ.Null("")
MAX_GET = 32  # OIDs per GET request: stays well under any agent's message size
MAX_ROWS = 100_000  # per walk: a broken agent cycling OIDs cannot keep us forever


def decode(value: Any) -> Value:
    """pysnmp value → int, str or None (no such object / instance, end of MIB)."""
    if isinstance(value, univ.Integer):  # Integer32, Counter32/64, Gauge32, TimeTicks
        return int(value)
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in bytes(value))
    if isinstance(value, univ.OctetString):
        return bytes(value).decode("utf-8", "replace").rstrip("\0")
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(map(str, value.asTuple()))
    return None


def explain(indication: object, target: SnmpTarget, timeout: float, retries: int) -> str:
    """An operator-facing reason for a pysnmp error indication."""
    if isinstance(indication, errind.RequestTimedOut):
        who = "wrong community" if target.version == "2c" else "wrong v3 privacy key"
        return (f"no response from {target.host}:{target.port} within {timeout:g}s x "
                f"{retries + 1} tries (unreachable, wrong port, or {who})")
    if isinstance(indication, errind.WrongDigest):
        return "SNMPv3 authentication failed: wrong auth key or auth protocol"
    if isinstance(indication, errind.UnknownUserName):
        return f"SNMPv3 user {target.v3.user if target.v3 else '?'!r} is unknown to the device"
    if isinstance(indication, errind.DecryptionError):
        return "SNMPv3 decryption failed: wrong privacy key or privacy protocol"
    if isinstance(indication, errind.UnsupportedSecurityLevel):
        return "SNMPv3 security level not supported by the device for this user"
    return f"SNMP error: {indication}"


def auth_data(target: SnmpTarget) -> CommunityData | UsmUserData:
    if target.version == "2c":
        return CommunityData(target.community_value(), mpModel=1)
    u = target.v3
    assert u is not None  # validated
    akey, pkey = u.auth(), u.priv()
    auth = AUTH_PROTOCOLS[u.auth_protocol] if akey else hauth.USM_AUTH_NONE
    priv = PRIV_PROTOCOLS[u.priv_protocol] if pkey else hauth.USM_PRIV_NONE
    return UsmUserData(u.user, authKey=akey, privKey=pkey, authProtocol=auth,
                       privProtocol=priv)


@dataclass
class _Ctx:
    future: asyncio.Future[tuple[Any, int, int, Any]]


def _done(engine: Any, handle: Any, indication: Any, status: Any, index: Any, var_binds: Any,
          ctx: _Ctx) -> None:
    if not ctx.future.done():
        ctx.future.set_result((indication, int(status or 0), int(index or 0), var_binds))


class SnmpClient:
    """One engine and socket for every target; `concurrency` bounds requests in flight."""

    def __init__(self, concurrency: int = 64) -> None:
        self.engine = SnmpEngine()
        self._engines: dict[tuple[object, ...], SnmpEngine] = {}  # extra, for clashing v3 users
        self._v3_users: dict[str, tuple[object, ...]] = {}  # user name -> credentials (main)
        self._lcd = CommandGeneratorLcdConfigurator()
        self._get = cmdgen.GetCommandGenerator()
        self._bulk = cmdgen.BulkCommandGenerator()
        self._slots = asyncio.Semaphore(concurrency)
        # targets that failed their last poll wait out their timeouts in a pool of their own,
        # so a batch of dead devices cannot take every slot from the live ones
        self._down_slots = asyncio.Semaphore(max(1, concurrency // 4))

    async def session(self, target: SnmpTarget, timeout: float, retries: int) -> Session:
        """Configure `target` once; raises SourceError if its address does not resolve.
        Costs a few ms of pysnmp MIB-table writes per target, once (not per poll)."""
        kind = Udp6TransportTarget if ":" in target.host else UdpTransportTarget
        try:
            transport = await kind.create((target.host.strip("[]"), target.port),
                                          timeout=timeout, retries=retries)
        except Exception as exc:  # noqa: BLE001 - pysnmp wraps resolver errors variously
            raise SourceError(f"cannot resolve {target.host}: {exc}") from None
        auth = auth_data(target)
        engine = self._engine_for(auth)
        addr, _ = self._lcd.configure(engine, auth, transport, b"")
        return Session(self, engine, target, addr, timeout, retries)

    def _engine_for(self, auth: CommunityData | UsmUserData) -> SnmpEngine:
        """pysnmp keys USM users by name until it learns each device's engine id, so the
        same user name with other keys gets an engine of its own."""
        if not isinstance(auth, UsmUserData):
            return self.engine
        creds = (auth.userName, auth.authentication_protocol, auth.authentication_key,
                 auth.privacy_protocol, auth.privacy_key)
        if self._v3_users.setdefault(str(auth.userName), creds) == creds:
            return self.engine
        if creds not in self._engines:
            self._engines[creds] = SnmpEngine()
        return self._engines[creds]

    def close(self) -> None:
        for engine in (self.engine, *self._engines.values()):
            engine.close_dispatcher()
        self._engines.clear()


class Session:
    """A configured target: GET, GETBULK and column walks returning plain values."""

    def __init__(self, client: SnmpClient, engine: SnmpEngine, target: SnmpTarget, addr: str,
                 timeout: float, retries: int) -> None:
        self.client, self.engine, self.target, self.addr = client, engine, target, addr
        self.timeout, self.retries = timeout, retries
        self.requests = 0
        self.down = False  # set by the poller when the last poll failed
        self._rows: dict[tuple[Oid, ...], int] = {}  # rows last seen per column set

    async def _request(self, send: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        async with self.client._down_slots if self.down else self.client._slots:
            ctx = _Ctx(loop.create_future())
            send(self.engine, self.addr, None, b"", *args, _done, ctx)
            indication, status, index, var_binds = await ctx.future
        self.requests += 1
        if indication:
            raise SourceError(explain(indication, self.target, self.timeout, self.retries))
        if status:
            name = rfc1905.errorStatus.getNamedValues().getName(status) or str(status)
            raise SourceError(f"device answered error-status {name} (index {index})")
        return var_binds

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        out: dict[Oid, Value] = {}
        for i in range(0, len(oids), MAX_GET):
            chunk = [(rfc1902.ObjectName(o), _NULL) for o in oids[i:i + MAX_GET]]
            for name, value in await self._request(self.client._get.send_varbinds, chunk):
                out[name.asTuple()] = None if isinstance(value, _MISSING) else decode(value)
        return out

    async def bulk(self, oids: Sequence[Oid], repetitions: int,
                   non_repeaters: int = 0) -> list[tuple[Oid, Any]]:
        """One GETBULK: `non_repeaters` single successors, then rows of the rest, wire order."""
        vbs = [(rfc1902.ObjectName(o), _NULL) for o in oids]
        got = await self._request(self.client._bulk.send_varbinds, non_repeaters, repetitions,
                                  vbs)
        return [(name.asTuple(), value) for name, value in got]

    async def fetch(self, scalars: Sequence[Oid], columns: Sequence[Oid],
                    max_repetitions: int) -> tuple[dict[Oid, Value], dict[Oid, Column]]:
        """Scalars and table columns in as few requests as possible: `x.0` scalars ride in the
        first GETBULK as non-repeaters (GETNEXT of `x`); usually one request per poll."""
        nexts = [s for s in scalars if s[-1] == 0 and len(s) > 1] if columns else []
        others = [s for s in scalars if s not in set(nexts)]
        if len(nexts) > MAX_GET:
            others, nexts = list(scalars), []
        values: dict[Oid, Value] = await self.get(others) if others else {}
        out: dict[Oid, dict[Oid, Value]] = {c: {} for c in columns}
        cursor = {c: c for c in columns}
        active = list(columns)
        key = tuple(columns)
        hint = self._rows.get(key)
        total = 0
        while active:
            reps = max(1, max_repetitions // len(active))
            if hint is not None:  # last poll's row count: ask for just past the end
                reps, hint = min(reps, hint + 1), None
            got = await self.bulk([s[:-1] for s in nexts] + [cursor[c] for c in active], reps,
                                  non_repeaters=len(nexts))
            if nexts:
                for want, (oid, value) in zip(nexts, got, strict=False):
                    values[want] = (decode(value) if oid == want
                                    and not isinstance(value, _MISSING) else None)
                got = got[len(nexts):]
                nexts = []
            finished: set[Oid] = set()
            for i, (oid, value) in enumerate(got):
                col = active[i % len(active)]
                if col in finished:
                    continue
                n = len(col)
                if isinstance(value, _END) or oid[:n] != col or oid <= cursor[col]:
                    finished.add(col)  # left the column, end of MIB, or not increasing
                    continue
                cursor[col] = oid
                if not isinstance(value, _MISSING):
                    out[col][oid[n:]] = decode(value)
            if not got:
                break
            total += len(got)
            active = [c for c in active if c not in finished]
            if total > MAX_ROWS:
                raise SourceError(f"walk stopped after {MAX_ROWS} values (agent loops?)")
        if columns:
            self._rows[key] = max((len(v) for v in out.values()), default=0)
        return values, out

    async def walk_columns(self, columns: Sequence[Oid],
                           max_repetitions: int) -> dict[Oid, Column]:
        """Walk several table columns at once with GETBULK; index suffix → value per column."""
        return (await self.fetch((), columns, max_repetitions))[1]

    async def walk(self, root: Oid, max_repetitions: int) -> list[tuple[Oid, Value]]:
        """Every OID under `root`, in order (for `fieldwatch snmp walk` and the benchmark)."""
        col = await self.walk_columns([root], max_repetitions)
        return [(root + idx, v) for idx, v in col[root].items()]
