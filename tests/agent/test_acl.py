"""`fieldwatch agent acl`: the Mosquitto ACL stanza for an agent's SNMP targets (what Mosquitto
makes of it: tests/broker/test_shipped_config.py)."""

from __future__ import annotations

from fieldwatch.agent.acl import render_acl
from fieldwatch.agent.config import AgentConfig

from fieldwatch.structs import convert


def _rules(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.startswith("#")]


def test_an_agent_without_targets_needs_no_stanza() -> None:
    text = render_acl(convert(AgentConfig, {"device": "web-01", "site": "hq"}))
    assert _rules(text) == []
    assert "hq/web-01 polls no SNMP targets" in text


def test_targets_at_several_sites_each_get_their_own_lines_once() -> None:
    cfg = convert(AgentConfig, {"device": "p", "site": "hq", "snmp": {"targets": [
        {"device": "sw", "host": "192.0.2.1"},
        {"device": "ups", "host": "192.0.2.2", "site": "plant"}]}})
    assert _rules(render_acl(cfg)) == [
        "user hq/p",
        "topic write fieldwatch/v1/hq/sw/metrics", "topic write fieldwatch/v1/hq/sw/events",
        "topic write fieldwatch/v1/hq/sw/inventory",
        "topic write fieldwatch/v1/plant/ups/metrics",
        "topic write fieldwatch/v1/plant/ups/events",
        "topic write fieldwatch/v1/plant/ups/inventory"]


def test_a_user_name_off_the_convention_is_used_and_flagged() -> None:
    cfg = convert(AgentConfig, {"device": "p", "site": "hq", "broker": {"username": "poller"},
                                "snmp": {"targets": [{"device": "sw", "host": "192.0.2.1"}],
                                         "traps": {"enabled": True}}})
    text = render_acl(cfg, "/etc/fieldwatch/agent.yaml")
    assert _rules(text)[0] == "user poller"
    assert "from /etc/fieldwatch/agent.yaml" in text
    assert "the shipped patterns expect the user hq/p" in text
    assert "# topic write fieldwatch/v1/hq/+/events" in text  # traps: offered, not granted
