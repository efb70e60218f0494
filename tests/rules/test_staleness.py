"""Staleness (issue 12.1): a series that stops arriving ends its alerts with a "no data"
resolution, unless an absence/offline alert of its device explains the silence."""

from __future__ import annotations

from pathlib import Path

from fieldwatch.collector.rules.engine import EngineState, Transition
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.tickets.alerts import plan

from fieldwatch import wire
from tests.rules.helpers import engine, metrics

DAY = 86400.0

HOT = """
rules:
  - name: hot
    metric: x
    when: value > 90
    for: 1m
    severity: P2
    ticket: {title: "x on {device} at {value}"}
"""


def run(eng, st: EngineState, points: list[tuple[float, float]], ticks: list[float],
        name: str = "x", device: str = "d1") -> list[Transition]:
    """Samples and collector ticks in time order (a sample at t arrives at t)."""
    out: list[Transition] = []
    events = sorted([(t, 1, v) for t, v in points] + [(t, 0, 0.0) for t in ticks])
    for t, is_sample, v in events:
        if is_sample:
            out.extend(eng.evaluate(st, [metrics(name, v, t, device=device)]))
        else:
            out.extend(eng.tick(st, t, connected=True))
    return out


def test_a_firing_alert_whose_series_stops_resolves_with_no_data() -> None:
    # the case: `x > 90 for 1m`, series `10 95x4` (1m apart), then nothing
    eng, st = engine(HOT), EngineState()
    points = [(0, 10), (60, 95), (120, 95), (180, 95), (240, 95), (300, 95)]
    out = run(eng, st, points, [t * 60.0 for t in range(0, 20)] + [7 * DAY])
    kinds = [(t.kind, t.ts) for t in out if t.kind != "update"]
    # fires at 2m; the device's interval is 60 s, so 3 x 60 s after the last sample (5m) the
    # series is stale: resolved at the first tick past 8m
    assert kinds == [("firing", 120.0), ("resolved", 540.0)]
    resolved = out[-1]
    assert resolved.resolution.startswith("no data")
    assert "180s" in resolved.resolution and "last value 95" in resolved.resolution
    assert st.alerts == {}
    [change] = [c for c in plan(out) if c.kind == "resolve"]
    assert change.resolution == resolved.resolution


def test_a_pending_alert_of_a_stale_series_is_dropped() -> None:
    eng, st = engine(HOT.replace("for: 1m", "for: 10m")), EngineState()
    out = run(eng, st, [(0, 50), (60, 50), (120, 95), (180, 95)], [600.0])
    assert out == [] and st.alerts == {}
    # when data comes back, `for` starts afresh: no firing on the first sample after the gap
    out = run(eng, st, [(900, 95), (960, 95)], [961.0])
    assert [a.state for a in st.alerts.values()] == ["pending"]


def test_a_gap_shorter_than_stale_after_is_judged_per_sample() -> None:
    eng, st = engine(HOT), EngineState()
    # one sample missing (a 2m gap, under 3m): the alert stays
    out = run(eng, st, [(0, 95), (60, 95), (180, 95), (240, 50)],
              [float(t) for t in range(0, 241, 10)])
    assert [(t.kind, t.ts) for t in out if t.kind != "update"] == [
        ("firing", 60.0), ("resolved", 240.0)]
    assert out[-1].resolution == ""  # cleared by a sample: no "no data"


def test_stale_after_per_rule_and_off() -> None:
    text = HOT.replace("for: 1m", "for: 0s\n    stale_after: 10m")
    eng, st = engine(text), EngineState()
    out = run(eng, st, [(0, 95), (60, 95)], [300.0, 600.0, 661.0])
    assert [(t.kind, t.ts) for t in out] == [("firing", 0.0), ("update", 60.0),
                                            ("resolved", 661.0)]
    assert "600s" in out[-1].resolution
    eng, st = engine(HOT.replace("for: 1m", "stale_after: 0s")), EngineState()
    out = run(eng, st, [(0, 95), (60, 95), (120, 95)], [30 * DAY])
    assert [t.kind for t in out if t.kind == "resolved"] == []


def test_the_interval_is_estimated_robustly_from_message_times() -> None:
    eng, st = engine(HOT.replace("for: 1m", "for: 0s")), EngineState()
    # 10 s apart, with one 10-minute outage in the history: the median keeps 10 s
    points = [(t, 50.0) for t in range(0, 100, 10)] + [(700 + t, 50.0) for t in range(0, 60, 10)]
    points += [(760, 95.0), (770, 95.0)]
    out = run(eng, st, points, [790.0, 801.0])
    assert [(t.kind, t.ts) for t in out] == [("firing", 760.0), ("update", 770.0),
                                            ("resolved", 801.0)]
    assert "30s" in out[-1].resolution


def test_an_interval_declared_in_the_inventory_is_honoured() -> None:
    eng, st = engine(HOT.replace("for: 1m", "for: 0s")), EngineState()
    eng.evaluate(st, [wire.Inventory(device="d1", site="s", ts=0, facts={"interval": 120})])
    out = run(eng, st, [(0, 95), (10, 95), (20, 95)], [100.0, 300.0, 381.0])
    assert [(t.kind, t.ts) for t in out] == [("firing", 0.0), ("update", 10.0), ("update", 20.0),
                                            ("resolved", 381.0)]


def test_a_series_slower_than_its_device_learns_its_own_step() -> None:
    rules = """
rules:
  - name: smart
    metric: smart.healthy
    when: value == 0
    severity: P1
    ticket: {title: "disk"}
"""
    eng, st = engine(rules), EngineState()
    out: list[Transition] = []
    for t in range(0, 7300, 10):  # the device reports every 10 s, SMART every hour
        samples = [wire.Sample("cpu", 1.0)]
        if t % 3600 == 0:
            samples.append(wire.Sample("smart.healthy", 0.0))
        out.extend(eng.evaluate(st, [wire.Metrics(device="d1", site="s", seq=t + 1, ts=t,
                                                  samples=samples)]))
        out.extend(eng.tick(st, t + 5.0, connected=True))
    assert [t.kind for t in out] == ["firing", "update", "update"]  # not stale between hours
    out = run(eng, st, [], [7200 + 3 * 3600 + 1.0])
    assert [t.kind for t in out] == ["resolved"]


OFFLINE_TOO = HOT + """
  - name: offline
    kind: offline
    for: 1m
    no_data_for: 5m
    severity: P1
    ticket: {title: "{device} offline"}
"""


def test_a_device_offline_explains_the_silence_its_ticket_carries_it() -> None:
    eng, st = engine(OFFLINE_TOO), EngineState()
    out = run(eng, st, [(t, 95.0) for t in range(0, 300, 60)], [])
    # the Last Will: the offline alert explains why the series stopped
    out += eng.evaluate(st, [wire.Status(device="d1", site="s", state="offline", cause="lost")],
                        received_at=250.0)
    out += run(eng, st, [], [float(t) for t in range(250, 3600, 30)])
    assert [t.rule.name for t in out if t.kind == "firing"] == ["hot", "offline"]
    assert [t for t in out if t.kind == "resolved"] == []
    assert {a.rule: a.state for a in st.alerts.values()} == {"hot": "firing", "offline": "firing"}
    # back, and the reading is fine: the metric alert clears on its sample, not as "no data"
    back = eng.evaluate(st, [metrics("x", 10, 3600)])
    back += eng.tick(st, 3601.0, connected=True)
    assert sorted((t.rule.name, t.kind, t.resolution) for t in back if t.kind == "resolved") == [
        ("hot", "resolved", ""), ("offline", "resolved", "")]


def test_a_silent_device_waits_for_its_absence_rules_before_no_data() -> None:
    eng, st = engine(OFFLINE_TOO), EngineState()
    out = run(eng, st, [(t, 95.0) for t in range(0, 300, 60)],
              [float(t) for t in range(240, 1200, 10)])
    # stale after 3m of silence, but the heartbeat rule judges after 5m: then it explains it
    assert [t for t in out if t.kind == "resolved"] == []
    assert {a.rule for a in st.alerts.values()} == {"hot", "offline"}


def test_a_silent_device_without_absence_rules_gets_no_data() -> None:
    eng, st = engine(HOT), EngineState()
    out = run(eng, st, [(t, 95.0) for t in range(0, 300, 60)],
              [float(t) for t in range(240, 1200, 10)])
    assert [(t.kind, t.ts) for t in out if t.kind == "resolved"] == [("resolved", 430.0)]


def test_the_device_keeps_reporting_but_the_series_is_gone() -> None:
    eng, st = engine(OFFLINE_TOO), EngineState()
    out = run(eng, st, [(t, 95.0) for t in range(0, 300, 60)], [])
    for t in range(300, 900, 60):  # still online, but no `x` any more (a sensor unplugged)
        out += eng.evaluate(st, [metrics("other", 1, t)])
        out += eng.tick(st, t + 1.0, connected=True)
    [res] = [t for t in out if t.kind == "resolved"]
    assert res.rule.name == "hot" and res.resolution.startswith("no data")


def test_a_series_seen_once_since_its_alert_began_waits_hours() -> None:
    # one sample: is it a slow series (SMART, hourly) or one that is gone? Not known yet, so
    # it is stale only after max(3 x interval, 3h)
    eng, st = engine(HOT.replace("for: 1m", "for: 0s")), EngineState()
    out = eng.evaluate(st, [metrics("x", 95, 0.0)])
    for t in range(60, 4 * 3600, 60):
        out += eng.evaluate(st, [metrics("other", 1, t)])
        out += eng.tick(st, t + 1.0, connected=True)
    assert [(t.kind, t.ts) for t in out] == [("firing", 0.0), ("resolved", 10801.0)]


def test_the_no_data_resolution_reaches_the_ticket_timeline(tmp_path: Path) -> None:
    eng, st = engine(HOT), EngineState()
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"))
    try:
        out = run(eng, st, [(t, 95.0) for t in range(0, 300, 60)], [600.0])
        store.write(BatchWrite(changes=plan(out)), 600.0)
        [ticket] = store.list_tickets()
        assert ticket["state"] == "resolved"
        reasons = [e["reason"] for e in store.timeline(ticket["id"]) if e["kind"] == "resolved"]
        assert len(reasons) == 1 and reasons[0].startswith("no data")
    finally:
        store.engine.dispose()
