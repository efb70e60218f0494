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
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter

import httpx
from fieldwatch.collector.history.promwire import (
    DOUBLE,
    HEADERS,
    U64,
    Labels,
    compress,
    encode_labels,
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


_NAME, _VALUE, _LABELS, _TS = (attrgetter(a) for a in ("name", "value", "labels", "ts"))


@dataclass
class _Template:
    """One device's last message shape, and the bytes of its TimeSeries fields around each
    value: per sample `[head, labels, mid, value, tail]`, values and tail left empty."""

    names: list[str]
    labels: list[dict[str, str]]
    tail_len: int
    parts: list[bytes] | None  # None: two samples land in one series (grouped path)


class Encoder:
    """Series label sets encoded once and kept (a device sends the same series every cycle),
    per device, with the device's last message shape as a template; the caches are cleared
    whole when they reach `cache_max` series.

    This runs in the collector's process beside the worker (one GIL). A message shaped like
    its device's last one (same series in the same order, no per-sample timestamps, the
    common case) is encoded by C loops only: its values packed through `map`, slotted into a
    copy of the template and joined — about 6 µs for 50 samples, against 38 µs sample by
    sample (profiled, bench/remote_write.py)."""

    def __init__(self, cache_max: int = 200_000) -> None:
        self.cache_max = cache_max
        self._size = 0
        self._cache: dict[tuple[str, str], dict[object, bytes]] = {}
        self._templates: dict[tuple[str, str], _Template] = {}

    def batch(self, messages: Iterable[wire.Metrics]) -> Batch:
        batch = Batch(self)
        for m in messages:
            batch.add(m)
        return batch

    def device(self, site: str, device: str) -> dict[object, bytes]:
        """The label encodings of one device's series, keyed by `series_key`."""
        known = self._cache.get((site, device))
        if known is None:
            if self._size >= self.cache_max:
                self._cache.clear()
                self._templates.clear()
                self._size = 0
            known = self._cache[(site, device)] = {}
        return known

    def labels(self, site: str, device: str, s: wire.Sample, known: dict[object, bytes]
               ) -> bytes:
        """Encode and remember a series first seen."""
        self._size += 1
        enc = known[series_key(s)] = encode_labels(series_labels(site, device, s.name,
                                                                 s.labels))
        return enc

    def whole(self, msg: wire.Metrics) -> bytes | None:
        """The TimeSeries fields of one message, each series one point; None when it has
        per-sample timestamps or two samples of one series (then `Series` does it)."""
        samples = msg.samples
        if list(map(_TS, samples)).count(None) != len(samples):
            return None
        ts_ms = round(msg.ts * 1000)
        tail = b"\x10" + varint(ts_ms & U64)
        key = (msg.site, msg.device)
        names, labels = list(map(_NAME, samples)), list(map(_LABELS, samples))
        t = self._templates.get(key)
        if t is None or t.tail_len != len(tail) or t.names != names or t.labels != labels:
            t = self._templates[key] = self._template(msg, names, labels, len(tail))
        if t.parts is None:
            return None
        parts = t.parts.copy()
        parts[3::5] = map(DOUBLE.pack, map(_VALUE, samples))
        parts[4::5] = (tail,) * len(samples)
        return b"".join(parts)

    def _template(self, msg: wire.Metrics, names: list[str], labels: list[dict[str, str]],
                  tail_len: int) -> _Template:
        known = self.device(msg.site, msg.device)
        encs = []
        for s in msg.samples:
            enc = known.get(series_key(s))
            encs.append(enc if enc is not None else self.labels(msg.site, msg.device, s, known))
        if len(set(encs)) != len(encs):
            return _Template(names, labels, tail_len, None)
        size = 9 + tail_len  # the Sample: value tag, 8 bytes, the tail
        mid = b"\x12" + varint(size) + b"\x09"
        parts: list[bytes] = []
        for enc in encs:
            parts += (b"\x0a" + varint(len(enc) + len(mid) - 1 + size), enc, mid, b"", b"")
        return _Template(names, labels, tail_len, parts)


def series_key(s: wire.Sample) -> object:
    return (s.name, tuple(s.labels.items())) if s.labels else s.name


def _sample_tail(ts_ms: int) -> tuple[bytes, bytes]:
    """(bytes before the value, bytes after it) of a sample field at `ts_ms`."""
    tail = b"\x10" + varint(ts_ms & U64)
    return b"\x12" + varint(9 + len(tail)) + b"\x09", tail


class Batch:
    """Whole messages, ready to send as one request. A device with one message in the
    request goes through its template (`Encoder.whole`); one with several, or with samples
    that need it, through `Series`, which merges each series' points in time order."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.devices: dict[tuple[str, str], list[wire.Metrics]] = {}
        self.samples = 0

    def add(self, msg: wire.Metrics) -> None:
        got = self.devices.get((msg.site, msg.device))
        if got is None:
            self.devices[(msg.site, msg.device)] = [msg]
        else:
            got.append(msg)
        self.samples += len(msg.samples)

    def body(self) -> bytes:
        """The snappy-compressed WriteRequest (each series' points in time order)."""
        parts: list[bytes] = []
        for msgs in self.devices.values():
            one = self.encoder.whole(msgs[0]) if len(msgs) == 1 else None
            if one is None:
                series = Series(self.encoder)
                for m in msgs:
                    series.add(m)
                one = series.fields()
            parts.append(one)
        return compress(b"".join(parts))


class Series:
    """Samples of one device's messages grouped into series.

    A series' first sample field is kept as it is; from its second, the fields go into one
    bytearray and the timestamps into an int array (no per-point tuples or lists: the cyclic
    GC tracking them cost more than the encoding). A series that received a point older than
    its last is sorted when the fields are made."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.fields_of: dict[bytes, bytes | bytearray] = {}  # series labels → sample fields
        self.first: dict[bytes, int] = {}  # series labels → its first timestamp (ms)
        self.stamps: dict[bytes, array[int]] = {}  # ... all of them, once it has several
        self.unsorted: set[bytes] = set()

    def add(self, msg: wire.Metrics) -> None:
        fields, first, pack, encoder = self.fields_of, self.first, DOUBLE.pack, self.encoder
        site, device = msg.site, msg.device
        known = encoder.device(site, device)
        default_ms = round(msg.ts * 1000)
        head, tail = _sample_tail(default_ms)
        for s in msg.samples:
            key = (s.name, tuple(s.labels.items())) if s.labels else s.name
            enc = known.get(key)
            if enc is None:
                enc = encoder.labels(site, device, s, known)
            if s.ts is None:
                ms, field = default_ms, head + pack(s.value) + tail
            else:
                ms = round(s.ts * 1000)
                h, t = _sample_tail(ms)
                field = h + pack(s.value) + t
            buf = fields.get(enc)
            if buf is None:  # most series have one point in a request: no containers made
                fields[enc] = field
                first[enc] = ms
            else:
                self._more(enc, buf, ms, field)

    def _more(self, enc: bytes, buf: bytes | bytearray, ms: int, field: bytes) -> None:
        if isinstance(buf, bytes):
            buf = self.fields_of[enc] = bytearray(buf)
            self.stamps[enc] = array("q", (self.first[enc],))
        arr = self.stamps[enc]
        if ms < arr[-1]:
            self.unsorted.add(enc)
        buf += field
        arr.append(ms)

    def fields(self) -> bytes:
        """The TimeSeries fields (each series' points in time order)."""
        parts: list[bytes | bytearray] = []
        unsorted = self.unsorted
        for enc, buf in self.fields_of.items():
            data = _in_order(buf, self.stamps[enc]) if unsorted and enc in unsorted else buf
            parts += (b"\x0a", varint(len(enc) + len(data)), enc, data)
        return b"".join(parts)


def _in_order(buf: bytes | bytearray, stamps: array[int]) -> bytes:
    """The sample fields of `buf` (one per stamp, as _sample_tail makes them) sorted by time."""
    cut, pos = [], 0
    for ms in stamps:
        size = 12 + len(varint(ms & U64))  # tag, length, value tag, 8 bytes, ts tag, ts
        cut.append((ms, pos, pos + size))
        pos += size
    cut.sort(key=lambda c: c[0])
    return b"".join(bytes(buf[a:b]) for _, a, b in cut)


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
