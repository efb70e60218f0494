"""Samples of a batch as history rows: one row per message (per timestamp, if its samples carry
their own), holding the values of a series set; the device's 5 min bucket marked for rollup.

`Recorder.add` runs in the worker for every metrics message the rules saw (duplicates are gone
by then, the agent's gap accounting samples are in) and is the only per-sample history cost. A
device sends the same samples in the same order every cycle, so each message is matched whole
against the device's last few shapes (name and labels lists compared at C speed) and its values
packed as they are; only a new shape looks its series up one by one.

Ids are resolved by the store at write time (store.resolve, in a short transaction of its own
before the batch, so an id is never cached for a rolled-back row): until then a device, series
or set holds None in its `ref`. A series history does not keep (a key over KEY_MAX characters,
a NUL or a lone surrogate, which a database would refuse) is left out of its set, its samples
counted in `dropped`. Values are packed as they come: readers take a value that is not finite
(NaN, infinity) for no value (`present`), so ingest spends nothing on checking them.

A row is marked when its device enters a bucket it was not last marked in, so a bucket is queued
for rollup once per collector run (and again after a restart: the new run marks it afresh).
"""

from __future__ import annotations

import hashlib
import json
import sys
from array import array
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from fieldwatch.collector.history import SeriesKey
from fieldwatch.collector.history.rollup import FIVE_MIN

from fieldwatch import wire

KEY_MAX = 1024  # characters of the canonical key (site, device, metric, labels as JSON)
ACCEPT_MARGIN = 3600.0  # history takes samples up to raw_for minus this old (see Recorder)
MAX_FUTURE = 3600.0  # ... and at most this far ahead of their arrival
SHAPES_KEPT = 4  # shapes remembered per device (an agent may send a few kinds of message)

_NAME, _LABELS, _VALUE, _TS = (attrgetter(a) for a in ("name", "labels", "value", "ts"))
_SWAP = sys.byteorder == "big"


def pack(values: Sequence[float]) -> bytes:
    a = array("d", values)
    if _SWAP:
        a.byteswap()
    return a.tobytes()


def unpack(blob: bytes) -> array[float]:
    a = array("d")
    a.frombytes(blob)
    if _SWAP:
        a.byteswap()
    return a


def present(v: float) -> bool:
    """A stored value that is a value (not NaN, not infinite)."""
    return v - v == 0.0


def labels_json(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)


def key_hash(key: SeriesKey) -> str:
    text = json.dumps([key.site, key.device, key.metric, key.labels], ensure_ascii=False)
    return hashlib.sha1(text.encode()).hexdigest()


class Ref:
    """An id the store gives once (None until then)."""

    __slots__ = ("id",)

    def __init__(self) -> None:
        self.id: int | None = None


class SeriesMemo(Ref):
    __slots__ = ("key", "hash", "labels")

    def __init__(self, key: SeriesKey, hash_: str, labels: str) -> None:
        super().__init__()
        self.key, self.hash, self.labels = key, hash_, labels  # key_hash, labels_json: once


class Shape(Ref):
    """One kind of message of a device: its samples' names and labels, the series kept."""

    __slots__ = ("names", "labels", "series", "keep")

    def __init__(self, names: list[str], labels: list[dict[str, str]],
                 series: list[SeriesMemo], keep: list[int] | None) -> None:
        super().__init__()
        self.names, self.labels, self.series, self.keep = names, labels, series, keep


class DeviceMemo(Ref):
    __slots__ = ("site", "device", "series", "shapes", "bucket")

    def __init__(self, site: str, device: str) -> None:
        super().__init__()
        self.site, self.device = site, device
        self.series: dict[Any, SeriesMemo | None] = {}
        self.shapes: list[Shape] = []
        self.bucket = -1  # the 5 min bucket (index) last marked


Row = tuple[int, DeviceMemo, Shape, float, bytes, bool]  # item, device, shape, ts, vals, mark


@dataclass
class SampleRows:
    """A batch's history rows, in the BatchWrite; `dropped` counts samples left out by reason."""

    rows: list[Row] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    samples: int = 0  # values stored (NaN included)

    def select(self, items: Collection[int]) -> SampleRows:
        """The rows of these batch items (a split part): all marked, since a mark may have been
        on a row of an item left out."""
        return SampleRows([(i, d, s, ts, v, True) for i, d, s, ts, v, _ in self.rows
                           if i in items])


class Recorder:
    """Turns metrics messages into history rows. Not thread-safe: the worker's alone."""

    def __init__(self, raw_for: float) -> None:
        # a sample older than this at arrival would fall in a bucket retention is about to
        # take from raw, and its rollup could no longer be recomputed whole
        self.accept_back = raw_for - ACCEPT_MARGIN
        self._devices: dict[tuple[str, str], DeviceMemo] = {}

    def add(self, out: SampleRows, item: int, msg: wire.Metrics, received_at: float) -> None:
        key = (msg.site, msg.device)
        dev = self._devices.get(key)
        if dev is None:
            dev = self._devices[key] = DeviceMemo(msg.site, msg.device)
        smp = msg.samples
        tss = list(map(_TS, smp))
        if tss.count(None) == len(tss):
            self._group(out, item, dev, smp, msg.ts, received_at)
            return
        groups: dict[float, list[wire.Sample]] = {}
        for s, ts in zip(smp, tss, strict=True):
            groups.setdefault(msg.ts if ts is None else ts, []).append(s)
        for ts, part in groups.items():
            self._group(out, item, dev, part, ts, received_at)

    def _group(self, out: SampleRows, item: int, dev: DeviceMemo, smp: list[wire.Sample],
               ts: float, received_at: float) -> None:
        if not received_at - self.accept_back <= ts <= received_at + MAX_FUTURE:  # NaN too
            out.dropped["out_of_range"] += len(smp)
            return
        names, labels = list(map(_NAME, smp)), list(map(_LABELS, smp))
        for shape in dev.shapes:
            if shape.names == names and shape.labels == labels:
                break
        else:
            shape = self._shape(dev, names, labels)
        values = list(map(_VALUE, smp))
        if shape.keep is not None:
            out.dropped["bad_series"] += len(values) - len(shape.keep)
            values = [values[i] for i in shape.keep]
            if not values:
                return
        b = int(ts // FIVE_MIN)
        mark = b != dev.bucket
        if mark:
            dev.bucket = b
        out.samples += len(values)
        out.rows.append((item, dev, shape, ts, pack(values), mark))

    @staticmethod
    def _shape(dev: DeviceMemo, names: list[str], labels: list[dict[str, str]]) -> Shape:
        memos: list[SeriesMemo] = []
        keep: list[int] = []
        seen: set[int] = set()
        for i, (name, lab) in enumerate(zip(names, labels, strict=True)):
            ck = (name, *lab.items()) if lab else name
            memo = dev.series.get(ck, False)
            if memo is False:
                memo = dev.series[ck] = _series(dev.site, dev.device, name, lab)
            if memo is None or id(memo) in seen:  # unkeepable, or twice in one message
                continue
            seen.add(id(memo))
            memos.append(memo)
            keep.append(i)
        shape = Shape(names, labels, memos, None if len(keep) == len(names) else keep)
        dev.shapes.insert(0, shape)
        del dev.shapes[SHAPES_KEPT:]
        return shape

    def forget_marks(self) -> None:
        """After rows were set aside or left unstored: mark every device's next bucket again."""
        for dev in self._devices.values():
            dev.bucket = -1


def _series(site: str, device: str, metric: str, labels: Mapping[str, str]
            ) -> SeriesMemo | None:
    key = SeriesKey(site, device, metric, tuple(sorted(labels.items())))
    text = json.dumps([site, device, metric, key.labels], ensure_ascii=False)
    if len(text) > KEY_MAX or "\x00" in "".join((site, device, metric, *labels, *labels.values())):
        return None
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate: no database stores it as text
        return None
    return SeriesMemo(key, hashlib.sha1(raw).hexdigest(), labels_json(labels))
