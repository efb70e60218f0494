"""Polls every SNMP target on its own schedule in one asyncio loop, in one thread.

One SnmpClient (engine + socket) serves all targets; each target keeps its session. A poll's
samples go out as that target's own `metrics` message through `publish(site, device, kind,
payload)`; a device that stops answering yields `snmp.up = 0` and one `snmp.unreachable` event
(and `snmp.reachable` when it answers again), never delaying the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fieldwatch.agent.snmp.client import Session, SnmpClient
from fieldwatch.agent.snmp.config import SnmpConfig, SnmpTarget
from fieldwatch.agent.snmp.mapping import profile_samples
from fieldwatch.agent.snmp.profile import Oid, Profile, load_profiles

from fieldwatch import __version__, wire
from fieldwatch.clock import Clock, SystemClock
from fieldwatch.errors import SourceError

log = logging.getLogger(__name__)
Publish = Callable[[str, str, str, bytes], None]  # (site, device, kind, payload)


@dataclass
class PollResult:
    device: str
    site: str
    ts: float
    samples: list[wire.Sample]
    error: str | None = None
    seconds: float = 0.0


@dataclass
class TargetState:
    """A target's live state: its session, profiles, reachability and sequence number."""

    target: SnmpTarget
    site: str
    profiles: tuple[Profile, ...]
    interval: float
    timeout: float
    retries: int
    seq: int
    session: Session | None = None
    up: bool | None = None
    polls: int = 0
    failures: int = 0
    scalar_oids: tuple[Oid, ...] = field(init=False)
    column_oids: tuple[Oid, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.scalar_oids = tuple(dict.fromkeys(m.oid for p in self.profiles for m in p.scalars))
        self.column_oids = tuple(dict.fromkeys(c for p in self.profiles for t in p.tables
                                               for c in t.columns))


class SnmpPoller:
    """Build from config (profiles load here: mistakes fail at start-up), then start/stop."""

    def __init__(self, cfg: SnmpConfig, site: str, publish: Publish,
                 clock: Clock | None = None, profiles: dict[str, Profile] | None = None) -> None:
        self.cfg, self.publish = cfg, publish
        self.clock = clock or SystemClock()
        names = [n for t in cfg.targets for n in t.profiles]
        self.profiles = profiles if profiles is not None else load_profiles(names,
                                                                            cfg.profiles_dir)
        seq0 = int(self.clock.now() * 1000)  # monotonic across restarts without a state file
        self.targets = [TargetState(
            target=t, site=t.site or site, profiles=tuple(self.profiles[n] for n in t.profiles),
            interval=t.interval or cfg.interval, timeout=t.timeout or cfg.timeout,
            retries=cfg.retries if t.retries is None else t.retries, seq=seq0)
            for t in cfg.targets]
        self.client: SnmpClient | None = None

    # -- one poll -------------------------------------------------------------------------

    async def poll(self, st: TargetState) -> PollResult:
        """Poll one target once; any failure becomes `snmp.up = 0` plus the reason."""
        assert self.client is not None
        started = time.perf_counter()
        ts = self.clock.now()
        labels: dict[str, str] = {}
        try:
            if st.session is None:
                st.session = await self.client.session(st.target, st.timeout, st.retries)
            st.session.down = st.up is False
            scalars, columns = await st.session.fetch(st.scalar_oids, st.column_oids,
                                                      self.cfg.max_repetitions)
        except SourceError as exc:
            return PollResult(st.target.device, st.site, ts,
                              [wire.Sample(name="snmp.up", value=0.0, labels=labels)],
                              error=str(exc), seconds=time.perf_counter() - started)
        samples = [s for p in st.profiles for s in profile_samples(p, scalars, columns)]
        seconds = time.perf_counter() - started
        samples.append(wire.Sample(name="snmp.up", value=1.0))
        samples.append(wire.Sample(name="snmp.poll_seconds", value=round(seconds, 6)))
        return PollResult(st.target.device, st.site, ts, samples, seconds=seconds)

    def _emit(self, st: TargetState, r: PollResult) -> None:
        """Publish one result; on a reachability change, also publish an event."""
        st.polls += 1
        st.seq += 1
        msg = wire.Metrics(device=r.device, site=r.site, seq=st.seq, ts=r.ts, samples=r.samples,
                           agent=__version__)
        self.publish(r.site, r.device, "metrics", wire.encode(msg))
        up = r.error is None
        if not up:
            st.failures += 1
        if up != st.up and not (up and st.up is None):
            kind = "snmp.reachable" if up else "snmp.unreachable"
            fields: dict[str, str | int | float | bool | None] = {
                "host": st.target.host, "port": st.target.port}
            if r.error:
                fields["error"] = r.error
                log.warning("SNMP %s/%s (%s:%s): %s", r.site, r.device, st.target.host,
                            st.target.port, r.error)
            else:
                log.info("SNMP %s/%s answers again", r.site, r.device)
            event = wire.Event(device=r.device, site=r.site, type=kind, ts=r.ts, fields=fields)
            self.publish(r.site, r.device, "events", wire.encode(event))
        st.up = up

    async def poll_all(self, targets: Sequence[TargetState] | None = None) -> list[PollResult]:
        """One round over `targets` (default: all) at once, publishing each result."""
        chosen = self.targets if targets is None else targets
        results = await asyncio.gather(*(self.poll(st) for st in chosen))
        for st, r in zip(chosen, results, strict=True):
            self._emit(st, r)
        return list(results)

    # -- the loop thread ------------------------------------------------------------------

    async def _schedule(self, st: TargetState) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._emit(st, await self.poll(st))
            next_at += st.interval
            behind = loop.time() - next_at
            if behind > 0:  # a slow poll: skip the missed slots instead of bursting
                next_at += st.interval * (int(behind // st.interval) + 1)

    async def run(self) -> None:
        """Poll every target on its own schedule until cancelled (the client must be open)."""
        tasks = [asyncio.create_task(self._schedule(st), name=f"snmp:{st.target.device}")
                 for st in self.targets]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def open(self) -> None:
        """Create the client inside the running loop (pysnmp binds to the current loop)."""
        self.client = SnmpClient(self.cfg.concurrency)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
