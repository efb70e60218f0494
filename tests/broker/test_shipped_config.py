"""The shipped Mosquitto configs and ACL (config/mosquitto/), started for real: both (dynamic
security, and password and ACL files) start in the documented layout and alone; for the
static one: an agent cannot take over the collector's session; an agent
publishes only under its own site and device; a poller publishes for the SNMP targets that
`fieldwatch agent acl` lists, and for no others."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.enroll.acl import DeviceAcl

from fieldwatch import wire
from fieldwatch.cli import main
from tests.broker.deploy import Broker, Client, stage
from tests.e2e.procs import wait_for

pytestmark = pytest.mark.e2e

USERS = {"collector": "c-pw", "hq/web-01": "w1-pw", "hq/web-02": "w2-pw",
         "plant/web-01": "p1-pw", "hq/poller-1": "poll-pw", "fieldwatch-ops": "ops-pw"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = stage(tmp_path / "mosquitto", USERS).start()
    yield b
    b.stop()


def connect(broker: Broker, user: str | None, client_id: str = "",
            protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5, clean: bool = True) -> Client:
    return Client(broker, user, USERS.get(user or ""), client_id or f"c-{user}", protocol,
                  clean).connect()


@pytest.mark.parametrize("variant", ["static", "dynsec"])
@pytest.mark.parametrize("layout", ["debian", "standalone"])
def test_the_shipped_config_starts_and_admits_only_known_users(tmp_path: Path, layout: str,
                                                               variant: str) -> None:
    b = stage(tmp_path / "m", USERS, layout=layout, variant=variant).start()
    clients = []
    try:
        if variant == "dynsec":  # devices come through the plugin (docs/enroll.md)
            p = b.provisioner()
            p.provision("hq/web-01", USERS["hq/web-01"], DeviceAcl("hq", "web-01"))
            p.close()
            collector = connect(b, "collector")
            clients.append(collector)
            assert collector.connected.is_set()
        agent = connect(b, "hq/web-01")
        clients.append(agent)
        assert agent.connected.is_set()
        anonymous = connect(b, None)
        wrong = Client(b, "hq/web-01", "not-the-password", "x").connect()
        clients += [anonymous, wrong]
        for refused in (anonymous, wrong):
            assert refused.connack is not None and refused.connack.is_failure
            assert not refused.connected.is_set()
    finally:
        for c in clients:
            c.close()
        b.stop()


def test_a_comment_after_a_value_would_stop_mosquitto(tmp_path: Path) -> None:
    """Why the shipped config keeps every comment on its own line (Mosquitto 2.0.11)."""
    b = stage(tmp_path / "m", USERS, layout="standalone",
              edit=lambda c: c.replace("fieldwatch.acl", "fieldwatch.acl  # the topics"))
    try:
        with pytest.raises(RuntimeError, match=r"(?s)did not start.*fieldwatch.acl  # the topics"):
            b.start()
        assert b.proc is not None and b.proc.returncode not in (None, 0)
    finally:
        b.stop()


@pytest.mark.parametrize(("edit", "kicked"), [
    (lambda conf: conf, False),
    # the same config without the line: the agent displaces the collector, as in issue 19
    (lambda conf: conf.replace("use_username_as_clientid true", ""), True),
], ids=["shipped", "without-use_username_as_clientid"])
def test_an_agent_cannot_take_over_the_collectors_session(tmp_path: Path, edit, kicked: bool
                                                          ) -> None:  # type: ignore[no-untyped-def]
    b = stage(tmp_path / "m", USERS, edit=edit).start()
    # the collector as collector/ingest.py connects: MQTT 3.1.1, a persistent session
    collector = connect(b, "collector", "fieldwatch-collector", mqtt.MQTTv311, clean=False)
    intruders = []
    try:
        collector.subscribe(wire.topic("+", "+", "metrics"))
        for protocol in (mqtt.MQTTv311, mqtt.MQTTv5) * 3:  # six attempts, as in the report
            intruders.append(connect(b, "hq/web-01", "fieldwatch-collector", protocol))
        sender = intruders[-1]
        for i in range(40):
            assert not sender.publish(wire.topic("hq", "web-01", "metrics"),
                                      str(i).encode()).is_failure
        if kicked:
            wait_for(lambda: collector.disconnects, 10)
            return
        wait_for(lambda: len(collector.got) == 40, 10)
        time.sleep(0.2)  # nothing more arrives, and the collector was never disconnected
        assert [p for _, p in collector.got] == [str(i).encode() for i in range(40)]
        assert collector.disconnects == [] and collector.c.is_connected()
    finally:
        for c in [collector, *intruders]:
            c.close()
        b.stop()


def test_an_agent_publishes_only_under_its_own_site_and_device(broker: Broker) -> None:
    collector = connect(broker, "collector", "fieldwatch-collector")
    web1, web2 = connect(broker, "hq/web-01"), connect(broker, "hq/web-02")
    try:
        collector.subscribe("fieldwatch/v1/#")
        web1.subscribe("fieldwatch/v1/#")  # granted, but only its own requests come through
        web2.subscribe(wire.topic("hq", "web-02", "diag/req"))
        t = wire.topic
        for kind in ("metrics", "events", "status", "inventory", "diag/res"):
            assert not web1.publish(t("hq", "web-01", kind)).is_failure, kind
        for other in (t("hq", "web-02", "metrics"), t("plant", "web-01", "metrics"),
                      t("hq", "web-01", "diag/req"), "elsewhere/x"):
            # another device, the same device id at another site (the ACL binds the site),
            # a request to itself
            assert web1.publish(other).value == 0x87, other
        assert not collector.publish(t("hq", "web-02", "diag/req"), b"req2").is_failure
        assert not collector.publish(t("hq", "web-01", "diag/req"), b"req1").is_failure
        wait_for(lambda: web1.got and web2.got, 10)
        wait_for(lambda: len(collector.got) == 7, 10)
        time.sleep(0.2)
        # each reads its own requests and nothing else, not even its own data
        assert web1.got == [(t("hq", "web-01", "diag/req"), b"req1")]
        assert web2.got == [(t("hq", "web-02", "diag/req"), b"req2")]
        assert {topic for topic, _ in collector.got} == {
            t("hq", "web-01", k) for k in ("metrics", "events", "status", "inventory",
                                           "diag/res", "diag/req")} | {
            t("hq", "web-02", "diag/req")}
    finally:
        for c in (collector, web1, web2):
            c.close()


def test_the_ops_account_sends_requests_and_reads_results_only(broker: Broker) -> None:
    ops, web1 = connect(broker, "fieldwatch-ops"), connect(broker, "hq/web-01")
    try:
        ops.subscribe("fieldwatch/v1/#")
        t = wire.topic
        for kind in ("metrics", "diag/res"):
            assert not web1.publish(t("hq", "web-01", kind), kind.encode()).is_failure
        assert not ops.publish(t("hq", "web-01", "diag/req")).is_failure
        assert ops.publish(t("hq", "web-01", "metrics")).value == 0x87
        wait_for(lambda: ops.got, 10)
        time.sleep(0.2)
        assert ops.got == [(t("hq", "web-01", "diag/res"), b"diag/res")]
    finally:
        ops.close()
        web1.close()


POLLER = """\
device: poller-1
site: hq
snmp:
  traps: {enabled: true, port: 1162}
  targets:
    - {device: core-sw-1, host: 192.0.2.10}
    - {device: ups-1, host: 192.0.2.11, site: plant}
"""


def test_a_poller_publishes_for_the_targets_its_acl_stanza_lists(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(POLLER)
    assert main(["agent", "acl", "--config", str(cfg)]) == 0
    stanza = capsys.readouterr().out
    assert [ln for ln in stanza.splitlines() if not ln.startswith("#")] == [
        "user hq/poller-1",
        "topic write fieldwatch/v1/hq/core-sw-1/metrics",
        "topic write fieldwatch/v1/hq/core-sw-1/events",
        "topic write fieldwatch/v1/hq/core-sw-1/inventory",
        "topic write fieldwatch/v1/plant/ups-1/metrics",
        "topic write fieldwatch/v1/plant/ups-1/events",
        "topic write fieldwatch/v1/plant/ups-1/inventory"]
    b = stage(tmp_path / "m", USERS, acl_extra="\n" + stanza).start()
    poller, web1 = connect(b, "hq/poller-1"), connect(b, "hq/web-01")
    try:
        t = wire.topic
        for ok in (t("hq", "core-sw-1", "metrics"), t("hq", "core-sw-1", "events"),
                   t("hq", "core-sw-1", "inventory"), t("plant", "ups-1", "metrics"),
                   t("hq", "poller-1", "metrics"), t("hq", "poller-1", "status")):
            assert not poller.publish(ok).is_failure, ok
        for refused in (t("hq", "core-sw-2", "metrics"), t("hq", "core-sw-1", "status"),
                        t("hq", "ups-1", "metrics")):
            assert poller.publish(refused).value == 0x87, refused
        # the stanza is the poller's alone
        assert web1.publish(t("hq", "core-sw-1", "metrics")).value == 0x87
    finally:
        poller.close()
        web1.close()
        b.stop()
