"""The SNMP thread: one asyncio loop running the poller and the trap receiver.

The agent builds it only when `snmp:` has targets or traps enabled, so pysnmp is imported
only then. `start()` returns once the loop runs and the trap port is bound (or raises).
"""

from __future__ import annotations

import asyncio
import logging
import threading

from fieldwatch.agent.snmp.config import SnmpConfig
from fieldwatch.agent.snmp.poller import Publish, SnmpPoller
from fieldwatch.agent.snmp.profile import Profile
from fieldwatch.agent.snmp.traps import TrapReceiver

from fieldwatch.clock import Clock, SystemClock
from fieldwatch.errors import SourceError

log = logging.getLogger(__name__)


class SnmpService:
    def __init__(self, cfg: SnmpConfig, site: str, publish: Publish, clock: Clock | None = None,
                 profiles: dict[str, Profile] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.poller = SnmpPoller(cfg, site, publish, self.clock, profiles)  # loads profiles
        self.receiver = (TrapReceiver(cfg.traps, cfg.targets, site, publish, self.clock)
                         if cfg.traps.enabled else None)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            if self.receiver is not None:
                self.receiver.open()
            await self.poller.open()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            self._close()
            return
        self._started.set()
        polling = asyncio.create_task(self.poller.run())
        try:
            await self._stop.wait()
        finally:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            self._close()

    def _close(self) -> None:
        self.poller.close()
        if self.receiver is not None:
            self.receiver.close()

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()),
                                        name="fieldwatch-snmp", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise SourceError("the SNMP thread did not start")
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise SourceError(f"SNMP could not start: {self._error}") from self._error
        log.info("SNMP: polling %d targets%s", len(self.poller.targets),
                 f", traps on port {self.receiver.port}" if self.receiver else "")

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = None
