"""Agent process polling snmpd and receiving snmptrap traps → Mosquitto → collector → ticket."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from tests.e2e.procs import API_AUTH, Proc, start_collector, wait_for, write_yaml
from tests.servers import Mosquitto
from tests.snmp.agents import COMMUNITY, Snmpd, free_udp_port
from tests.snmp.test_traps import LINK_DOWN, snmptrap

pytestmark = pytest.mark.e2e

RULE = """
rules:
  - name: snmp_link_down
    event:
      type: snmp.trap.linkDown
      labels_from: [ifindex]
      clear_type: snmp.trap.linkUp
    severity: P2
    ticket: {title: "link {labels.ifindex} down on {device}"}
"""
OFF = {"enabled": False}
SOURCES = ("cpu", "load", "memory", "disks", "diskio", "net", "netlink", "sensors", "battery",
           "host", "processes", "smart")


def start_snmp_agent(tmp: Path, mqtt_port: int, snmpd: Snmpd, trap_port: int) -> Proc:
    cfg = write_yaml(tmp / "agent.yaml", {
        "device": "agent-01", "site": "plant", "interval": "1s",
        "broker": {"host": "127.0.0.1", "port": mqtt_port}, "state_dir": str(tmp / "state"),
        "sources": {name: OFF for name in SOURCES}, "inventory": OFF,
        "snmp": {"interval": "1s", "targets": [
            {"device": "sw-e2e", "site": "branch", "host": "127.0.0.1", "port": snmpd.port,
             "community": COMMUNITY, "profiles": ["system", "if-mib"]}],
            "traps": {"enabled": True, "host": "127.0.0.1", "port": trap_port}}})
    return Proc(["agent", "run", "--config", str(cfg)], tmp / "agent.log")


def test_link_down_trap_opens_a_ticket_for_the_snmp_device(
        tmp_path: Path, mosquitto: Mosquitto, snmpd: Snmpd) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "snmp.yaml").write_text(RULE)
    collector, base = start_collector(tmp_path, mosquitto.port, rules)
    trap_port = free_udp_port()
    agent = start_snmp_agent(tmp_path, mosquitto.port, snmpd, trap_port)
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    try:
        wait_for(lambda: re.search(r"traps on port \d+", agent.log.read_text()), 20)

        def sw_seen() -> bool:
            devices = httpx.get(f"{base}/api/v1/devices", headers=API_AUTH).json()
            return any(d["device"] == "sw-e2e" and d["site"] == "branch" and d["last_seq"]
                       for d in devices)

        wait_for(sw_seen, 20)  # the SNMP target is a device of its own
        assert store.list_tickets() == []
        snmptrap(trap_port, "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.3", "i", "3",
                 "1.3.6.1.2.1.2.2.1.8.3", "i", "2")
        [ticket] = wait_for(store.list_tickets, 20)
        assert (ticket["device"], ticket["site"], ticket["rule"]) == (
            "sw-e2e", "branch", "snmp_link_down")
        assert ticket["title"] == "link 3 down on sw-e2e" and ticket["severity"] == "P2"
        snmptrap(trap_port, "", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.3", "i", "3")
        wait_for(lambda: store.list_tickets()[0]["state"] == "resolved", 20)
    finally:
        agent.stop()
        collector.stop()
        store.engine.dispose()
    assert "Traceback" not in agent.log.read_text()
