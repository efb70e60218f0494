"""fieldwatch samples as Prometheus series, and the HTTP send of one remote-write request.

Naming (docs/history.md): the metric `disk.used_percent` becomes `disk_used_percent` — every
character outside `[a-zA-Z0-9_:]` turns into `_`, and a leading digit gets a `_` before it. The
series carries `site` and `device`, then the sample's own labels with names cleaned the same way
(`[a-zA-Z0-9_]`); a sample label that would clash with `site`, `device` or a reserved `__` name
is sent as `exported_<name>`, as Prometheus does with scraped labels. An empty value is left
out (Prometheus reads a missing label as ""). The mapping is many-to-one:
`disk.used_percent` and `disk_used_percent` land in one remote series.

`send` maps the answer into the exporter's terms: `Retry` (connection errors, timeouts, 5xx,
429) and `Rejected` (any other 4xx: the server will never take these samples).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import httpx
from fieldwatch.collector.history.promwire import (
    HEADERS,
    Labels,
    compress,
    encode_labels,
    encode_sample,
    varint,
)

from fieldwatch import wire

_BAD_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_BAD_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_RESERVED = frozenset({"site", "device"})


def metric_name(name: str) -> str:
    """The Prometheus metric name of a fieldwatch metric (`disk.used_percent` →
    `disk_used_percent`)."""
    out = _BAD_NAME.sub("_", name)
    return "_" + out if not out or out[0].isdigit() else out


def label_name(name: str) -> str:
    """The Prometheus name of a sample label (clashes and reserved names get `exported_`)."""
    out = _BAD_LABEL.sub("_", name)
    if not out or out[0].isdigit():
        out = "_" + out
    return "exported_" + out if out in _RESERVED or out.startswith("__") else out


def series_labels(site: str, device: str, metric: str, labels: Mapping[str, str]) -> Labels:
    """The sorted label set of one fieldwatch series."""
    out = {"__name__": metric_name(metric), "site": site, "device": device}
    for k, v in labels.items():
        if v:
            out[label_name(k)] = v
    return tuple(sorted(out.items()))


class Encoder:
    """Series label sets encoded once and kept (a device sends the same series every cycle);
    the cache is cleared whole when it reaches `cache_max` series."""

    def __init__(self, cache_max: int = 200_000) -> None:
        self.cache_max = cache_max
        self._cache: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], bytes] = {}

    def batch(self, messages: Iterable[wire.Metrics]) -> Batch:
        batch = Batch(self)
        for m in messages:
            batch.add(m)
        return batch

    def labels(self, site: str, device: str, s: wire.Sample) -> bytes:
        key = (site, device, s.name, tuple(s.labels.items()) if s.labels else ())
        enc = self._cache.get(key)
        if enc is None:
            if len(self._cache) >= self.cache_max:
                self._cache.clear()
            enc = self._cache[key] = encode_labels(series_labels(site, device, s.name,
                                                                 s.labels))
        return enc


class Batch:
    """Samples of whole messages grouped into series, ready to send as one request."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.series: dict[bytes, list[tuple[int, float]]] = {}
        self.samples = 0

    def add(self, msg: wire.Metrics) -> None:
        labels, series = self.encoder.labels, self.series
        site, device, default_ms = msg.site, msg.device, round(msg.ts * 1000)
        for s in msg.samples:
            ts = default_ms if s.ts is None else round(s.ts * 1000)
            series.setdefault(labels(site, device, s), []).append((ts, s.value))
        self.samples += len(msg.samples)

    def body(self) -> bytes:
        """The snappy-compressed WriteRequest (each series' points in time order)."""
        parts = []
        for enc, points in self.series.items():
            points.sort(key=_ts)
            inner = enc + b"".join(encode_sample(t, v) for t, v in points)
            parts.append(b"\x0a" + varint(len(inner)) + inner)
        return compress(b"".join(parts))


def _ts(point: tuple[int, float]) -> int:
    return point[0]


class Retry(Exception):
    """Try the same request again later: the server is away or overloaded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rejected(Exception):
    """The server refused these samples for good (a 4xx other than 429)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def send(client: httpx.Client, url: str, body: bytes,
         headers: Mapping[str, str] | None = None) -> None:
    """POST one compressed WriteRequest; returns on 2xx, else raises Retry or Rejected."""
    try:
        r = client.post(url, content=body, headers={**HEADERS, **(headers or {})})
    except httpx.HTTPError as exc:  # connection refused, timeout, protocol error
        raise Retry(f"{type(exc).__name__}: {exc}") from None
    if 200 <= r.status_code < 300:
        return
    text = r.text[:300].strip()
    reason = f"HTTP {r.status_code}: {text}" if text else f"HTTP {r.status_code}"
    if r.status_code == 429 or r.status_code >= 500:
        raise Retry(reason)
    raise Rejected(r.status_code, reason)
