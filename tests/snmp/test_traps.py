"""Traps sent with net-snmp's snmptrap arrive as events on the right device's topic."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from fieldwatch.agent.snmp.config import SnmpConfig
from fieldwatch.agent.snmp.service import SnmpService
from fieldwatch.agent.snmp.traps import trap_event
from fieldwatch.agent.sources.snmp import SnmpHealthSource
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch import wire
from fieldwatch.errors import ConfigError
from fieldwatch.structs import convert
from tests.conftest import _require
from tests.snmp.agents import COMMUNITY, Snmpd
from tests.snmp.helpers import Published

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"


class Collected(Published):
    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def __call__(self, site: str, device: str, kind: str, payload: bytes) -> None:
        with self.changed:
            super().__call__(site, device, kind, payload)
            self.changed.notify_all()

    def wait_events(self, n: int, timeout: float = 10.0) -> list[wire.Event]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.events()) >= n, timeout)
        return self.events()


def snmptrap(port: int, *args: str, community: str = "public", version: str = "2c") -> None:
    subprocess.run(["snmptrap", f"-v{version}", "-c", community, f"127.0.0.1:{port}", *args],
                   check=True, capture_output=True, timeout=10, env={**os.environ, "MIBS": ""})


@pytest.fixture
def receiver(snmpd: Snmpd):  # type: ignore[no-untyped-def]
    _require("snmptrap")
    out = Collected()
    cfg = convert(SnmpConfig, {
        "interval": "1h", "traps": {"enabled": True, "host": "127.0.0.1", "port": 0,
                                    "communities": ["public", "second"]},
        "targets": [{"device": "sw-edge", "site": "branch", "host": "127.0.0.1",
                     "port": snmpd.port, "community": COMMUNITY, "profiles": ["system"]}]})
    service = SnmpService(cfg, "hq", out)
    service.start()
    assert service.receiver is not None
    yield service, out
    service.stop()


def test_link_down_and_up_arrive_as_named_events_of_the_target(receiver) -> None:  # type: ignore[no-untyped-def]
    service, out = receiver
    port = service.receiver.port
    snmptrap(port, "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.2", "i", "2",
             "1.3.6.1.2.1.2.2.1.7.2", "i", "1", "1.3.6.1.2.1.2.2.1.8.2", "i", "2",
             "1.3.6.1.2.1.31.1.1.1.1.2", "s", "Gi0/2")
    snmptrap(port, "4200", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.2", "i", "2",
             community="second")
    down, up = out.wait_events(2)
    assert down.type == "snmp.trap.linkDown" and up.type == "snmp.trap.linkUp"
    assert (down.site, down.device) == ("branch", "sw-edge")
    assert down.fields["ifindex"] == 2 and down.fields["ifname"] == "Gi0/2"
    assert down.fields["oper_status"] == 2 and down.fields["admin_status"] == 1
    assert down.fields["trap_oid"] == LINK_DOWN and down.fields["source"] == "127.0.0.1"
    assert down.fields["1.3.6.1.2.1.2.2.1.8.2"] == 2  # every varbind kept by OID
    assert up.fields["uptime_seconds"] == 42.0
    assert service.receiver.received == 2
    published = [(s, d, k) for s, d, k, _ in out if k == "events"]
    assert published == [("branch", "sw-edge", "events")] * 2


def test_standard_v1_and_enterprise_traps(receiver) -> None:  # type: ignore[no-untyped-def]
    service, out = receiver
    port = service.receiver.port
    snmptrap(port, "", "1.3.6.1.6.3.1.1.5.1")  # coldStart
    snmptrap(port, "", "1.3.6.1.4.1.99999.0.7", "1.3.6.1.4.1.99999.1.1", "s", "door open")
    snmptrap(port, "1.3.6.1.4.1.99999", "127.0.0.1", "4", "0", "", version="1")  # v1 authFail
    snmptrap(port, "", "1.3.6.1.6.3.1.1.5.2")  # warmStart
    cold, other, auth, warm = out.wait_events(4)
    assert cold.type == "snmp.trap.coldStart" and warm.type == "snmp.trap.warmStart"
    assert auth.type == "snmp.trap.authenticationFailure"
    assert other.type == "snmp.trap"
    assert other.fields["trap_oid"] == "1.3.6.1.4.1.99999.0.7"
    assert other.fields["1.3.6.1.4.1.99999.1.1"] == "door open"


def test_wrong_community_traps_are_not_published(receiver) -> None:  # type: ignore[no-untyped-def]
    service, out = receiver
    snmptrap(service.receiver.port, "", LINK_DOWN, community="intruder")
    snmptrap(service.receiver.port, "", "1.3.6.1.6.3.1.1.5.1")
    [event] = out.wait_events(1)
    # the good trap was sent after the bad one from the same host: UDP on loopback keeps order
    assert event.type == "snmp.trap.coldStart"
    assert [e.type for e in out.events()] == ["snmp.trap.coldStart"]


def test_unknown_sources_get_a_device_from_their_address_and_are_counted() -> None:
    _require("snmptrap")
    out = Collected()
    cfg = convert(SnmpConfig, {"traps": {"enabled": True, "host": "127.0.0.1",
                                               "port": 0}})
    service = SnmpService(cfg, "hq", out)
    service.start()
    try:
        assert service.receiver is not None
        snmptrap(service.receiver.port, "", LINK_DOWN)
        snmptrap(service.receiver.port, "", LINK_DOWN)
        a, b = out.wait_events(2)
    finally:
        service.stop()
    assert (a.site, a.device, b.device) == ("hq", "snmp-127-0-0-1", "snmp-127-0-0-1")
    assert service.receiver.unknown_sources == {"127.0.0.1": 2}
    health = {s.name: s.value for s in SnmpHealthSource(service).collect()}
    assert health == {"snmp.targets": 0, "snmp.targets_up": 0, "snmp.poll_failures_total": 0,
                      "snmp.traps_received_total": 2, "snmp.traps_unknown_source_total": 2,
                      "snmp.trap_errors_total": 0}


def test_trap_port_in_use_fails_at_start() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        cfg = convert(SnmpConfig, {"traps": {"enabled": True, "host": "127.0.0.1",
                                                   "port": taken.getsockname()[1]}})
        service = SnmpService(cfg, "hq", Collected())
        with pytest.raises(Exception, match="SNMP could not start: .*in use"):
            service.start()


def test_trap_event_is_pure_and_tolerates_missing_trap_oid() -> None:
    e = trap_event("s", "d", "10.0.0.1", [((1, 3, 6, 1, 2, 1, 1, 3, 0), 100)], ts=5.0)
    assert e.type == "snmp.trap" and e.fields["trap"] == "unknown" and e.ts == 5.0
    assert e.fields["uptime_seconds"] == 1.0


def test_v3_auth_priv_traps_from_a_known_engine() -> None:
    _require("snmptrap")
    engine_id = "0x8000000001020304"
    out = Collected()
    user = {"user": "trapper", "auth_key": "trap-auth-1", "priv_key": "trap-priv-1",
            "engine_id": engine_id}
    cfg = convert(SnmpConfig, {"traps": {"enabled": True, "host": "127.0.0.1", "port": 0,
                                               "v3_users": [user]}})
    service = SnmpService(cfg, "hq", out)
    service.start()
    try:
        assert service.receiver is not None
        port = service.receiver.port
        v3 = ["-v3", "-e", engine_id, "-u", "trapper", "-l", "authPriv", "-a", "SHA", "-x", "AES",
              "-X", "trap-priv-1"]
        for auth in ("wrong-auth-1", "trap-auth-1"):  # the bad one is dropped, the good arrives
            subprocess.run(["snmptrap", *v3, "-A", auth, f"127.0.0.1:{port}", "", LINK_DOWN,
                            "1.3.6.1.2.1.2.2.1.1.7", "i", "7"], check=True,
                           capture_output=True, timeout=10, env={**os.environ, "MIBS": ""})
        [event] = out.wait_events(1)
    finally:
        service.stop()
    assert event.type == "snmp.trap.linkDown" and event.fields["ifindex"] == 7
    assert [e.type for e in out.events()] == ["snmp.trap.linkDown"]


def test_trap_user_engine_id_is_validated() -> None:
    with pytest.raises(ConfigError, match="engine_id"):
        convert(SnmpConfig, {"traps": {"v3_users": [
            {"user": "u", "auth_key": "k" * 8, "engine_id": "nothex"}]}})


_oids = st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=14).map(
    tuple)
_values = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**64 - 1),  # Counter64
                    st.text(max_size=40))


@given(st.lists(st.tuples(_oids, _values), max_size=12), st.booleans())
def test_any_varbinds_make_an_encodable_event(varbinds, with_trap_oid) -> None:  # type: ignore[no-untyped-def]
    if with_trap_oid:
        varbinds = [((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), LINK_DOWN), *varbinds]
    event = trap_event("s", "d", "10.0.0.1", varbinds, ts=1.0)
    assert wire.decode(wire.encode(event)) == event
    assert event.type.startswith("snmp.trap")
