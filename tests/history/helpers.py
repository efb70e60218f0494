"""Feeding the history through the collector's own worker, and reading it back."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterable

import sqlalchemy as sa
from fieldwatch.collector.history.rollup import Horizons
from fieldwatch.collector.history.schema import rollups_1h, rollups_5m, series
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import Worker
from fieldwatch.collector.rules.engine import Engine
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import FakeClock

T0 = 1_800_000_000.0  # on an hour boundary
DAY = 86400.0
H = Horizons(2 * DAY, 90 * DAY, 730 * DAY)


def message(device: str, seq: int, ts: float, values: dict[str, float | None],
            site: str = "s") -> wire.Metrics:
    """`values`: metric (optionally `name{label}` with one label `k=v`) → value (None: absent)."""
    samples = []
    for name, v in values.items():
        if v is None:
            continue
        metric, _, lab = name.partition("{")
        labels = dict([lab.rstrip("}").split("=")]) if lab else {}
        samples.append(wire.Sample(metric, v, labels))
    return wire.Metrics(device=device, site=site, seq=seq, ts=ts, samples=samples)


def worker(store: Store, clock: FakeClock) -> Worker:
    """A collector's worker with no rules: what a (re)started collector stores."""
    return Worker(queue.Queue(), store, Engine(RuleSet()), clock, Stats())


def feed(w: Worker, clock: FakeClock, msgs: Iterable[wire.Metrics], at: float | None = None,
         batch: int = 500) -> None:
    """Each message received at its own ts (or all at `at`), in batches of `batch`."""
    items = [Received(m, wire.encode(m), m.ts if at is None else at) for m in msgs]
    for i in range(0, len(items), batch):
        part = items[i:i + batch]
        clock.t = max(clock.t, max(it.received_at for it in part))
        w.process(part)


def rolled(store: Store, level: str = "5m") -> dict[tuple[str, str, str, int], tuple]:
    """(device, metric, labels JSON, bucket) → (min, max, sum, count, last)."""
    t = rollups_5m if level == "5m" else rollups_1h
    q = sa.select(series.c.device, series.c.metric, series.c.labels, t.c.bucket, t.c.min,
                  t.c.max, t.c.sum, t.c.count, t.c.last).join(t, t.c.series_id == series.c.id)
    with store.engine.connect() as conn:
        return {(d, m, lab, int(b)): (mn, mx, s, n, last)
                for d, m, lab, b, mn, mx, s, n, last in conn.execute(q)}


def labels(**kv: str) -> str:
    return json.dumps(dict(sorted(kv.items())), separators=(",", ":"))
