"""Enrollment end to end against Mosquitto with dynamic security (the shipped production
config) and the collector's HTTPS route: `devices enroll` → `agent enroll` → the agent
publishes; what an enrolled identity may not do is refused with MQTT 5 reason code 0x87 and
counted; a poller publishes for its declared targets only; retire and rotate take effect on
the broker at once; bad tokens are refused and audited; 100 enrollments make 100 identities."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.daemon import Agent
from fieldwatch.collector.enroll.store import EnrollStore

from fieldwatch import wire
from fieldwatch.cli import main
from fieldwatch.config import load_config
from tests.broker.deploy import release
from tests.e2e.procs import wait_for
from tests.enroll.conftest import SERVICE, Site

pytestmark = pytest.mark.e2e
T = wire.topic
NOT_AUTHORIZED = 0x87
OFF = {"enabled": False}


def cli_token(site: Site, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """`fieldwatch devices enroll ... --json` against the site's database; the token."""
    assert main(["devices", *args, "--db", site.enrollment.store.engine.url.database or "",
                 "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)[0]["token"])


def refused_reported(got: list[tuple[str, bytes]]) -> float | None:
    """agent.publish_refused_total in the latest metrics message of hq/web-01."""
    for topic, payload in reversed(list(got)):
        if topic == T("hq", "web-01", "metrics"):
            msg = wire.decode(payload)
            assert isinstance(msg, wire.Metrics)
            return next((x.value for x in msg.samples
                         if x.name == "agent.publish_refused_total"), None)
    return None


def light(cfg_path: Path, state: Path) -> AgentConfig:
    """The enrolled config as written, with the metric sources cut down for a quick test."""
    text = cfg_path.read_text() + "interval: 200ms\ninventory: {enabled: false}\nsources:\n" + \
        "".join(f"  {k}: {{enabled: false}}\n" for k in (
            "load", "memory", "disks", "diskio", "net", "netlink", "sensors", "battery",
            "host", "processes", "smart"))
    light_path = cfg_path.with_name("light.yaml")
    light_path.write_text(text)
    cfg = load_config(AgentConfig, light_path)
    import msgspec

    return msgspec.structs.replace(cfg, state_dir=state)


def test_enroll_then_the_agent_publishes_and_may_not_speak_for_another_device(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = cli_token(site, capsys, "enroll", "web-01", "--site", "hq")
    conf = tmp_path / "etc" / "agent.yaml"
    assert main(["agent", "enroll", "--collector", site.url, "--token", token,
                 "--ca", str(site.ca), "--config", str(conf)]) == 0
    assert "enrolled as hq/web-01" in capsys.readouterr().out
    files = sorted(p.name for p in conf.parent.iterdir())
    assert files == ["agent.yaml", "broker-ca.pem", "diag-collector.pub", "mqtt.pass"]
    for p in conf.parent.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    # enrolling again (new credentials) keeps the previous config, edits and all, as .bak
    conf.write_text(conf.read_text() + "# my edit\n")
    token = cli_token(site, capsys, "enroll", "web-01", "--site", "hq")
    assert main(["agent", "enroll", "--collector", site.url, "--token", token,
                 "--ca", str(site.ca), "--config", str(conf)]) == 0
    capsys.readouterr()
    assert (conf.parent / "agent.yaml.bak").read_text().endswith("# my edit\n")
    assert stat.S_IMODE((conf.parent / "agent.yaml.bak").stat().st_mode) == 0o600
    (conf.parent / "agent.yaml.bak").unlink()
    cfg = light(conf, tmp_path / "state")
    assert (cfg.site, cfg.device, cfg.broker.username) == ("hq", "web-01", "hq/web-01~2")
    assert cfg.diag.enabled and cfg.diag.trusted_keys == [conf.parent / "diag-collector.pub"]

    collector = site.connect("collector", SERVICE["collector"], "fieldwatch-collector")
    collector.subscribe("fieldwatch/v1/#")
    agent = Agent(cfg)
    try:
        started = time.monotonic()
        agent.start()
        wait_for(lambda: any(t == T("hq", "web-01", "metrics") for t, _ in collector.got), 15)
        print(f"start-to-first-metric {time.monotonic() - started:.2f}s")
        # the same agent publishing as another device: refused (0x87), kept and counted
        agent.publish("hq", "web-02", "events", b"{}")
        wait_for(lambda: agent.publisher.refused_totals() == {"hq/web-02": 1}, 10)
        # ... and the count reaches the collector with the device's own metrics
        wait_for(lambda: refused_reported(collector.got) == 1, 10)
        assert not any(t.startswith(T("hq", "web-02", "")) for t, _ in collector.got)
    finally:
        agent.stop()
        release(agent.publisher.client)
        collector.close()
    # and seen from a plain MQTT 5 client with the same credentials: the reason code itself
    password = (conf.parent / "mqtt.pass").read_text().strip()
    c = site.connect("hq/web-01~2", password)
    try:
        assert not c.publish(T("hq", "web-01", "metrics")).is_failure
        assert c.publish(T("hq", "web-02", "metrics")).value == NOT_AUTHORIZED
        assert c.publish(T("plant", "web-01", "metrics")).value == NOT_AUTHORIZED
        assert c.publish(T("hq", "web-01", "diag/req")).value == NOT_AUTHORIZED
    finally:
        c.close()


def test_a_poller_may_publish_its_targets_and_nothing_else(site: Site) -> None:
    token = site.enrollment.enroll("poller-1", "hq", "core-sw-1,plant/ups-1")
    r = site.exchange(token)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["targets"] == ["hq/core-sw-1", "plant/ups-1"]
    assert r.headers["cache-control"] == "no-store"
    poller = site.connect(b["username"], b["password"])
    other = site.connect(*_enrolled(site, "web-01"))
    try:
        for ok in (T("hq", "core-sw-1", "metrics"), T("hq", "core-sw-1", "events"),
                   T("plant", "ups-1", "metrics"), T("plant", "ups-1", "inventory"),
                   T("hq", "poller-1", "metrics"), T("hq", "poller-1", "status")):
            assert not poller.publish(ok).is_failure, ok
        for refused in (T("hq", "core-sw-2", "metrics"), T("hq", "core-sw-1", "status"),
                        T("hq", "ups-1", "metrics"), T("plant", "core-sw-1", "metrics"),
                        T("hq", "poller-1", "diag/req"), "elsewhere/x"):
            assert poller.publish(refused).value == NOT_AUTHORIZED, refused
        # the targets are the poller's alone
        assert other.publish(T("hq", "core-sw-1", "metrics")).value == NOT_AUTHORIZED
        # it reads its own diagnostics requests and may not subscribe to anything else
        poller.subscribe(T("hq", "poller-1", "diag/req"))
        poller.subscribe("fieldwatch/v1/#")
        ops = site.connect("fieldwatch-ops", SERVICE["fieldwatch-ops"])
        try:
            assert not ops.publish(T("hq", "poller-1", "diag/req"), b"r1").is_failure
            assert not ops.publish(T("hq", "web-01", "diag/req"), b"r2").is_failure
        finally:
            ops.close()
        wait_for(lambda: poller.got, 10)
        time.sleep(0.2)
        assert poller.got == [(T("hq", "poller-1", "diag/req"), b"r1")]
    finally:
        poller.close()
        other.close()


def _enrolled(site: Site, device: str, site_name: str = "hq") -> tuple[str, str]:
    r = site.exchange(site.enrollment.enroll(device, site_name))
    assert r.status_code == 200, r.text
    return r.json()["username"], r.json()["password"]


def test_retire_drops_the_connection_and_refuses_the_next(site: Site) -> None:
    user, password = _enrolled(site, "web-01")
    c = site.connect(user, password)
    try:
        assert not c.publish(T("hq", "web-01", "metrics")).is_failure
        assert site.enrollment.retire("web-01", "hq") == [user]
        wait_for(lambda: c.disconnects, 10)  # dropped at once, not at its next connect
    finally:
        c.close()
    again = site.connect(user, password)
    try:
        assert again.connack is not None and again.connack.is_failure
        assert not again.connected.is_set()
    finally:
        again.close()
    assert user not in site.enrollment.provisioner.usernames()
    events = [r["event"] for r in site.enrollment.store.audit_log()]
    assert events[0] == "retired"


def test_a_retired_devices_pending_token_is_refused(site: Site) -> None:
    _enrolled(site, "web-01")
    token = site.enrollment.rotate("web-01", "hq", ttl=600, overlap=60)
    site.enrollment.retire("web-01", "hq")
    r = site.exchange(token)
    assert (r.status_code, r.json()["reason"]) == (403, "retired")


def test_rotation_keeps_the_old_credential_for_the_overlap_only(site: Site) -> None:
    old_user, old_pw = _enrolled(site, "web-01")
    r = site.exchange(site.enrollment.rotate("web-01", "hq", ttl=600, overlap=300))
    new_user, new_pw = r.json()["username"], r.json()["password"]
    assert (old_user, new_user) == ("hq/web-01~1", "hq/web-01~2")
    for user, pw in ((old_user, old_pw), (new_user, new_pw)):
        c = site.connect(user, pw)
        assert not c.publish(T("hq", "web-01", "metrics")).is_failure
        c.close()
    site.clock.advance(301)
    assert site.enrollment.sweep() == [old_user]
    refused = site.connect(old_user, old_pw)
    assert refused.connack is not None and refused.connack.is_failure
    refused.close()
    assert site.connect(new_user, new_pw).connected.is_set()


def test_the_sweeper_removes_rotated_out_credentials_without_another_enrollment(
        site: Site) -> None:
    from fieldwatch.collector.enroll.service import Sweeper

    old_user, old_pw = _enrolled(site, "web-01")
    assert site.exchange(site.enrollment.rotate("web-01", "hq", ttl=600, overlap=30)
                         ).status_code == 200
    sweeper = Sweeper(site.enrollment, every=0.05)
    sweeper.start()
    try:
        site.clock.advance(31)
        wait_for(lambda: old_user not in site.enrollment.provisioner.usernames(), 10)
    finally:
        sweeper.stop()
    assert site.enrollment.store.active("hq", "web-01") == ["hq/web-01~2"]
    refused = site.connect(old_user, old_pw)
    assert refused.connack is not None and refused.connack.is_failure
    refused.close()


def test_enrolling_an_enrolled_device_again_replaces_its_credential_at_once(site: Site) -> None:
    first, _ = _enrolled(site, "web-01")
    second, _ = _enrolled(site, "web-01")
    assert (first, second) == ("hq/web-01~1", "hq/web-01~2")
    users = site.enrollment.provisioner.usernames()
    assert second in users and first not in users


def test_used_expired_forged_and_malformed_tokens_are_refused_and_audited(site: Site) -> None:
    used = site.enrollment.enroll("web-01", "hq")
    assert site.exchange(used).status_code == 200
    expired = site.enrollment.enroll("web-02", "hq", ttl=60)
    site.clock.advance(61)
    forged = "fwe_" + "A" * 43
    answers = {name: site.exchange(t) for name, t in (("used", used), ("expired", expired),
                                                     ("forged", forged),
                                                     ("malformed", "not-a-token"))}
    assert {k: (r.status_code, r.json()["reason"]) for k, r in answers.items()} == {
        k: (403, k) for k in answers}
    refused = [(r["reason"], r["address"]) for r in site.enrollment.store.audit_log()
               if r["event"] == "refused"]
    assert sorted(refused) == sorted((k, "127.0.0.1") for k in answers)
    assert {k: site.stats.get("enroll_refused_total", k) for k in answers} == {
        k: 1 for k in answers}
    assert site.enrollment.provisioner.usernames() == {
        "fieldwatch-provisioner", *SERVICE, "hq/web-01~1"}


def test_an_address_with_too_many_refusals_waits(site: Site) -> None:
    for _ in range(20):  # the fixture's throttle: 20 per window
        assert site.exchange("fwe_" + "B" * 43).status_code == 403
    token = site.enrollment.enroll("web-01", "hq")
    r = site.exchange(token)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    site.clock.advance(601)
    assert site.exchange(token).status_code == 200  # the token was not spent meanwhile


def test_a_broker_that_refuses_leaves_the_token_valid(site: Site) -> None:
    token = site.enrollment.enroll("web-01", "hq")
    site.broker.stop()
    site.enrollment.provisioner.close()
    r = site.exchange(token)
    assert r.status_code == 503
    site.broker.start()
    assert site.exchange(token).status_code == 200
    assert site.enrollment.store.active("hq", "web-01") == ["hq/web-01~1"]
    events = [r["event"] for r in site.enrollment.store.audit_log()]
    assert events[:3] == ["exchanged", "provisioning_failed", "exchanged"]


def test_a_hundred_enrollments_leave_a_hundred_identities(site: Site) -> None:
    for i in range(100):
        assert site.exchange(site.enrollment.enroll(f"dev-{i:03d}", "hq")).status_code == 200
    users = site.enrollment.provisioner.usernames() - {"fieldwatch-provisioner", *SERVICE}
    assert users == {f"hq/dev-{i:03d}~1" for i in range(100)}
    assert len({tuple(d["usernames"]) for d in site.enrollment.store.devices()}) == 100
    assert isinstance(site.enrollment.store, EnrollStore)
