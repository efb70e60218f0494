"""Small builders for rule engine tests."""

from __future__ import annotations

from fieldwatch.collector.rules.engine import Engine, EngineState, Transition
from fieldwatch.collector.rules.loader import ruleset_from_text

from fieldwatch import wire


def engine(text: str) -> Engine:
    return Engine(ruleset_from_text(text))


def metrics(name: str, value: float, ts: float, labels: dict[str, str] | None = None,
            device: str = "d1", site: str = "s", seq: int | None = None) -> wire.Metrics:
    return wire.Metrics(device=device, site=site, seq=int(ts * 1000) if seq is None else seq,
                        ts=ts, samples=[wire.Sample(name, value, labels or {})])


def confirm(eng: Engine, st: EngineState, *devices: str, site: str = "s") -> None:
    """Make devices known as this collector's own (an inventory), so their presence counts:
    a device known only from a status message opens no ticket."""
    eng.evaluate(st, [wire.Inventory(device=d, site=site, ts=0.0) for d in devices])


def feed(eng: Engine, st: EngineState, name: str, points: list[tuple[float, float]],
         labels: dict[str, str] | None = None, device: str = "d1") -> list[Transition]:
    out: list[Transition] = []
    for ts, v in points:
        out.extend(eng.evaluate(st, [metrics(name, v, ts, labels, device)]))
    return out


def kinds(ts: list[Transition]) -> list[tuple[str, float]]:
    return [(t.kind, t.ts) for t in ts]
