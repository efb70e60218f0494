"""The SNMP subsystem's own health, published with the agent's own metrics.

Reads counters the SNMP thread keeps (plain ints: reading them races harmlessly).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample

if TYPE_CHECKING:
    from fieldwatch.agent.snmp.service import SnmpService


class SnmpHealthSource:
    name = "snmp"

    def __init__(self, service: SnmpService) -> None:
        self.service = service

    def collect(self) -> Iterable[Sample]:
        targets = self.service.poller.targets
        yield sample("snmp.targets", len(targets))
        yield sample("snmp.targets_up", sum(1 for t in targets if t.up))
        yield sample("snmp.poll_failures_total", sum(t.failures for t in targets))
        r = self.service.receiver
        if r is not None:
            yield sample("snmp.traps_received_total", r.received)
            yield sample("snmp.traps_unknown_source_total", sum(r.unknown_sources.values()))
            yield sample("snmp.trap_errors_total", r.errors)
