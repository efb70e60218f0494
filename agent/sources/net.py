"""NIC counters per interface, raw (`net.rx_bytes_total{nic}`...): rates are the rules' job."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample

_COUNTERS = (
    ("bytes_recv", "net.rx_bytes_total"), ("bytes_sent", "net.tx_bytes_total"),
    ("packets_recv", "net.rx_packets_total"), ("packets_sent", "net.tx_packets_total"),
    ("errin", "net.rx_errors_total"), ("errout", "net.tx_errors_total"),
    ("dropin", "net.rx_drops_total"), ("dropout", "net.tx_drops_total"),
)


class NetSource:
    name = "net"

    def __init__(self, exclude: tuple[str, ...] = ("lo",), ps: ModuleType = psutil) -> None:
        self.exclude = exclude
        self._ps = ps

    def collect(self) -> Iterator[Sample]:
        for nic, c in sorted(self._ps.net_io_counters(pernic=True).items()):
            if nic in self.exclude:
                continue
            for attr, metric in _COUNTERS:
                yield sample(metric, getattr(c, attr), nic=nic)
