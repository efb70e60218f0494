"""Dependencies without writing them (issue 12.3): the agent that polls an SNMP target is its
implicit parent, and a device that goes offline gets one ticket, not one more per missing
metric."""

from __future__ import annotations

from fieldwatch.collector.rules.engine import EngineState, Transition
from fieldwatch.collector.tickets.alerts import plan

from fieldwatch import wire
from tests.rules.helpers import engine, metrics

RULES = """
rules:
  - name: offline
    kind: offline
    for: 1m
    no_data_for: 5m
    hold: 30s
    severity: P1
    ticket: {title: "{device} offline", description: "{reason}"}
  - name: uptime_missing
    kind: absent
    metric: snmp.uptime_seconds
    for: 2m
    severity: P3
    ticket: {title: "no uptime from {device}"}
"""


def inventory(device: str, facts: dict[str, object], ts: float = 0.0) -> wire.Inventory:
    return wire.Inventory(device=device, site="s", ts=ts, facts=facts)


def will(device: str) -> wire.Status:
    return wire.Status(device=device, site="s", state="offline", cause="lost")


def cycle(eng, st: EngineState, t: float, devices: list[str]) -> list[Transition]:
    """One poll cycle: the agent's own metrics and its targets' (uptime, snmp.up)."""
    out: list[Transition] = []
    for d in devices:
        name = "cpu.percent" if d.startswith("agent") else "snmp.uptime_seconds"
        out += eng.evaluate(st, [metrics(name, 1000 + t, t, device=d)])
    return out


def ticks(eng, st: EngineState, start: float, end: float, step: float = 10.0
          ) -> list[Transition]:
    out: list[Transition] = []
    t = start
    while t <= end:
        out += eng.tick(st, t, connected=True)
        t += step
    return out


def opened(out: list[Transition]) -> list[tuple[str, str]]:
    return sorted((c.rule, c.device) for c in plan(out) if c.kind == "fire" and not c.muted)


def test_the_poller_of_snmp_targets_is_their_parent() -> None:
    eng, st = engine(RULES), EngineState()
    targets = ["sw-1", "sw-2", "ups-1"]
    out = eng.evaluate(st, [inventory(d, {"polled_by": "s/agent-1"}) for d in targets])
    for t in range(0, 300, 10):
        out += cycle(eng, st, float(t), ["agent-1", *targets])
    out += eng.evaluate(st, [will("agent-1")], received_at=300.0)  # the agent dies
    out += ticks(eng, st, 300.0, 1800.0)
    assert opened(out) == [("offline", "agent-1")]
    muted = [t for t in out if t.kind == "firing" and t.suppressed_by]
    agent_fp = next(t.fingerprint for t in out if t.device == "agent-1")
    assert sorted((t.rule.name, t.device) for t in muted if t.rule.name == "offline") == [
        ("offline", "sw-1"), ("offline", "sw-2"), ("offline", "ups-1")]
    assert {t.suppressed_by for t in muted if t.rule.name == "offline"} == {agent_fp}
    assert {t.parent for t in muted if t.rule.name == "offline"} == {"s/agent-1"}


def test_an_explicit_parent_wins_over_the_poller() -> None:
    text = RULES + "devices:\n  sw-1: {parent: core}\n"
    eng, st = engine(text), EngineState()
    out = eng.evaluate(st, [inventory("sw-1", {"polled_by": "s/agent-1"}),
                            inventory("sw-2", {"polled_by": "s/agent-1", "parent": "core"})])
    for t in range(0, 300, 10):
        out += cycle(eng, st, float(t), ["agent-1", "core", "sw-1", "sw-2"])
    out += eng.evaluate(st, [will("agent-1")], received_at=300.0)
    for t in range(300, 1800, 10):  # `core` stays up: nothing explains the targets' silence
        out += cycle(eng, st, float(t), ["core"])
        out += eng.tick(st, t + 1.0, connected=True)
    assert opened(out) == [("offline", "agent-1"), ("offline", "sw-1"), ("offline", "sw-2")]
    assert {t.parent for t in out if t.kind == "firing" and t.device.startswith("sw")} == {None}


def test_an_offline_device_gets_one_ticket_not_one_per_missing_metric() -> None:
    eng, st = engine(RULES), EngineState()
    out: list[Transition] = []
    for t in range(0, 300, 10):
        out += cycle(eng, st, float(t), ["sw-1"])
    out += ticks(eng, st, 300.0, 1800.0)  # silent: the heartbeat rule and the absent rule
    assert opened(out) == [("offline", "sw-1")]
    [absent] = [t for t in out if t.rule.name == "uptime_missing" and t.kind == "firing"]
    offline_fp = next(t.fingerprint for t in out if t.rule.name == "offline")
    assert absent.suppressed_by == offline_fp and absent.parent is None


def test_a_last_will_also_explains_the_missing_metrics() -> None:
    eng, st = engine(RULES), EngineState()
    out: list[Transition] = []
    for t in range(0, 300, 10):
        out += cycle(eng, st, float(t), ["sw-1"])
    out += eng.evaluate(st, [will("sw-1")], received_at=300.0)
    out += ticks(eng, st, 300.0, 1800.0)
    assert opened(out) == [("offline", "sw-1")]


def test_back_without_the_metric_the_absence_gets_its_own_ticket() -> None:
    eng, st = engine(RULES), EngineState()
    out: list[Transition] = []
    for t in range(0, 300, 10):
        out += cycle(eng, st, float(t), ["sw-1"])
    out += ticks(eng, st, 300.0, 1000.0)
    assert opened(out) == [("offline", "sw-1")]
    for t in range(1000, 1300, 10):  # back, but the uptime never returns
        out += eng.evaluate(st, [metrics("snmp.up", 1, float(t), device="sw-1")])
        out += eng.tick(st, t + 1.0, connected=True)
    assert opened(out) == [("offline", "sw-1"), ("uptime_missing", "sw-1")]
    assert [t.kind for t in out if t.rule.name == "offline"][-1] == "resolved"


def test_a_metric_missing_while_the_device_reports_is_its_own_ticket() -> None:
    eng, st = engine(RULES), EngineState()
    out: list[Transition] = []
    for t in range(0, 600, 10):  # uptime stops at 300, the device goes on reporting
        name = "snmp.uptime_seconds" if t < 300 else "snmp.up"
        out += eng.evaluate(st, [metrics(name, 1, float(t), device="sw-1")])
        out += eng.tick(st, t + 1.0, connected=True)
    assert opened(out) == [("uptime_missing", "sw-1")]


def test_the_agent_announces_its_targets_and_the_collector_takes_the_hint(tmp_path) -> None:
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.daemon import Agent

    from fieldwatch.structs import convert

    off = {"enabled": False}
    cfg = convert(AgentConfig, {
        "device": "agent-1", "site": "s", "interval": "10s", "state_dir": tmp_path,
        "diag": off, "inventory": off,
        "snmp": {"interval": "30s", "targets": [
            {"device": "sw-1", "host": "192.0.2.1"},
            {"device": "ups-1", "site": "branch", "host": "192.0.2.2", "interval": "1m"}]}})
    agent = Agent(cfg)
    try:
        agent.announce_targets()
        entries = agent.outbox.peek(0, 10)
    finally:
        agent.outbox.close()
    assert [(e.topic, e.retain) for e in entries] == [
        ("fieldwatch/v1/s/sw-1/inventory", True), ("fieldwatch/v1/branch/ups-1/inventory", True)]
    eng, st = engine(RULES), EngineState()
    eng.evaluate(st, [wire.decode(e.payload) for e in entries])
    sw, ups = st.devices[("s", "sw-1")], st.devices[("branch", "ups-1")]
    assert (sw.poller, sw.declared, sw.confirmed) == ("s/agent-1", 30.0, True)
    assert (ups.poller, ups.declared) == ("s/agent-1", 60.0)


def test_a_device_polling_itself_is_not_its_own_parent() -> None:
    eng, st = engine(RULES), EngineState()
    out = eng.evaluate(st, [inventory("agent-1", {"polled_by": "s/agent-1"})])
    for t in range(0, 300, 10):
        out += cycle(eng, st, float(t), ["agent-1"])
    out += eng.evaluate(st, [will("agent-1")], received_at=300.0)
    out += ticks(eng, st, 300.0, 600.0)
    assert opened(out) == [("offline", "agent-1")]
