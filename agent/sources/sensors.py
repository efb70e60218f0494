"""Temperatures (`temp.celsius{sensor}`, with `temp.high_celsius` / `temp.crit_celsius` limits)
and fan speeds (`fan.rpm{sensor}`).

On Linux the hwmon tree is read directly (`read_hwmon`), so a checked-in fake tree drives the
same code the agent runs; elsewhere psutil's sensors functions answer (FreeBSD: temperatures
only; macOS and Windows: none, see docs/agent.md). `sensor` is `<chip>/<label>`, e.g.
`coretemp/Package id 0`, `nct6775/fan2`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil
from fieldwatch.agent.sources.base import sample

from fieldwatch.wire import Sample


@dataclass(frozen=True)
class Reading:
    sensor: str
    value: float
    high: float | None = None
    critical: float | None = None


def _num(path: Path, scale: float) -> float | None:
    try:
        return int(path.read_text().strip()) / scale
    except (OSError, ValueError):  # absent, or a sensor the driver cannot read right now
        return None


def _chip_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.name.startswith("hwmon"))


def read_hwmon(root: Path, kind: str) -> list[Reading]:
    """Every `<kind>N_input` under `root/hwmon*` (kind: `temp` in m°C or `fan` in RPM)."""
    scale = 1000.0 if kind == "temp" else 1.0
    out = []
    for chip_dir in _chip_dirs(root):
        # some drivers put the attributes one level down, in device/
        base = chip_dir if (chip_dir / "name").exists() else chip_dir / "device"
        try:
            chip = (base / "name").read_text().strip()
        except OSError:
            chip = chip_dir.name
        for inp in sorted(base.glob(f"{kind}*_input")):
            stem = inp.name[: -len("_input")]
            value = _num(inp, scale)
            if value is None:
                continue
            try:
                label = (base / f"{stem}_label").read_text().strip() or stem
            except OSError:
                label = stem
            out.append(Reading(f"{chip}/{label}", value, _num(base / f"{stem}_max", scale),
                               _num(base / f"{stem}_crit", scale)))
    return out


def _from_psutil(entries: dict[str, list[object]]) -> list[Reading]:
    out = []
    for chip, items in sorted(entries.items()):
        for i, e in enumerate(items, 1):
            label = getattr(e, "label", "") or f"{i}"
            out.append(Reading(f"{chip}/{label}", float(e.current),  # type: ignore[attr-defined]
                               getattr(e, "high", None), getattr(e, "critical", None)))
    return out


class _SensorSource:
    kind = ""

    def __init__(self, hwmon: Path | None = Path("/sys/class/hwmon"),
                 ps: ModuleType = psutil) -> None:
        self.hwmon = hwmon
        self._ps = ps

    def readings(self) -> list[Reading]:
        if self.hwmon is not None and self.hwmon.is_dir():
            return read_hwmon(self.hwmon, self.kind)
        fn = self._ps.sensors_temperatures if self.kind == "temp" else self._ps.sensors_fans
        return _from_psutil(fn())  # AttributeError on an OS without it: counted by the poller


class TemperatureSource(_SensorSource):
    name = "temperatures"
    kind = "temp"

    def collect(self) -> Iterator[Sample]:
        for r in self.readings():
            yield sample("temp.celsius", r.value, sensor=r.sensor)
            if r.high:
                yield sample("temp.high_celsius", r.high, sensor=r.sensor)
            if r.critical:
                yield sample("temp.crit_celsius", r.critical, sensor=r.sensor)


class FanSource(_SensorSource):
    name = "fans"
    kind = "fan"

    def collect(self) -> Iterator[Sample]:
        for r in self.readings():
            yield sample("fan.rpm", r.value, sensor=r.sensor)
