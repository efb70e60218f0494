"""A storm: 10,000 alerts for 100 fingerprints, written as the collector's worker writes them.

Importable by the tests, and runnable as a process (`python storm.py DB_URL GO_FILE`) so two
collectors can race on one PostgreSQL with separate engines and separate alert state.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import prepare
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import rules_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch.wire import Metrics, Sample, encode

RULES = """
rules:
  - {name: overheat, metric: temp.celsius, when: value > 80, severity: P2,
     ticket: {title: "{device} {labels.sensor} at {value}"}}
"""
DEVICES, SENSORS, ALERTS = 20, 5, 10_000  # 100 fingerprints


def storm(t0: float = 1_800_000_000.0) -> list[Received]:
    """ALERTS messages, one firing sample each, spread evenly over the fingerprints."""
    out = []
    for i in range(ALERTS):
        fp = i % (DEVICES * SENSORS)
        dev, sensor = divmod(fp, SENSORS)
        # per device: seq strictly increasing (the engine drops a repeated seq as a redelivery)
        seq = (i // (DEVICES * SENSORS)) * SENSORS + sensor + 1
        msg = Metrics(device=f"dev-{dev:02d}", site="plant", seq=seq,
                      ts=t0 + i * 0.01, agent="storm",
                      samples=[Sample("temp.celsius", 85.0 + i % 7, {"sensor": f"s{sensor}"})])
        out.append(Received(msg, encode(msg), t0 + i * 0.01))
    return out


def write_storm(store: Store, items: list[Received], batch: int = 2000) -> None:
    engine = Engine(RuleSet(tuple(rules_from_text(RULES))))
    state = EngineState()
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        store.write(prepare(chunk, engine, state), chunk[-1].received_at)


def main(url: str, go: str) -> int:
    store = Store(open_engine(url))
    items = storm()
    deadline = time.monotonic() + 30
    while not Path(go).exists():  # start together with the other process
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.005)
    try:
        write_storm(store, items, batch=500)
    finally:
        store.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
