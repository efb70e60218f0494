"""Alert and series state the engine keeps between evaluations. Plain slotted objects: the
collector holds one EngineState in memory; `rules test` and `rules backtest` make their own."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fieldwatch.collector.rules.anomaly import Baseline
from fieldwatch.collector.rules.recent import Recent
from fieldwatch.collector.rules.windows import Window

NEG_INF = -math.inf


@dataclass(slots=True, eq=False)
class AlertState:
    state: Literal["pending", "firing"]
    since: float  # sample time the condition became true
    last_ts: float
    value: float
    rule: str = ""
    site: str = ""
    device: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    fired_at: float = math.nan
    clearing_since: float | None = None  # firing, condition false since (keep_firing/flapping)
    last_update: float = NEG_INF  # sample time of the last update sent to the ticket
    unsent: int = 0  # samples folded since then
    flapping: bool = False
    silenced: str | None = None  # id of the silence that muted its opening
    suppressed_by: str | None = None  # fingerprint of the parent's alert that explains it
    parent: str | None = None
    reason: str = ""
    last_rx: float = 0.0  # collector time of its last sample (metric) or event
    gaps: list[float] | None = None  # metric: recent gaps between its series' samples
    stale: float = 0.0  # metric: its stale_after, worked out once per sample (0: not yet)
    resolution: str = ""  # why it ended, when not by its own condition ("no data ...")
    home: Any = None  # the Series holding it (metric alerts), to unlink on delete
    dev: Any = None  # the DeviceState


class Series:
    __slots__ = ("rules", "gen", "window", "alerts", "anomaly", "last_ts")

    def __init__(self) -> None:
        self.rules: tuple[Any, ...] = ()
        self.gen = -1
        self.window: Window | None = None
        self.alerts: dict[str, AlertState] | None = None
        self.anomaly: dict[str, Baseline] | None = None
        self.last_ts = NEG_INF


class DeviceState:
    __slots__ = ("site", "device", "dtype", "parent", "last_rx", "status", "status_cause",
                 "status_at", "series", "hot", "recent", "recent_ev", "metric_rx", "fps",
                 "drules", "gen", "confirmed", "poller", "last_ts", "gaps", "declared")

    def __init__(self, site: str, device: str) -> None:
        self.site = site
        self.device = device
        self.dtype = ""
        self.parent: str | None = None
        self.last_rx = NEG_INF
        self.status: str | None = None
        self.status_cause = ""
        self.status_at = NEG_INF
        self.series: dict[tuple[Any, ...], Series] = {}
        self.hot: dict[str, int] = {}  # metric name → alerts in flight (no fast path)
        self.recent = Recent(whole=True)  # recent metrics (seq, ts), to drop duplicates
        self.recent_ev = Recent()  # recent events' (seq, ts)
        self.metric_rx: dict[str, float] = {}  # absent rule → last matching sample received
        self.fps: dict[str, str] = {}  # device-level rule → fingerprint
        self.drules: tuple[Any, ...] = ()  # device-level rules that select this device
        self.gen = -1
        self.confirmed = False  # sent metrics or inventory (not only a status) to us
        self.poller: str | None = None  # the agent that polls it (inventory `polled_by`)
        self.last_ts = NEG_INF  # newest metrics message time, for the interval estimate
        self.gaps: list[float] = []  # recent gaps between its newest metrics messages
        self.declared = 0.0  # the interval its inventory declares (0: none)


class EngineState:
    """Everything the engine remembers. `alerts` maps fingerprint → AlertState."""

    def __init__(self) -> None:
        self.alerts: dict[str, AlertState] = {}
        self.devices: dict[tuple[str, str], DeviceState] = {}
        self.flaps: dict[str, list[float]] = {}  # fingerprint → recent state-change times
        self.muted: set[str] = set()  # firing alerts whose ticket a silence/parent holds back
        self.events: set[str] = set()  # event alerts (resolve_after is checked on ticks)
        self.link_down: list[tuple[float, float]] = []  # collector cut off from the broker
        self.link_down_since: float | None = None
        self.last_connected: float | None = None
        self.duplicates = 0
        self.last_sweep = NEG_INF

    def silent_for(self, since: float, now: float) -> float:
        """Seconds from `since` to `now` minus the time the collector was cut off: a device
        cannot be blamed for silence the collector could not have heard."""
        gap = now - since
        for a, b in self.link_down:
            overlap = min(b, now) - max(a, since)
            if overlap > 0:
                gap -= overlap
        if self.link_down_since is not None:
            overlap = now - max(self.link_down_since, since)
            if overlap > 0:
                gap -= overlap
        return gap

    def set_link(self, now: float, connected: bool) -> None:
        """Record whether the collector hears the broker (sampled on each tick)."""
        if not connected:
            if self.link_down_since is None:
                last = self.last_connected
                self.link_down_since = now if last is None else last
        else:
            if self.link_down_since is not None:
                self.link_down.append((self.link_down_since, now))
                del self.link_down[:-64]
                self.link_down_since = None
            self.last_connected = now
