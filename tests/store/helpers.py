"""Builders for the store tests: messages as received, the wire decoder bypassed on purpose."""

from __future__ import annotations

import queue
from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import Worker
from fieldwatch.collector.rules.engine import Engine
from fieldwatch.collector.rules.loader import load_rules
from fieldwatch.collector.store.schema import messages
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import Clock

T0 = 1_800_000_000.0

HOT = """
rules:
  - name: hot
    metric: temp
    when: value > 80
    severity: P1
    ticket: {title: "{device} hot"}
"""


def received(msg: wire.Message, at: float = T0) -> Received:
    """As the ingest would enqueue it — but built directly, so values the decoder refuses get
    through (what a decoder bug, or data stored before the decoder checked, would do)."""
    return Received(msg, wire.encode(msg), at)


def metrics(device: str, seq: int, ts: float = T0, value: float = 20.0,
            site: str = "s") -> Received:
    return received(wire.Metrics(device=device, site=site, seq=seq, ts=ts,
                                 samples=[wire.Sample("temp", value)]), T0)


def worker(store: Store, rules_dir: Path, clock: Clock, source: queue.Queue | None = None,
           ) -> Worker:
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / "hot.yaml").write_text(HOT)
    w = Worker(source if source is not None else queue.Queue(), store,
               Engine(load_rules([rules_dir])), clock, Stats())
    w.writer.first_delay, w.writer.max_delay = 0.02, 0.2  # retries without slowing the suite
    return w


def stored(store: Store) -> list[tuple[str, int | None]]:
    with store.engine.connect() as conn:
        return sorted((r.device, r.seq) for r in conn.execute(
            sa.select(messages.c.device, messages.c.seq)))
