"""Raw history read back as the metrics messages the rules saw, for `rules backtest`.

A device's raw rows at one timestamp make one message, in time order. The messages carry no
sequence numbers of their own (each device's count 1, 2, 3 ...): the gap accounting the rules
saw live is in the history as the `agent.*` samples it produced, so a replay reads those back
instead of recomputing it. Only raw samples replay, so a backtest reaches back `raw_for`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator

import sqlalchemy as sa
from fieldwatch.collector.history.ingest import present, unpack
from fieldwatch.collector.history.schema import history_devices, samples, series, series_sets

from fieldwatch import wire

# written with every metrics message (pipeline._with_accounting): a device's heartbeat too, so
# offline and absence rules see each message even when no rule reads its other metrics
ACCOUNTING = ("agent.samples_missing", "agent.samples_backfilled_total", "agent.duplicates_total")
WINDOW = 600.0  # seconds of history read at a time
_CHUNK = 200  # devices per query


def metrics_messages(engine: sa.Engine, metrics: Collection[str] | None, since: float,
                     until: float) -> Iterator[wire.Metrics]:
    """Messages (samples of `metrics` and ACCOUNTING; None: all) with since <= ts < until."""
    wanted = None if metrics is None else {*metrics, *ACCOUNTING}
    with engine.connect() as conn:
        names = {int(i): (s, d) for i, s, d in conn.execute(sa.select(
            history_devices.c.id, history_devices.c.site, history_devices.c.device))}
        keys: dict[int, tuple[str, dict[str, str]]] = {}
        for sid, metric, labels in conn.execute(sa.select(
                series.c.id, series.c.metric, series.c.labels)):
            if wanted is None or metric in wanted:
                keys[int(sid)] = (metric, json.loads(labels))
        sets = {int(i): json.loads(ids) for i, ids in conn.execute(
            sa.select(series_sets.c.id, series_sets.c.series))}
        devs = sorted(names)
        seqs: dict[int, int] = {}
        t = since
        while t < until and devs:
            end = min(t + WINDOW, until)
            rows: list[tuple[float, int, int, bytes]] = []
            for i in range(0, len(devs), _CHUNK):
                rows += conn.execute(sa.select(
                    samples.c.ts, samples.c.device_id, samples.c.set_id, samples.c.vals).where(
                    samples.c.device_id.in_(devs[i:i + _CHUNK]), samples.c.ts >= t,
                    samples.c.ts < end)).all()
            rows.sort(key=lambda r: (r[0], r[1], r[2]))
            j = 0
            while j < len(rows):
                ts, dev = rows[j][0], rows[j][1]
                out: list[wire.Sample] = []
                while j < len(rows) and rows[j][0] == ts and rows[j][1] == dev:
                    for sid, v in zip(sets[rows[j][2]], unpack(rows[j][3]), strict=False):
                        key = keys.get(sid)
                        if key is not None and present(v):
                            out.append(wire.Sample(key[0], v, key[1]))
                    j += 1
                if out:
                    seqs[dev] = seqs.get(dev, 0) + 1
                    site, device = names[dev]
                    yield wire.Metrics(device=device, site=site, seq=seqs[dev], ts=ts,
                                       samples=out)
            t = end
