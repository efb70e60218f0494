"""Absence, offline, events, anomaly, flapping, silences and dependencies, on a FakeClock."""

from __future__ import annotations

from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import ruleset_from_text
from fieldwatch.collector.rules.model import Silence
from fieldwatch.collector.rules.selectors import parse_matcher
from fieldwatch.collector.tickets.alerts import plan
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from tests.rules.helpers import confirm, engine, feed, metrics

T0 = 1_800_000_000.0


def status(device: str, state: str, cause: str, ts: float | None) -> wire.Status:
    return wire.Status(device=device, site="s", state=state, cause=cause,  # type: ignore[arg-type]
                       ts=ts)


ABSENT = """
rules:
  - name: silent
    kind: absent
    for: 5m
    severity: P2
    ticket: {title: "{device} silent: {reason}"}
  - name: no_temp
    kind: absent
    metric: temp.celsius
    labels: {sensor: cpu}
    for: 2m
    severity: P3
    ticket: {title: "no temperature from {device}"}
"""


def test_absence_of_a_device_and_of_one_metric(clock: FakeClock) -> None:
    eng, st = engine(ABSENT), EngineState()
    eng.evaluate(st, [metrics("temp.celsius", 40, clock.now(), {"sensor": "cpu"})])
    clock.advance(60)
    assert eng.tick(st, clock.now(), connected=True) == []
    for _ in range(2):  # the device keeps sending, but not the temperature
        clock.advance(60)
        eng.evaluate(st, [metrics("cpu.percent", 1, clock.now())])
    fired = eng.tick(st, clock.now() + 1, connected=True)
    assert [(t.rule.name, t.kind) for t in fired] == [("no_temp", "firing")]
    clock.advance(400)
    fired = eng.tick(st, clock.now(), connected=True)
    assert [(t.rule.name, t.kind) for t in fired] == [("silent", "firing"), ("no_temp", "update")]
    assert "no data for" in fired[0].reason
    eng.evaluate(st, [metrics("temp.celsius", 40, clock.now(), {"sensor": "cpu"})])
    done = eng.tick(st, clock.now() + 1, connected=True)
    assert sorted((t.rule.name, t.kind) for t in done) == [("no_temp", "resolved"),
                                                          ("silent", "resolved")]


def test_no_absence_for_the_time_the_collector_was_cut_off(clock: FakeClock) -> None:
    eng, st = engine(ABSENT), EngineState()
    eng.evaluate(st, [metrics("cpu.percent", 1, clock.now())])
    eng.tick(st, clock.now(), connected=True)
    for _ in range(20):  # 20 minutes without the broker
        clock.advance(60)
        assert eng.tick(st, clock.now(), connected=False) == []
    clock.advance(60)
    assert eng.tick(st, clock.now(), connected=True) == []
    # the backlog the broker kept arrives with old sample times: judged by them, no alert
    eng.evaluate(st, [metrics("cpu.percent", 1, clock.now() - 600)], received_at=clock.now())
    clock.advance(4 * 60)
    assert eng.tick(st, clock.now(), connected=True) == []


OFFLINE = """
devices:
  cam-1: {parent: sw-1}
rules:
  - name: offline
    kind: offline
    for: 1m
    no_data_for: 5m
    hold: 30s
    severity: P1
    ticket: {title: "{device} offline", description: "{reason}"}
"""


def test_offline_tells_last_will_from_clean_stop(clock: FakeClock) -> None:
    eng, st = engine(OFFLINE), EngineState()
    confirm(eng, st, "a", "b")
    t = clock.now()
    out = eng.evaluate(st, [status("a", "offline", "lost", None),
                            status("b", "offline", "shutdown", t)], received_at=t)
    assert out == []  # `for: 1m`
    fired = eng.tick(st, t + 60)
    reasons = {x.device: x.reason for x in fired}
    assert reasons == {"a": "device down: connection lost (Last Will)",
                       "b": "agent stopped cleanly"}
    ch = plan(fired)
    assert ch[0].description in reasons.values()
    back = eng.evaluate(st, [status("a", "online", "connected", t + 90)], received_at=t + 90)
    assert [(x.device, x.kind) for x in back] == [("a", "resolved")]


def test_an_older_status_cannot_undo_a_newer_one(clock: FakeClock) -> None:
    eng, st = engine(OFFLINE), EngineState()
    confirm(eng, st, "a")
    t = clock.now()
    eng.evaluate(st, [status("a", "offline", "lost", t)], received_at=t)
    eng.evaluate(st, [status("a", "online", "connected", t - 30)], received_at=t + 1)
    assert [x.kind for x in eng.tick(st, t + 60)] == ["firing"]


def test_dependency_child_first_is_suppressed_and_linked(clock: FakeClock) -> None:
    eng, st = engine(OFFLINE), EngineState()
    confirm(eng, st, "cam-1", "sw-1")
    t = clock.now()
    eng.evaluate(st, [status("cam-1", "offline", "lost", t)], received_at=t)
    eng.evaluate(st, [status("sw-1", "offline", "lost", t + 10)], received_at=t + 10)
    out = []
    for dt in range(0, 120, 5):
        out.extend(eng.tick(st, t + dt))
    fires = {x.device: x for x in out if x.kind == "firing"}
    assert set(fires) == {"sw-1", "cam-1"}
    assert fires["sw-1"].suppressed_by is None
    assert fires["cam-1"].suppressed_by == fires["sw-1"].fingerprint
    assert fires["cam-1"].parent == "sw-1"
    assert [c.device for c in plan(out) if c.kind == "fire" and not c.muted] == ["sw-1"]
    # the parent comes back but the child stays down: now the child gets its own ticket
    eng.evaluate(st, [status("sw-1", "online", "connected", t + 200)], received_at=t + 200)
    again = eng.tick(st, t + 201)
    assert [(x.device, x.kind, x.suppressed_by) for x in again if x.kind != "update"] == [
        ("cam-1", "firing", None)]


def test_child_without_parent_outage_opens_its_ticket_after_the_hold(clock: FakeClock) -> None:
    eng, st = engine(OFFLINE), EngineState()
    confirm(eng, st, "cam-1")
    t = clock.now()
    eng.evaluate(st, [status("cam-1", "offline", "lost", t)], received_at=t)
    assert eng.tick(st, t + 60) == []  # for 1m + hold 30s
    fired = eng.tick(st, t + 90)
    assert [(x.device, x.suppressed_by) for x in fired] == [("cam-1", None)]


EVENTS = """
rules:
  - name: link_down
    event:
      type: snmp.trap.linkDown
      fields: {ifName: "=~ge-.*"}
      labels_from: [ifIndex]
      clear_type: snmp.trap.linkUp
    severity: P2
    ticket: {title: "link {labels.ifIndex} down on {device}"}
  - name: door
    event: {type: agent.door_open, resolve_after: 10m}
    severity: P3
    ticket: {title: "door open at {device}"}
"""


def ev(type_: str, ts: float, **fields: object) -> wire.Event:
    return wire.Event(device="sw", site="s", type=type_, ts=ts, fields=fields)  # type: ignore


def test_events_match_by_type_and_fields_and_clear(clock: FakeClock) -> None:
    eng, st = engine(EVENTS), EngineState()
    t = clock.now()
    out = eng.evaluate(st, [ev("snmp.trap.linkDown", t, ifIndex=3, ifName="ge-0/0/3"),
                            ev("snmp.trap.linkDown", t, ifIndex=9, ifName="lo"),
                            ev("snmp.trap.linkDown", t + 1, ifIndex=3, ifName="ge-0/0/3")])
    assert [(x.kind, dict(x.labels)) for x in out] == [("firing", {"ifIndex": "3"}),
                                                       ("update", {"ifIndex": "3"})]
    assert plan(out)[0].title == "link 3 down on sw"
    out = eng.evaluate(st, [ev("snmp.trap.linkUp", t + 5, ifIndex=3)])
    assert [x.kind for x in out] == ["resolved"]


def test_event_resolve_after(clock: FakeClock) -> None:
    eng, st = engine(EVENTS), EngineState()
    t = clock.now()
    assert [x.kind for x in eng.evaluate(st, [ev("agent.door_open", t)])] == ["firing"]
    assert eng.tick(st, t + 300) == []
    assert [x.kind for x in eng.tick(st, t + 600)] == ["resolved"]


ANOMALY = """
rules:
  - name: odd
    metric: m
    anomaly: {z: 4, warmup: 20, half_life: 1h}
    severity: P3
    update_interval: 0s
    ticket: {title: "{value}"}
"""


def test_anomaly_warms_up_then_fires_on_a_spike() -> None:
    eng, st = engine(ANOMALY), EngineState()
    spike_early = feed(eng, st, "m", [(0, 10), (10, 10.5), (20, 500)])
    assert spike_early == []  # warming up: nothing may fire
    st = EngineState()
    normal = [(t * 10.0, 10 + (t % 3) * 0.5) for t in range(60)]
    assert feed(eng, st, "m", normal) == []
    got = feed(eng, st, "m", [(600, 30)])
    assert [x.kind for x in got] == ["firing"]
    assert [x.kind for x in feed(eng, st, "m", [(610, 10.5)])] == ["resolved"]


def test_anomaly_seasonal_slots_learn_separately() -> None:
    text = ANOMALY.replace("half_life: 1h}", "half_life: 1d, season: 1d, slots: 2}")
    eng, st = engine(text), EngineState()
    # nights (first half of the day) at 10, days at 100, for 25 days: each slot its own normal
    pts = [(d * 86400.0 + h * 3600.0, 10.0 + (h % 2) * 0.2 if h < 12 else 100.0 + (h % 2))
           for d in range(25) for h in range(24)]
    assert feed(eng, st, "m", pts) == []
    assert [x.kind for x in feed(eng, st, "m", [(25 * 86400.0 + 3600, 100.0)])] == ["firing"]


FLAP = """
rules:
  - name: f
    metric: m
    when: value > 10
    severity: P2
    update_interval: 0s
    flapping: {changes: 4, window: 1h}
    ticket: {title: t}
"""


def test_flapping_makes_one_held_ticket_not_many() -> None:
    eng, st = engine(FLAP), EngineState()
    pts = [(i * 60.0, 20.0 if i % 2 == 0 else 0.0) for i in range(20)]
    out = feed(eng, st, "m", pts)
    changes = plan(out)
    fires = [c for c in changes if c.kind == "fire"]
    # changes 1-4 (fire, resolve, fire, resolve) pass; the 5th (> 4) fires flapping and
    # from then on the alert is held open: 3 fires and 2 resolves for 20 flips
    assert [c.flapping for c in fires] == [False, False, True]
    resolves = [c for c in changes if c.kind == "resolve"]
    assert len(resolves) == 2
    # quiet for the whole window: resolved once, flapping over
    quiet = feed(eng, st, "m", [(1200 + i * 600.0, 0.0) for i in range(8)])
    assert [x.kind for x in quiet if x.kind != "update"] == ["resolved"]


def _silence(**m: str) -> Silence:
    return Silence("s1", {k: parse_matcher(v) for k, v in m.items()}, T0, T0 + 3600,
                   "ops", "patching")


def test_silenced_alert_is_recorded_but_opens_no_ticket_until_silence_ends() -> None:
    rs = ruleset_from_text(FLAP)
    eng, st = Engine(rs, [_silence(device="=~d.*", rule="f")]), EngineState()
    out = eng.evaluate(st, [metrics("m", 20, T0 + 10)])
    assert [(x.kind, x.silenced) for x in out] == [("firing", "s1")]
    assert plan(out)[0].muted
    assert eng.tick(st, T0 + 100) == []
    opened = eng.tick(st, T0 + 3600)
    assert [(x.kind, x.silenced) for x in opened] == [("firing", None)]


def test_silence_in_yaml_with_times() -> None:
    text = FLAP + """
silences:
  - matchers: {severity: P2}
    starts: 2027-01-15T08:00:00Z
    ends: 2027-01-15T10:00:00Z
    author: ops
    reason: window
"""
    rs = ruleset_from_text(text, "x.yaml")
    assert rs.silences[0].id == "x.yaml:12" and rs.silences[0].ends_at - rs.silences[0].starts_at \
        == 7200
    eng, st = Engine(rs), EngineState()
    inside = eng.evaluate(st, [metrics("m", 20, rs.silences[0].starts_at + 1)])
    assert inside[0].silenced == "x.yaml:12"


def test_snmp_unreachable_is_device_down_with_its_own_reason(clock: FakeClock) -> None:
    eng, st = engine(OFFLINE.replace("    no_data_for: 5m\n", "")), EngineState()
    t = clock.now()
    eng.evaluate(st, [metrics("snmp.up", 0, t, device="ups")])
    eng.evaluate(st, [metrics("snmp.up", 0, t + 30, device="ups")])  # poller data ≠ device up
    [fired] = eng.tick(st, t + 60)
    assert fired.reason == "device down: not answering SNMP"
    back = eng.evaluate(st, [metrics("snmp.up", 1, t + 90, device="ups")])
    assert [x.kind for x in back] == ["resolved"]


def test_a_replayed_backlog_neither_fires_twice_nor_clears_a_real_alert() -> None:
    eng, st = engine(FLAP.replace("flapping: {changes: 4, window: 1h}", "for: 2m")), \
        EngineState()
    live = [metrics("m", 20, T0 + i * 60, seq=100 + i) for i in range(4)]
    fired = eng.evaluate(st, live)
    assert [x.kind for x in fired if x.kind != "update"] == ["firing"]
    # QoS 1 redelivers the same messages: dropped by sequence number
    assert eng.evaluate(st, live) == [] and st.duplicates == 4
    # an agent's buffered backlog from before arrives late, with normal readings: judged by
    # its own (older) timestamps, it cannot clear the alert the newer data raised
    backlog = [metrics("m", 1, T0 - 600 + i * 60, seq=50 + i) for i in range(5)]
    assert eng.evaluate(st, backlog) == []
    assert next(iter(st.alerts.values())).state == "firing"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 120), st.floats(0, 100)), min_size=1, max_size=60),
       st.sampled_from(["0s", "1m"]), st.sampled_from(["0s", "2m"]),
       st.sampled_from(["false", "{changes: 3, window: 10m}"]))
def test_alert_transitions_always_follow_the_lifecycle(
        steps: list[tuple[int, float]], for_: str, keep: str, flapping: str) -> None:
    """Whatever the readings: per fingerprint, firing (update)* resolved, repeated — never a
    resolve without a fire, never two fires in a row."""
    text = f"""
rules:
  - name: p
    metric: m
    when: value > 50
    clear: value < 40
    for: {for_}
    keep_firing_for: {keep}
    flapping: {flapping}
    severity: P2
    ticket: {{title: t}}
"""
    eng, state = engine(text), EngineState()
    t = T0
    out = []
    for gap, v in steps:
        t += gap
        out.extend(eng.evaluate(state, [metrics("m", v, t)]))
    firing = False
    for tr in out:
        if tr.kind == "firing":
            assert not firing
            firing = True
        else:
            assert firing, tr.kind
            firing = tr.kind != "resolved"
    assert firing == any(a.state == "firing" for a in state.alerts.values())
