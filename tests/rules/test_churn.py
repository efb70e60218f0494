"""Series that churn (a label value that keeps changing: mounts, NICs, containers) cost no
memory once they go quiet: the sweep forgets them, and the engine's table of shared series
keys with them (it used to keep every key ever read by a rule, for the engine's lifetime)."""

from __future__ import annotations

from fieldwatch.collector.rules.engine import SERIES_TTL, SWEEP_EVERY, EngineState

from tests.rules.helpers import engine, metrics

RULE = """
rules:
  - name: disk_filling
    metric: disk.used_percent
    when: rate(5m) > 1
    severity: P2
    ticket: {title: "{device} disk filling"}
"""


def test_churned_series_are_forgotten_with_their_shared_keys() -> None:
    eng, st = engine(RULE), EngineState()
    msgs = [metrics("disk.used_percent", 40.0, 1000.0 + i, {"mount": f"/run/c{i}"}, device=d)
            for i in range(300) for d in ("d1", "d2")]
    assert eng.evaluate(st, msgs) == []
    assert sum(len(dev.series) for dev in st.devices.values()) == 600
    later = 1300.0 + SERIES_TTL + 1
    eng.evaluate(st, [metrics("disk.used_percent", 40.0, later, {"mount": "/"})])
    eng.tick(st, later + SWEEP_EVERY)
    assert [len(dev.series) for dev in st.devices.values()] == [1, 0]
    assert len(eng._interned) == 1  # only the key of d1's "/" series
