"""Charts as geometry, pure: series and thresholds → SVG coordinates the templates draw
(templates/_charts.html). No charting library: a polyline per stretch of data, axis ticks at
round numbers and round times, threshold lines across the plot.

A series is cut where it has a gap (a step over GAP x its usual step, or a NaN), so a device
that was offline shows no invented line. Long series are reduced to at most two points (the
lowest and highest, in time order) per horizontal pixel, which keeps every spike visible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import median

GAP = 3.0  # a step over GAP x the median step breaks the line
SERIES_CLASSES = 8  # s0..s7 in desk.css


@dataclass(frozen=True)
class Box:
    width: int = 720
    height: int = 220
    left: int = 56
    right: int = 12
    top: int = 10
    bottom: int = 26

    @property
    def x0(self) -> float:
        return float(self.left)

    @property
    def x1(self) -> float:
        return float(self.width - self.right)

    @property
    def y0(self) -> float:  # bottom of the plot (SVG y grows downwards)
        return float(self.height - self.bottom)

    @property
    def y1(self) -> float:
        return float(self.top)


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Line:
    label: str
    css: str  # s0..s7
    segments: tuple[str, ...]  # SVG `points` of each polyline
    count: int  # points drawn (after reduction)
    last: float | None  # the newest value


@dataclass(frozen=True)
class Threshold:
    """A horizontal line at `value`: `label` says whose (a rule's name), `kind` its role."""

    value: float
    label: str
    kind: str = "when"  # when | clear
    op: str = ">"  # the comparison with the value: ">" fires above the line
    y: float = 0.0


@dataclass(frozen=True)
class LineChart:
    box: Box
    lines: tuple[Line, ...]
    thresholds: tuple[Threshold, ...]
    xticks: tuple[Tick, ...]
    yticks: tuple[Tick, ...]
    t0: float
    t1: float
    v0: float
    v1: float

    @property
    def points(self) -> int:
        return sum(line.count for line in self.lines)


def nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5, 5 x 10^n) giving about `count` intervals over `span`."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag  # pragma: no cover - the loop ends at 10


def value_range(values: Sequence[float], count: int = 4) -> tuple[float, float, float]:
    """(low, high, step): a round range around `values` (one value or none: a unit range)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0, 0.25
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, count)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


TIME_STEPS = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400,
              2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)


def time_ticks(t0: float, t1: float, count: int = 6) -> list[float]:
    """Round instants (UTC minutes, hours, days) between t0 and t1, about `count` of them."""
    span = t1 - t0
    if span <= 0:
        return [t0]
    step = next((s for s in TIME_STEPS if span / s <= count), TIME_STEPS[-1])
    first = math.ceil(t0 / step) * step
    return [first + i * step for i in range(int((t1 - first) // step) + 1)]


def format_value(v: float) -> str:
    """An axis label: short, no float noise (0.30000000000000004 → 0.3, 1500000 → 1.5M)."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.4g}G"
    if a >= 1e6:
        return f"{v / 1e6:.4g}M"
    if a >= 1e4:
        return f"{v / 1e3:.4g}k"
    return f"{v:.4g}"


def reduce(points: Sequence[tuple[float, float]], buckets: int) -> list[tuple[float, float]]:
    """At most two points per bucket of equal time: the lowest and highest, in time order."""
    if len(points) <= 2 * buckets or buckets < 1:
        return list(points)
    t0, t1 = points[0][0], points[-1][0]
    width = (t1 - t0) / buckets or 1.0
    out: list[tuple[float, float]] = []
    group: list[tuple[float, float]] = []
    current = 0
    for p in points:
        b = min(int((p[0] - t0) / width), buckets - 1)
        if b != current and group:
            out.extend(_extremes(group))
            group = []
        current = b
        group.append(p)
    out.extend(_extremes(group))
    return out


def _extremes(group: list[tuple[float, float]]) -> list[tuple[float, float]]:
    lo = min(group, key=lambda p: p[1])
    hi = max(group, key=lambda p: p[1])
    if lo is hi:
        return [lo]
    return [lo, hi] if lo[0] <= hi[0] else [hi, lo]


def split(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Stretches of finite values without a gap."""
    steps = [b[0] - a[0] for a, b in zip(points, points[1:], strict=False) if b[0] > a[0]]
    limit = GAP * median(steps) if steps else math.inf
    out: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    prev: float | None = None
    for t, v in points:
        if not (math.isfinite(v) and math.isfinite(t)):
            if cur:
                out.append(cur)
            cur, prev = [], None
            continue
        if prev is not None and t - prev > limit and cur:
            out.append(cur)
            cur = []
        cur.append((t, v))
        prev = t
    if cur:
        out.append(cur)
    return out


@dataclass
class SeriesIn:
    label: str
    points: Sequence[tuple[float, float]]
    extra: dict[str, str] = field(default_factory=dict)


def line_chart(series: Sequence[SeriesIn], t0: float, t1: float,
               thresholds: Sequence[Threshold] = (), box: Box | None = None,
               time_label: Callable[[float], str] = str) -> LineChart:
    """The geometry of one chart over [t0, t1]: each series reduced and cut into stretches,
    the value axis wide enough for the data and every threshold."""
    box = box or Box()
    t1 = t1 if t1 > t0 else t0 + 1.0
    kept = [[p for p in s.points if t0 <= p[0] <= t1] for s in series]
    values = [v for pts in kept for _, v in pts] + [th.value for th in thresholds]
    lo, hi, step = value_range(values)

    sx = (box.x1 - box.x0) / (t1 - t0)
    sy = (box.y0 - box.y1) / (hi - lo)
    x0, y0 = box.x0, box.y0

    def x(t: float) -> float:
        return x0 + (t - t0) * sx

    def y(v: float) -> float:
        return y0 - (v - lo) * sy

    buckets = int(box.x1 - box.x0)
    lines = []
    for i, (s, pts) in enumerate(zip(series, kept, strict=True)):
        segs = [reduce(seg, buckets) for seg in split(pts)]
        finite = [v for _, v in pts if math.isfinite(v)]
        drawn = tuple(" ".join([f"{x0 + (t - t0) * sx:.1f},{y0 - (v - lo) * sy:.1f}"
                                for t, v in seg]) for seg in segs)
        lines.append(Line(s.label, f"s{i % SERIES_CLASSES}", drawn,
                          sum(len(seg) for seg in segs), finite[-1] if finite else None))
    ticks = []
    n = int(round((hi - lo) / step))
    for i in range(n + 1):
        v = lo + i * step
        ticks.append(Tick(y(v), format_value(round(v, 12))))
    return LineChart(
        box, tuple(lines),
        tuple(Threshold(th.value, th.label, th.kind, th.op, y(th.value)) for th in thresholds),
        tuple(Tick(x(t), time_label(t)) for t in time_ticks(t0, t1)), tuple(ticks),
        t0, t1, lo, hi)


# -- bars (the KPI dashboard) ------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    label: str  # category and value, for the tooltip (<title>)
    value: float


@dataclass(frozen=True)
class BarChart:
    box: Box
    bars: tuple[Bar, ...]
    xticks: tuple[Tick, ...]  # one per category, at its middle
    yticks: tuple[Tick, ...]
    legend: tuple[tuple[str, str], ...]  # (css, name)
    line: str = ""  # an overlaid polyline (the Pareto's cumulative share), `points`
    line_ticks: tuple[Tick, ...] = ()  # its axis on the right (0-100 %)

    @property
    def empty(self) -> bool:
        return not self.bars


def bar_chart(categories: Sequence[str], groups: Sequence[tuple[str, Sequence[float | None]]],
              box: Box | None = None, cumulative: Sequence[float] | None = None,
              unit: Callable[[float], str] = format_value, top: float | None = None
              ) -> BarChart:
    """Grouped bars: one group per category, one bar per named series (None: no bar).
    `cumulative` (percent per category) draws the Pareto line against a 0-100 % axis; `top`
    fixes the value axis (100 for percentages), else it fits the values."""
    box = box or Box()
    values = [v for _, vs in groups for v in vs if v is not None and math.isfinite(v)]
    _, hi, step = value_range([0.0, *values]) if top is None else (0.0, top, top / 4)
    n = max(len(categories), 1)
    slot = (box.x1 - box.x0) / n
    width = slot * 0.8 / max(len(groups), 1)

    def y(v: float) -> float:
        return box.y0 - v / hi * (box.y0 - box.y1)

    bars = []
    for gi, (name, vs) in enumerate(groups):
        for ci, v in enumerate(vs):
            if v is None or not math.isfinite(v):
                continue
            left = box.x0 + ci * slot + slot * 0.1 + gi * width
            bars.append(Bar(left, y(v), width, box.y0 - y(v), f"s{gi % SERIES_CLASSES}",
                            f"{categories[ci]} · {name}: {unit(v)}", v))
    yticks = tuple(Tick(y(i * step), unit(round(i * step, 12)))
                   for i in range(int(round(hi / step)) + 1))
    xticks = tuple(Tick(box.x0 + (i + 0.5) * slot, c) for i, c in enumerate(categories))
    line, line_ticks = "", ()
    if cumulative is not None:
        def yp(p: float) -> float:
            return box.y0 - p / 100.0 * (box.y0 - box.y1)
        line = " ".join(f"{box.x0 + (i + 0.5) * slot:.1f},{yp(p):.1f}"
                        for i, p in enumerate(cumulative))
        line_ticks = tuple(Tick(yp(p), f"{p}%") for p in (0, 25, 50, 75, 100))
    return BarChart(box, tuple(bars), xticks, yticks,
                    tuple((f"s{i % SERIES_CLASSES}", name) for i, (name, _) in enumerate(groups)),
                    line, line_ticks)
