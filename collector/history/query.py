"""The embedded store as a HistoryBackend: series by selector, points by range and step.

Which data answers is decided by the range (rollup.resolution): raw samples while the whole
range is within `raw_for`, else 5 min rollups within `rollup_5m_for`, else hourly ones; a step
of 5 min or more reads the rollups of that width even within raw's range. A rollup range ends
with the buckets the job has not rolled up yet (the open one, the settling ones): those come
from raw samples, aggregated here the same way. Rollup points are (bucket start, average),
with the buckets' min and max alongside; a step coarser than the data regroups it on
epoch-aligned step buckets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.history import Query, Series, SeriesKey
from fieldwatch.collector.history.compute import series_points
from fieldwatch.collector.history.config import HistoryConfig
from fieldwatch.collector.history.rollup import (
    HOUR,
    WIDTHS,
    Agg,
    Horizons,
    bucket_of,
    by_step,
    resolution,
    rollup,
)
from fieldwatch.collector.history.schema import (
    rollups_1h,
    rollups_5m,
    samples,
    series,
    series_sets,
)
from fieldwatch.collector.rules.selectors import Selector
from fieldwatch.collector.store.schema import devices, meta
from fieldwatch.collector.store.store import device_type_of

from fieldwatch.clock import Clock, SystemClock
from fieldwatch.errors import FieldwatchError

MAX_SERIES = 1000  # per query: a selector matching more is refused (narrow it)
_CHUNK = 500
_META = "history_horizons"


class TooManySeries(FieldwatchError):
    """A query's selector matches more series than one answer may carry."""


def record_horizons(engine: sa.Engine, cfg: HistoryConfig) -> None:
    """Tell readers in other processes (the CLI) which horizons the collector keeps."""
    value = json.dumps([cfg.raw_for, cfg.rollup_5m_for, cfg.rollup_1h_for])
    with engine.begin() as conn:
        if conn.execute(sa.select(meta.c.value).where(meta.c.key == _META)).first() is None:
            conn.execute(meta.insert().values(key=_META, value=value))
        else:
            conn.execute(meta.update().where(meta.c.key == _META).values(value=value))


def stored_horizons(engine: sa.Engine) -> Horizons:
    """The horizons the collector recorded, else the defaults."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == _META)).first()
    if row is not None:
        try:
            raw, five, hour = json.loads(row[0])
            return Horizons(float(raw), float(five), float(hour))
        except (ValueError, TypeError):
            pass  # unreadable: the defaults are as good a guess
    d = HistoryConfig()
    return Horizons(d.raw_for, d.rollup_5m_for, d.rollup_1h_for)


class EmbeddedHistory:
    """HistoryBackend over the store's tables. `horizons` None: as the collector recorded."""

    def __init__(self, engine: sa.Engine, horizons: Horizons | None = None,
                 clock: Clock | None = None) -> None:
        self.engine = engine
        self._horizons = horizons
        self.clock = clock or SystemClock()

    @property
    def horizons(self) -> Horizons:
        if self._horizons is None:
            self._horizons = stored_horizons(self.engine)
        return self._horizons

    # -- the contract ---------------------------------------------------------------------------

    def series(self, query: Query) -> list[SeriesKey]:
        """Matching series with data in [start, end] (raw samples or hourly rollups); with
        end <= start, every matching series known."""
        with self.engine.connect() as conn:
            found = self._matching(conn, query.metric, query.selector)
            if query.end > query.start:
                live = self._recent(conn, found, query.start, query.end)
                ids = [i for i in found if i not in live]
                for i in range(0, len(ids), _CHUNK):
                    live.update(conn.execute(sa.select(rollups_1h.c.series_id).distinct().where(
                        rollups_1h.c.series_id.in_(ids[i:i + _CHUNK]),
                        rollups_1h.c.bucket >= bucket_of(query.start, HOUR),
                        rollups_1h.c.bucket <= query.end)).scalars())
                found = {i: k for i, k in found.items() if i in live}
        return sorted((k for _, k in found.values()), key=_order)

    def query(self, query: Query) -> list[Series]:
        res = resolution(query.start, self.clock.now(), query.step, self.horizons)
        with self.engine.connect() as conn:
            found = self._matching(conn, query.metric, query.selector)
            if len(found) > MAX_SERIES:
                raise TooManySeries(f"the selector matches {len(found)} series; at most "
                                    f"{MAX_SERIES} per query: narrow it")
            by_device: dict[int, list[int]] = {}
            for sid, (dev, _) in found.items():
                by_device.setdefault(dev, []).append(sid)
            out = []
            for dev, sids in by_device.items():
                if res == "raw":
                    out += self._raw(conn, dev, {s: found[s][1] for s in sids}, query)
                else:
                    out += self._rolled(conn, dev, {s: found[s][1] for s in sids}, query, res)
        return sorted((s for s in out if s.points), key=lambda s: _order(s.key))

    # -- pieces ---------------------------------------------------------------------------------

    def _matching(self, conn: sa.Connection, metric: str, sel: Selector
                  ) -> dict[int, tuple[int, SeriesKey]]:
        """series id → (device id, key) of the series `metric` and `sel` match."""
        q = sa.select(series.c.id, series.c.device_id, series.c.site, series.c.device,
                      series.c.metric, series.c.labels)
        if metric:
            q = q.where(series.c.metric == metric)
        for col, m in ((series.c.device, sel.device), (series.c.site, sel.site)):
            if m is not None and m.op == "=":
                q = q.where(col == m.value)
        out: dict[int, tuple[int, SeriesKey]] = {}
        types = self._types(conn) if sel.type is not None else {}
        for sid, dev, site, device, name, labels in conn.execute(q):
            lab = json.loads(labels)
            if sel.matches_device(site, device, types.get((site, device), "")) \
                    and sel.matches_labels(lab):
                out[int(sid)] = (int(dev), SeriesKey(site, device, name,
                                                     tuple(sorted(lab.items()))))
        return out

    @staticmethod
    def _types(conn: sa.Connection) -> dict[tuple[str, str], str]:
        rows = conn.execute(sa.select(devices.c.site, devices.c.device, devices.c.inventory))
        return {(s, d): device_type_of(inv) or "" for s, d, inv in rows}

    def _recent(self, conn: sa.Connection, found: dict[int, tuple[int, SeriesKey]],
                start: float, end: float) -> set[int]:
        """Series with raw samples in the part of [start, end] raw still holds: the sets
        their devices' rows there use (rows of the hours not rolled up yet, mostly)."""
        start = max(start, self.clock.now() - self.horizons.raw_for)
        devs = sorted({d for d, _ in found.values()})
        live: set[int] = set()
        for i in range(0, len(devs), _CHUNK):
            used = sa.select(samples.c.set_id).distinct().where(
                samples.c.device_id.in_(devs[i:i + _CHUNK]), samples.c.ts >= start,
                samples.c.ts <= end).scalar_subquery()
            for ids in conn.execute(sa.select(series_sets.c.series).where(
                    series_sets.c.id.in_(used))).scalars():
                live.update(json.loads(ids))
        return live

    @staticmethod
    def _raw(conn: sa.Connection, dev: int, keys: dict[int, SeriesKey], q: Query
             ) -> list[Series]:
        points = series_points(conn, [dev], q.start, q.end, wanted=keys)
        if q.step is None:
            return [Series(k, points.get(sid, []), "raw") for sid, k in keys.items()]
        step = q.step
        return [_series(k, by_step(((ts, Agg.of(v)) for ts, v in points.get(sid, [])), step),
                        "raw") for sid, k in keys.items()]

    @staticmethod
    def _rolled(conn: sa.Connection, dev: int, keys: dict[int, SeriesKey], q: Query,
                res: str) -> list[Series]:
        width = WIDTHS[res]
        c = (rollups_5m if res == "5m" else rollups_1h).c
        first = bucket_of(q.start, width)
        # plain tuples (bucket, min, max, sum, count, last): a 7-day range is 2016 rows
        rows: dict[int, list[tuple[Any, ...]]] = {sid: [] for sid in keys}
        for sid, *row in conn.execute(
                sa.select(c.series_id, c.bucket, c.min, c.max, c.sum, c.count, c.last).where(
                    c.series_id.in_(list(keys)), c.bucket >= first, c.bucket <= q.end)
                .order_by(c.series_id, c.bucket)).all():
            rows[sid].append(row)
        # the buckets not rolled up yet (the open one, the settling ones): from raw, alike
        tail_from = {sid: r[-1][0] + width if r else first for sid, r in rows.items()}
        start = min(tail_from.values())
        if start <= q.end:
            raw = series_points(conn, [dev], start, q.end, wanted=keys)
            for sid, pts in raw.items():
                tail = rollup((p for p in pts if p[0] >= tail_from[sid]), width)
                rows[sid] += [(b, a.min, a.max, a.sum, a.count, a.last)
                              for b, a in sorted(tail.items())]
        out = []
        for sid, k in keys.items():
            r = rows[sid]
            if q.step is not None and q.step > width:
                out.append(_series(k, by_step(((b, Agg(*x)) for b, *x in r), q.step), res))
            else:
                out.append(Series(k, [(float(x[0]), x[3] / x[4]) for x in r], res,
                                  [x[1] for x in r], [x[2] for x in r]))
        return out


def _series(key: SeriesKey, pts: Iterable[tuple[float, Agg]], res: str) -> Series:
    pts = list(pts)
    return Series(key, [(t, a.avg) for t, a in pts], res, [a.min for _, a in pts],
                  [a.max for _, a in pts])


def _order(k: SeriesKey) -> tuple[Any, ...]:
    return (k.metric, k.site, k.device, k.labels)
