"""History read from a Prometheus-compatible server (VictoriaMetrics, Prometheus, Mimir, Thanos)
instead of the embedded store: a `HistoryBackend` over its HTTP query API.

The query's metric and selector become one PromQL series selector, named as the exporter names
them (remote_write.py): `disk.used_percent{mount="/"}` on device `web-01` reads
`{__name__="disk_used_percent",device="web-01",mount="/"}`. Matchers keep their operators
(`=`, `!=`, `=~`, `!~`; both sides anchor regexes fully) and values are escaped as PromQL
strings. A `type` matcher needs the device types, which the server does not hold: pass
`device_types` (the collector's store knows them) and the series are filtered here.

What `query` returns (resolution "remote"):
- no step, a range up to `raw_within`: the raw samples, from an instant query of a range vector
  (`sel[<range>]` at `end`) — the points the exporter sent;
- otherwise: `avg_over_time(sel[step])` at each step of `query_range` (step chosen so a series
  has at most `max_points`), the bucket average like the embedded store's rollups.

Failures map to `RemoteHistoryError`: `unavailable` (connection, timeout, 5xx, 429) or
`refused` (the server rejected the query: 4xx, or an answer that is not a PromQL result).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from fieldwatch.collector.history import HistoryBackend, Query, Series, SeriesKey
from fieldwatch.collector.history.remote_config import RemoteQueryConfig
from fieldwatch.collector.history.remote_write import label_name, metric_name
from fieldwatch.collector.rules.selectors import Matcher

from fieldwatch.errors import FieldwatchError

DeviceTypes = Callable[[], Mapping[tuple[str, str], str]]  # (site, device) → type
_OWN = frozenset({"__name__", "site", "device"})


class RemoteHistoryError(FieldwatchError):
    """The history server could not answer: `kind` is `unavailable` (retry later) or
    `refused` (the query itself is wrong for the server)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def promql_string(text: str) -> str:
    """`text` as a double-quoted PromQL string literal (Go escapes)."""
    return '"' + text.translate(_ESCAPES) + '"'


def _matcher(name: str, m: Matcher) -> str:
    return f"{name}{m.op}{promql_string(m.value)}"


def selector(query: Query) -> str:
    """The PromQL series selector of `query` (metric, site, device and label matchers)."""
    sel = query.selector
    parts = [_matcher("__name__", Matcher("=", metric_name(query.metric)))]
    if sel.site is not None:
        parts.append(_matcher("site", sel.site))
    if sel.device is not None:
        parts.append(_matcher("device", sel.device))
    parts += [_matcher(label_name(k), m) for k, m in sorted(sel.labels.items())]
    return "{" + ",".join(parts) + "}"


def _duration(seconds: float) -> str:
    """A PromQL duration in whole milliseconds (at least 1ms)."""
    return f"{max(1, math.ceil(seconds * 1000))}ms"


def _key(metric: str, labels: Mapping[str, str]) -> SeriesKey:
    rest = tuple(sorted((k, v) for k, v in labels.items() if k not in _OWN))
    return SeriesKey(labels.get("site", ""), labels.get("device", ""), metric, rest)


class RemoteHistory(HistoryBackend):
    def __init__(self, cfg: RemoteQueryConfig, client: httpx.Client | None = None,
                 device_types: DeviceTypes | None = None) -> None:
        self.cfg = cfg
        self.base = str(cfg.url).rstrip("/")
        self.client = client or httpx.Client(timeout=cfg.timeout, headers=cfg.headers())
        self.device_types = device_types

    def close(self) -> None:
        self.client.close()

    # -- HistoryBackend ----------------------------------------------------------------------

    def series(self, query: Query) -> list[SeriesKey]:
        data = self._get("/api/v1/series", {"match[]": selector(query),
                                             "start": _ts(query.start), "end": _ts(query.end)})
        if not isinstance(data, list):
            raise RemoteHistoryError("refused", "series: the answer is not a list")
        keys = {_key(query.metric, labels) for labels in data if isinstance(labels, dict)}
        return sorted(self._typed(query, keys), key=_order)

    def query(self, query: Query) -> list[Series]:
        span = max(0.0, query.end - query.start)
        if query.step is None and span <= self.cfg.raw_within:
            return self._raw(query, span)
        step = query.step or max(1.0, math.ceil(span / self.cfg.max_points))
        expr = f"avg_over_time({selector(query)}[{_duration(step)}])"
        data = self._get("/api/v1/query_range", {"query": expr, "start": _ts(query.start),
                                                 "end": _ts(query.end), "step": _ts(step)})
        return self._series(query, data, "matrix")

    # -- helpers -----------------------------------------------------------------------------

    def _raw(self, query: Query, span: float) -> list[Series]:
        # a range selector's left edge is open on some servers: ask 1 ms more, trim here
        expr = f"{selector(query)}[{_duration(span + 0.001)}]"
        data = self._get("/api/v1/query", {"query": expr, "time": _ts(query.end)})
        out = []
        for s in self._series(query, data, "matrix"):
            pts = [(t, v) for t, v in s.points if query.start <= t <= query.end]
            if pts:
                out.append(Series(s.key, pts, "remote"))
        return out

    def _series(self, query: Query, data: Any, want: str) -> list[Series]:
        if not isinstance(data, dict) or data.get("resultType") != want:
            raise RemoteHistoryError("refused", f"expected a {want} result")
        out: dict[SeriesKey, dict[float, float]] = {}
        for item in data.get("result") or []:
            pts = out.setdefault(_key(query.metric, item.get("metric") or {}), {})
            for t, v in item.get("values") or []:
                pts[float(t)] = float(v)  # a sample stored twice (a resend) counts once
        keys = self._typed(query, set(out))
        return [Series(k, sorted(out[k].items()), "remote") for k in sorted(keys, key=_order)]

    def _typed(self, query: Query, keys: set[SeriesKey]) -> set[SeriesKey]:
        """Keep the series whose device type matches (when the query has a type matcher)."""
        m = query.selector.type
        if m is None:
            return keys
        if self.device_types is None:
            raise RemoteHistoryError("refused", "a type matcher needs the device types; the "
                                                "history server does not hold them")
        types = self.device_types()
        return {k for k in keys if m(types.get((k.site, k.device), ""))}

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            r = self.client.get(self.base + path, params=params)
        except httpx.HTTPError as exc:
            raise RemoteHistoryError("unavailable", f"{self.base}{path}: {exc}") from None
        kind = "unavailable" if r.status_code == 429 or r.status_code >= 500 else "refused"
        try:
            body = r.json()
        except ValueError:
            raise RemoteHistoryError(kind, f"{path}: HTTP {r.status_code}, not JSON: "
                                           f"{r.text[:200]!r}") from None
        if r.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error", "") if isinstance(body, dict) else ""
            raise RemoteHistoryError(kind, f"{path}: HTTP {r.status_code}: {err}")
        return body.get("data")


def _ts(seconds: float) -> str:
    return f"{seconds:.3f}"


def _order(k: SeriesKey) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return (k.site, k.device, k.labels)
