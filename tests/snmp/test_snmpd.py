"""Against a real net-snmp snmpd: shipped profiles, v2c and v3 authPriv, wrong credentials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fieldwatch import wire
from tests.snmp.agents import COMMUNITY, V3_AUTH, V3_PRIV, V3_USER, Snmpd
from tests.snmp.helpers import poll_round, values


def _v2c(snmpd: Snmpd, device: str = "srv-01", **kw: object) -> dict[str, object]:
    return {"device": device, "host": "127.0.0.1", "port": snmpd.port, "community": COMMUNITY,
            "profiles": ["system", "if-mib", "host-resources"], **kw}


def _v3(snmpd: Snmpd, device: str = "srv-03", auth: str = V3_AUTH,
        priv: str = V3_PRIV, **kw: object) -> dict[str, object]:
    return {"device": device, "host": "127.0.0.1", "port": snmpd.port, "version": "3", **kw,
            "v3": {"user": V3_USER, "auth_protocol": "SHA", "auth_key": auth,
                   "priv_protocol": "AES", "priv_key": priv},
            "profiles": ["system", "if-mib"]}


def test_v2c_shipped_profiles_produce_expected_metrics(snmpd: Snmpd) -> None:
    (r,), published = poll_round({"targets": [_v2c(snmpd)]})
    assert r.error is None
    assert values(r, "snmp.up") == {(): 1.0}
    assert values(r, "snmp.poll_seconds")[()] > 0
    assert values(r, "snmp.uptime_seconds")[()] > 0
    oper = values(r, "if.oper_up")
    lo = (("ifindex", "1"), ("ifname", "lo"))
    assert oper[lo] == 1.0 and values(r, "if.admin_up")[lo] == 1.0
    assert set(oper.values()) <= {0.0, 1.0}
    for name in ("if.in_octets_total", "if.out_octets_total", "if.in_errors_total",
                 "if.out_errors_total", "if.in_discards_total", "if.out_discards_total"):
        assert lo in values(r, name), name
    assert values(r, "if.in_octets_total")[lo] > 0  # snmpd's own replies use loopback
    assert values(r, "host.processes")[()] > 1
    # snmpd fills hrProcessorLoad after its first minute of samples: present or not yet
    assert all(0 <= v <= 100 for v in values(r, "cpu.load_percent").values())
    storage = {dict(k)["storage"]: v for k, v in values(r, "storage.used_percent").items()}
    assert 0 < storage["/"] <= 100
    # memory rows of hrStorageTable (hrStorageRam, VirtualMemory, Other) are not storage
    for name in ("storage.used_percent", "storage.used_bytes", "storage.size_bytes"):
        got = {dict(k)["storage"] for k in values(r, name)}
        assert "/" in got and not got & {"Physical memory", "Virtual memory", "Swap space",
                                         "Memory buffers", "Cached memory"}, (name, got)
    assert any(v > 0 for v in values(r, "storage.size_bytes").values())
    # published as its own device, on its own topic, as one metrics message
    [(site, device, kind, msg)] = published
    assert (site, device, kind) == ("lab", "srv-01", "metrics")
    assert isinstance(msg, wire.Metrics) and msg.device == "srv-01" and msg.samples == r.samples


def test_v3_auth_priv_sha_aes(snmpd: Snmpd) -> None:
    (r,), _ = poll_round({"targets": [_v3(snmpd)]})
    assert r.error is None
    assert values(r, "snmp.up") == {(): 1.0}
    assert values(r, "if.oper_up")[(("ifindex", "1"), ("ifname", "lo"))] == 1.0


def test_wrong_community_is_down_with_clear_error_and_event(snmpd: Snmpd) -> None:
    bad = _v2c(snmpd, "srv-bad", community="not-" + COMMUNITY, timeout="300ms", retries=0)
    (good, r), published = poll_round({"targets": [_v2c(snmpd), bad]})
    assert good.error is None
    assert [(s.name, s.value) for s in r.samples] == [("snmp.up", 0.0)]
    assert r.error is not None and "no response" in r.error and "wrong community" in r.error
    [event] = published.events("srv-bad")
    assert event.type == "snmp.unreachable" and event.fields["error"] == r.error
    assert published.events("srv-01") == []


def test_wrong_v3_password_is_down_with_clear_error(snmpd: Snmpd) -> None:
    # the same user name with the right and the wrong key, side by side in one poller
    (good, bad), published = poll_round({"targets": [_v3(snmpd), _v3(snmpd, "srv-04",
                                                                     auth="wrong-pass-1")]})
    assert good.error is None
    assert values(bad, "snmp.up") == {(): 0.0}
    assert bad.error == "SNMPv3 authentication failed: wrong auth key or auth protocol"
    assert [e.type for e in published.events("srv-04")] == ["snmp.unreachable"]


def test_wrong_v3_privacy_key_is_down(snmpd: Snmpd) -> None:
    # snmpd cannot decrypt the request and drops it: to us that is silence
    (r,), _ = poll_round({"targets": [_v3(snmpd, priv="wrong-priv-1", timeout="300ms",
                                          retries=0)]})
    assert values(r, "snmp.up") == {(): 0.0}
    assert r.error is not None and "no response" in r.error and "wrong v3" in r.error


def test_cli_walk_prints_what_the_device_exposes(snmpd: Snmpd) -> None:
    out = subprocess.run([sys.executable, "-m", "fieldwatch", "snmp", "walk",
                          f"127.0.0.1:{snmpd.port}", "1.3.6.1.2.1.1", "-c", COMMUNITY, "--json"],
                         capture_output=True, text=True, check=True, timeout=30)
    rows = {r["oid"]: r["value"] for r in json.loads(out.stdout)}
    assert rows["1.3.6.1.2.1.1.5.0"] == "fieldwatch-test"  # sysName from our snmpd.conf
    assert isinstance(rows["1.3.6.1.2.1.1.3.0"], int)
    v3 = subprocess.run([sys.executable, "-m", "fieldwatch", "snmp", "walk",
                         f"127.0.0.1:{snmpd.port}", ".1.3.6.1.2.1.1.6", "-v", "3", "-u", V3_USER,
                         "-A", V3_AUTH, "-X", V3_PRIV], capture_output=True, text=True,
                        check=True, timeout=30)
    assert v3.stdout == ".1.3.6.1.2.1.1.6.0 = 'lab'\n"


def test_cli_walk_uses_a_configured_target(snmpd: Snmpd, tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"snmp:\n  targets:\n    - {{device: core-1, host: 127.0.0.1, "
                   f"port: {snmpd.port}, version: '3', v3: {{user: {V3_USER}, "
                   f"auth_key: {V3_AUTH}, priv_key: {V3_PRIV}}}}}\n")
    out = subprocess.run([sys.executable, "-m", "fieldwatch", "snmp", "walk", "core-1",
                          "1.3.6.1.2.1.1.5", "--config", str(cfg)], capture_output=True,
                         text=True, check=True, timeout=30)
    assert out.stdout == ".1.3.6.1.2.1.1.5.0 = 'fieldwatch-test'\n"
    missing = subprocess.run([sys.executable, "-m", "fieldwatch", "snmp", "walk", "core-2",
                              "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "no SNMP target with device 'core-2'" in missing.stderr


def test_cli_walk_fails_clearly_when_nobody_answers(snmpd: Snmpd) -> None:
    out = subprocess.run([sys.executable, "-m", "fieldwatch", "snmp", "walk",
                          f"127.0.0.1:{snmpd.port}", "-c", "wrong", "--timeout", "200ms",
                          "--retries", "0"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "no response from 127.0.0.1" in out.stderr


def test_ipv6_target(snmpd: Snmpd) -> None:
    (r,), _ = poll_round({"targets": [_v2c(snmpd, host="::1", profiles=["system"])]})
    assert r.error is None and values(r, "snmp.uptime_seconds")[()] > 0
