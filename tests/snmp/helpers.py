"""Run the SNMP poller for one round in a private loop, collecting what it publishes."""

from __future__ import annotations

import asyncio
from typing import Any

from fieldwatch.agent.snmp.config import SnmpConfig
from fieldwatch.agent.snmp.poller import PollResult, SnmpPoller

from fieldwatch import wire
from fieldwatch.structs import convert


class Published(list[tuple[str, str, str, wire.Message]]):
    """(site, device, kind, decoded message) as the poller handed them to `publish`."""

    def __call__(self, site: str, device: str, kind: str, payload: bytes) -> None:
        self.append((site, device, kind, wire.decode(payload)))

    def events(self, device: str | None = None) -> list[wire.Event]:
        return [m for _, d, k, m in self if k == "events" and isinstance(m, wire.Event)
                and device in (None, d)]


def poll_round(snmp: dict[str, Any], site: str = "lab") -> tuple[list[PollResult], Published]:
    out = Published()
    poller = SnmpPoller(convert(SnmpConfig, snmp), site, out)

    async def run() -> list[PollResult]:
        await poller.open()
        try:
            return await poller.poll_all()
        finally:
            poller.close()

    return asyncio.run(run()), out


def values(result: PollResult, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}
