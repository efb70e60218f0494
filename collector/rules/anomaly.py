"""A metric against its own learned baseline: exponentially weighted mean and deviation,
optionally one baseline per slot of a season (e.g. 24 hourly slots of a day), with a warm-up.

zscore = (value - mean) / deviation, NaN while the slot has seen fewer than `warmup` samples, so
a comparison on it is false and a fresh series cannot fire. Time constants are in seconds of
sample time (the weight of a sample depends on the gap since the previous one), so a device
sending every 10 s and one sending every minute learn over the same horizon.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

NAN = math.nan
_STRIDE = 4  # last_ts, n, mean, var


@dataclass(frozen=True)
class AnomalySpec:
    half_life: float = 3600.0  # seconds of sample time for old samples' weight to halve
    warmup: int = 30  # samples per slot before it may judge
    season: float = 0.0  # 0: one baseline; else the season length (e.g. 86400)
    slots: int = 24  # slots per season
    min_deviation: float = 1e-9  # floor so a perfectly flat metric does not divide by ~0


class Baseline:
    __slots__ = ("buf",)

    def __init__(self, slots: int) -> None:
        self.buf = array("d", (NAN, 0.0, 0.0, 0.0) * slots)

    def _slot(self, spec: AnomalySpec, ts: float) -> int:
        if spec.season <= 0:
            return 0
        return int((ts % spec.season) / spec.season * spec.slots) % spec.slots * _STRIDE

    def judge(self, spec: AnomalySpec, ts: float, v: float) -> tuple[float, float, float]:
        """(zscore, mean, deviation) of v against what was learned before it."""
        buf = self.buf
        i = self._slot(spec, ts)
        if buf[i + 1] < spec.warmup:
            return NAN, (buf[i + 2] if buf[i + 1] else NAN), NAN
        mean = buf[i + 2]
        dev = max(math.sqrt(buf[i + 3]), spec.min_deviation)
        return (v - mean) / dev, mean, dev

    def learn(self, spec: AnomalySpec, ts: float, v: float) -> None:
        buf = self.buf
        i = self._slot(spec, ts)
        last = buf[i]
        if buf[i + 1] == 0:
            buf[i], buf[i + 1], buf[i + 2], buf[i + 3] = ts, 1.0, v, 0.0
            return
        if ts <= last:
            return
        # weight of the new sample grows with the gap since the previous one in this slot
        gap = ts - last
        if spec.season > 0:
            gap = min(gap, spec.season)  # a slot is visited once per season
        alpha = 1.0 - math.pow(0.5, gap / spec.half_life)
        if buf[i + 1] < spec.warmup:  # warming up: a plain running mean learns fastest
            alpha = max(alpha, 1.0 / (buf[i + 1] + 1.0))
        diff = v - buf[i + 2]
        incr = alpha * diff
        buf[i + 2] += incr
        buf[i + 3] = (1.0 - alpha) * (buf[i + 3] + diff * incr)
        buf[i] = ts
        buf[i + 1] += 1.0
