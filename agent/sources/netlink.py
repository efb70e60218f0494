"""NIC link state per interface: `net.up{nic}` (1/0), `net.speed_mbps`, `net.full_duplex`,
`net.mtu`.

A cable pulled or a switch port gone shows here first; counters are in net.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample


class NetLinkSource:
    name = "netlink"

    def __init__(self, exclude: tuple[str, ...] = ("lo",), ps: ModuleType = psutil) -> None:
        self.exclude = exclude
        self._ps = ps

    def collect(self) -> Iterator[Sample]:
        full = getattr(self._ps, "NIC_DUPLEX_FULL", 2)
        unknown = getattr(self._ps, "NIC_DUPLEX_UNKNOWN", 0)
        for nic, st in sorted(self._ps.net_if_stats().items()):
            if nic in self.exclude:
                continue
            yield sample("net.up", 1 if st.isup else 0, nic=nic)
            if st.speed:  # 0: the OS does not know (virtual NICs, Wi-Fi on some systems)
                yield sample("net.speed_mbps", st.speed, nic=nic)
            if st.duplex != unknown:
                yield sample("net.full_duplex", 1 if st.duplex == full else 0, nic=nic)
            yield sample("net.mtu", st.mtu, nic=nic)
