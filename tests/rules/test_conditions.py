"""Each condition kind: thresholds, window functions, selectors, keep_firing_for, updates."""

from __future__ import annotations

import math

import pytest
from fieldwatch.collector.rules.engine import EngineState
from fieldwatch.collector.rules.windows import Window

from tests.rules.helpers import engine, feed, kinds

HEAD = "rules:\n  - name: r\n    severity: P2\n    ticket: {title: t}\n    update_interval: 0s\n"


def rule(**fields: str) -> str:
    return HEAD + "".join(f"    {k}: {v}\n" for k, v in fields.items())


def test_threshold_fires_and_resolves_without_for() -> None:
    eng, st = engine(rule(metric="m", when="'value > 10'")), EngineState()
    got = feed(eng, st, "m", [(0, 5), (10, 11), (20, 12), (30, 9)])
    assert kinds(got) == [("firing", 10), ("update", 20), ("resolved", 30)]


def test_rate_of_a_counter_is_reset_aware() -> None:
    eng, st = engine(rule(metric="c_total", when="'rate(1m) > 4'")), EngineState()
    # 6/s, then the device reboots (counter back to 0) and keeps counting at 6/s
    pts = [(t, 60.0 * t / 10) for t in range(0, 60, 10)] + [(60 + t, 6.0 * t) for t in
                                                              range(0, 60, 10)]
    got = feed(eng, st, "c_total", pts)
    assert [k for k, _ in kinds(got)] == ["firing"] + ["update"] * 10
    assert not any(t.kind == "resolved" for t in got)


def test_counter_reset_never_gives_a_negative_rate() -> None:
    w = Window(60)
    for ts, v in [(0, 100), (10, 200), (20, 5), (30, 105)]:
        w.add(ts, v)
    assert w.rate(30, 60) == pytest.approx((100 + 5 + 100) / 30)  # the reset counts 0→5


@pytest.mark.parametrize(("expr", "points", "fires_at"), [
    ("delta(1m) > 5", [(0, 1), (30, 3), (60, 7)], 60),
    ("avg_over(1m) > 5", [(0, 1), (30, 9), (60, 9)], 60),
    ("max_over(2m) > 50", [(0, 1), (30, 60), (60, 1)], 30),
    ("min_over(1m) > 5", [(0, 1), (30, 9), (60, 9), (90, 9)], 90),
    ("predict_linear(10m, 1h) > 60", [(t, t / 60) for t in range(0, 660, 60)], 300),
    ("abs(value - 50) > 10", [(0, 50), (10, 35)], 10),
    ("min(value, 3) + max(value, 0) > 7", [(0, 4), (10, 5)], 10),
])
def test_window_and_math_functions(expr: str, points: list[tuple[float, float]],
                                   fires_at: float) -> None:
    eng, st = engine(rule(metric="m", when=f"'{expr}'")), EngineState()
    got = [t for t in feed(eng, st, "m", points) if t.kind == "firing"]
    assert [t.ts for t in got][:1] == [fires_at]


def test_window_keeps_bounded_buckets_for_dense_samples() -> None:
    w = Window(80)
    for i in range(10_000):
        w.add(float(i), float(i))
    assert len(w.buf) <= 10 * 10  # BUCKETS + 1 buckets of 10 floats
    assert w.max(9999, 80) == 9999 and w.min(9999, 10) >= 9989 - 10
    assert math.isnan(Window(60).rate(0, 60))


def test_selectors_regex_negation_device_site() -> None:
    text = rule(metric="m", when="'value > 1'",
                labels="{nic: '=~eth.*', kind: '!=virtual'}", device="'!~lab-.*'", site="hq")
    eng, st = engine(text), EngineState()
    assert not feed(eng, st, "m", [(0, 5)], {"nic": "eth0"}, device="web")  # site "s"
    from fieldwatch import wire
    def one(device: str, site: str, labels: dict[str, str]) -> int:
        m = wire.Metrics(device=device, site=site, seq=1, ts=0,
                         samples=[wire.Sample("m", 5, labels)])
        return len(eng.evaluate(EngineState(), [m]))
    assert one("web", "hq", {"nic": "eth0"}) == 1
    assert one("web", "hq", {"nic": "wlan0"}) == 0
    assert one("web", "hq", {"nic": "eth0", "kind": "virtual"}) == 0
    assert one("lab-3", "hq", {"nic": "eth0"}) == 0
    assert one("web", "branch", {"nic": "eth0"}) == 0


def test_device_type_selector_from_inventory() -> None:
    from fieldwatch import wire
    eng = engine(rule(metric="m", when="'value > 1'", type="printer"))
    st = EngineState()
    m = wire.Metrics(device="p1", site="s", seq=1, ts=0, samples=[wire.Sample("m", 5)])
    assert eng.evaluate(st, [m]) == []
    inv = wire.Inventory(device="p1", site="s", ts=1, facts={"type": "printer"})
    m2 = wire.Metrics(device="p1", site="s", seq=2, ts=2, samples=[wire.Sample("m", 5)])
    assert [t.kind for t in eng.evaluate(st, [inv, m2])] == ["firing"]


def test_keep_firing_for_rides_through_short_dips() -> None:
    eng, st = engine(rule(metric="m", when="'value > 10'", keep_firing_for="1m")), EngineState()
    got = feed(eng, st, "m", [(0, 20), (10, 5), (20, 20), (30, 5), (60, 5), (90, 5)])
    assert [k for k in kinds(got) if k[0] != "update"] == [("firing", 0), ("resolved", 90)]


def test_update_interval_folds_repeats_into_counts() -> None:
    text = rule(metric="m", when="'value > 10'").replace("update_interval: 0s",
                                                         "update_interval: 1m")
    eng, st = engine(text), EngineState()
    got = feed(eng, st, "m", [(t, 20) for t in range(0, 130, 10)])
    assert [(t.kind, t.ts, t.count) for t in got] == [
        ("firing", 0, 1), ("update", 60, 6), ("update", 120, 6)]


def test_nan_from_missing_window_data_never_fires() -> None:
    eng, st = engine(rule(metric="m", when="'rate(5m) > 0 or not (rate(5m) <= 0)'")), \
        EngineState()
    # a single sample: rate is NaN; `not (NaN <= 0)` is true, so this rule does fire —
    # operators who want "no data is fine" write the positive form (documented)
    assert [t.kind for t in feed(eng, st, "m", [(0, 1)])] == ["firing"]
    eng2, st2 = engine(rule(metric="m", when="'rate(5m) > 0'")), EngineState()
    assert feed(eng2, st2, "m", [(0, 1)]) == []


def test_duplicate_sequence_numbers_are_dropped() -> None:
    from tests.rules.helpers import metrics
    eng, st = engine(rule(metric="m", when="'value > 10'")), EngineState()
    m = metrics("m", 20, 0, seq=7)
    assert len(eng.evaluate(st, [m])) == 1
    assert eng.evaluate(st, [metrics("m", 20, 0, seq=7)]) == []  # redelivered as is
    assert st.duplicates == 1


def test_a_restarted_sender_reusing_sequence_numbers_is_not_a_duplicate() -> None:
    from tests.rules.helpers import metrics
    eng, st = engine(rule(metric="m", when="'value > 10'")), EngineState()
    eng.evaluate(st, [metrics("m", 1, 0, seq=1), metrics("m", 1, 10, seq=2)])
    # the poller restarted and counts from 1 again, with new times: evaluated
    assert [t.kind for t in eng.evaluate(st, [metrics("m", 20, 20, seq=1)])] == ["firing"]
    assert st.duplicates == 0
