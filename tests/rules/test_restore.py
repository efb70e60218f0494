"""A collector restart must not orphan open tickets: their alerts resume firing."""

from __future__ import annotations

from fieldwatch.collector.rules.engine import EngineState

from tests.rules.helpers import engine, feed, kinds

RULES = """
rules:
  - {name: hot, metric: temp.celsius, labels: {sensor: cpu}, when: value > 80,
     clear: value < 70, for: 1m, severity: P1, ticket: {title: hot}}
  - {name: down, kind: offline, severity: P1, ticket: {title: down}}
"""


def test_restored_alert_resolves_on_clear_and_updates_on_repeat() -> None:
    before, st = engine(RULES), EngineState()
    fired = feed(before, st, "temp.celsius", [(0, 90), (60, 91)], {"sensor": "cpu"})
    assert kinds(fired) == [("firing", 60)]
    fp = fired[0].fingerprint

    after, fresh = engine(RULES), EngineState()  # the restarted collector
    assert after.restore(fresh, "hot", "s", "d1", {"sensor": "cpu"}, 60, 60, 91)
    assert [a.fingerprint for a in fresh.alerts.values()] == [fp]
    repeat = feed(after, fresh, "temp.celsius", [(120, 92)], {"sensor": "cpu"})
    assert kinds(repeat) == [("update", 120)]  # a repeat, not a second opening
    cleared = feed(after, fresh, "temp.celsius", [(180, 60)], {"sensor": "cpu"})
    assert kinds(cleared) == [("resolved", 180)] and cleared[0].fingerprint == fp
    assert fresh.alerts == {}


def test_restore_refuses_gone_rules_other_series_and_duplicates() -> None:
    eng, st = engine(RULES), EngineState()
    assert not eng.restore(st, "no_such_rule", "s", "d1", {}, 0, 0, 1)
    assert not eng.restore(st, "hot", "s", "d1", {"sensor": "psu"}, 0, 0, 1)  # not selected
    assert eng.restore(st, "hot", "s", "d1", {"sensor": "cpu"}, 0, 0, 95)
    assert not eng.restore(st, "hot", "s", "d1", {"sensor": "cpu"}, 0, 0, 95)
    assert len(st.alerts) == 1


def test_restored_offline_alert_clears_when_the_device_is_back(clock) -> None:  # noqa: ANN001
    from fieldwatch import wire

    eng, st = engine(RULES), EngineState()
    assert eng.restore(st, "down", "s", "d1", {}, 0, 0, 0)
    online = wire.Status(device="d1", site="s", state="online", cause="connected", ts=100.0)
    out = eng.evaluate(st, [online])
    assert [(t.kind, t.rule.name) for t in out] == [("resolved", "down")]
