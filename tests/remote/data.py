"""Stored metrics messages for the exporter to send, and what the servers should then hold."""

from __future__ import annotations

import time

import sqlalchemy as sa
from fieldwatch.collector.history import Query, SeriesKey
from fieldwatch.collector.rules.selectors import Selector, parse_matcher
from fieldwatch.collector.store.schema import messages
from fieldwatch.collector.store.store import BatchWrite, RawMessage, Store

from fieldwatch import wire

Expected = dict[tuple[str, SeriesKey], list[tuple[float, float]]]  # (metric, key) → points

# health samples as the agent sends them (agent/daemon.py), and labels that need escaping
ODD = {"path": 'C:\\logs "new"', "note": "a\nb", "unicode": "ünï"}


def cycle(site: str, device: str, seq: int, ts: float) -> wire.Metrics:
    return wire.Metrics(device=device, site=site, seq=seq, ts=ts, agent="test", samples=[
        wire.Sample("disk.used_percent", 40.0 + seq % 7, {"mount": "/"}),
        wire.Sample("disk.used_percent", 10.25 * seq, {"mount": "/var"}),
        wire.Sample("temp.celsius", -3.5 + seq, ODD),
        wire.Sample("agent.buffer_queued", float(seq % 3)),
        wire.Sample("agent.cycle_seconds", 0.012, ts=ts - 0.5),
        wire.Sample("agent.buffer_dropped_total", 1.0, {"reason": "full"}),
    ])


def now_aligned() -> float:
    """A start time on a whole second, some minutes back (servers refuse far-off samples)."""
    return float(int(time.time()) - 600)


def store_cycles(store: Store, devices: list[tuple[str, str]], seqs: range,
                 start: float, every: float = 10.0) -> list[wire.Metrics]:
    """One message per device and cycle, stored as the collector stores them."""
    out = []
    for seq in seqs:
        batch = BatchWrite()
        for site, device in devices:
            msg = cycle(site, device, seq, start + seq * every)
            out.append(msg)
            batch.raw.append(RawMessage(site, device, "metrics", seq, msg.ts, msg.ts,
                                        wire.encode(msg)))
        store.write(batch, start + seq * every)
    return out


def expected(msgs: list[wire.Metrics]) -> Expected:
    out: Expected = {}
    for m in msgs:
        for s in m.samples:
            key = SeriesKey(m.site, m.device, s.name, tuple(sorted(s.labels.items())))
            out.setdefault((s.name, key), []).append((s.ts if s.ts is not None else m.ts,
                                                      s.value))
    return {k: sorted(v) for k, v in out.items()}


def read_back(backend, msgs: list[wire.Metrics], start: float, end: float) -> Expected:  # type: ignore[no-untyped-def]
    """Every series of the metrics in `msgs`, raw, as the remote backend returns it."""
    out: Expected = {}
    devices = sorted({(m.site, m.device) for m in msgs})
    for name in sorted({s.name for m in msgs for s in m.samples}):
        for site, device in devices:
            sel = Selector(site=parse_matcher(site), device=parse_matcher(device))
            for s in backend.query(Query(name, sel, start, end)):
                assert s.resolution == "remote"
                out[(name, s.key)] = s.points
    return out


def message_ids(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(messages.c.id).order_by(messages.c.id))]
