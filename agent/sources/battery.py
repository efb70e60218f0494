"""Battery of laptops, tablets and panel PCs: `battery.percent`, `battery.plugged` (1/0) and
`battery.seconds_left` while discharging. No battery: no samples (not an error)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample


class BatterySource:
    name = "battery"

    def __init__(self, ps: ModuleType = psutil) -> None:
        self._ps = ps

    def collect(self) -> Iterator[Sample]:
        bat = self._ps.sensors_battery()
        if bat is None:
            return
        yield sample("battery.percent", bat.percent)
        if bat.power_plugged is not None:
            yield sample("battery.plugged", 1 if bat.power_plugged else 0)
        if isinstance(bat.secsleft, int | float) and bat.secsleft >= 0:  # not POWER_TIME_*
            yield sample("battery.seconds_left", bat.secsleft)
