"""The skeleton's rule engine: threshold, label matchers, `for` by sample time, `clear`."""

from fieldwatch.collector.rules.engine import Engine, EngineState, fingerprint
from fieldwatch.collector.rules.loader import rules_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.tickets.alerts import plan

from fieldwatch.wire import Metrics, Sample

RULES = """
rules:
  - name: disk_full
    metric: disk.used_percent
    labels: {mount: /}
    when: value > 90
    for: 5m
    clear: value < 85
    severity: P2
    update_interval: 0s
    ticket: {title: "Disk {labels.mount} on {device} at {value:.0f}%"}
"""


def engine() -> Engine:
    return Engine(RuleSet(tuple(rules_from_text(RULES))))


def msg(value: float, ts: float, mount: str = "/", device: str = "web-01") -> Metrics:
    return Metrics(device=device, site="hq", seq=int(ts), ts=ts,
                   samples=[Sample("disk.used_percent", value, {"mount": mount})])


def run(eng: Engine, state: EngineState, series: list[tuple[float, float]]) -> list:
    return [(t.kind, t.ts) for ts, v in series for t in eng.evaluate(state, [msg(v, ts)])]


def test_not_firing_before_for_then_firing_at_first_sample_where_it_held() -> None:
    eng, state = engine(), EngineState()
    got = run(eng, state, [(0, 95), (60, 96), (240, 97), (299, 97), (300, 97), (310, 98)])
    assert got == [("firing", 300), ("update", 310)]


def test_condition_broken_during_for_restarts_the_wait() -> None:
    eng, state = engine(), EngineState()
    got = run(eng, state, [(0, 95), (200, 50), (250, 95), (500, 95), (550, 95)])
    assert got == [("firing", 550)]


def test_clear_uses_hysteresis() -> None:
    eng, state = engine(), EngineState()
    got = run(eng, state, [(0, 95), (300, 95), (360, 88), (420, 84), (480, 84)])
    assert got == [("firing", 300), ("update", 360), ("resolved", 420)]
    assert state.alerts == {}


def test_label_matchers_and_other_metrics_are_ignored() -> None:
    eng, state = engine(), EngineState()
    assert eng.evaluate(state, [msg(99, 0, mount="/data"), msg(99, 400, mount="/data")]) == []
    other = Metrics(device="d", site="s", seq=1, ts=0, samples=[Sample("cpu.percent", 100)])
    assert eng.evaluate(state, [other]) == []


def test_late_sample_cannot_rewind_an_alert() -> None:
    eng, state = engine(), EngineState()
    run(eng, state, [(0, 95), (300, 95)])
    assert run(eng, state, [(100, 10)]) == []  # older than what the alert saw: ignored
    assert next(iter(state.alerts.values())).state == "firing"


def test_sample_ts_overrides_message_ts() -> None:
    eng, state = engine(), EngineState()
    m = Metrics(device="d", site="s", seq=1, ts=1000, samples=[
        Sample("disk.used_percent", 95, {"mount": "/"}, ts=0),
        Sample("disk.used_percent", 95, {"mount": "/"}, ts=300)])
    assert [t.ts for t in eng.evaluate(state, [m])] == [300]


def test_fingerprint_is_the_fault_not_the_reading() -> None:
    a = fingerprint("r", "hq", "web", {"mount": "/", "x": "1"})
    assert a == fingerprint("r", "hq", "web", {"x": "1", "mount": "/"})
    assert a != fingerprint("r", "hq", "web2", {"mount": "/", "x": "1"})
    assert a != fingerprint("r2", "hq", "web", {"mount": "/", "x": "1"})


def test_plan_merges_repeats_and_renders_title_once() -> None:
    eng, state = engine(), EngineState()
    ts_values = [(0, 95), (300, 95), (310, 96), (320, 97), (330, 80)]
    transitions = [t for ts, v in ts_values for t in eng.evaluate(state, [msg(v, ts)])]
    changes = plan(transitions)
    assert [(c.kind, c.count) for c in changes] == [("fire", 1), ("repeat", 2), ("resolve", 1)]
    assert changes[0].title == "Disk / on web-01 at 95%"
    assert changes[1].value == 97 and changes[1].last_ts == 320
