"""Real agent and collector processes over a real Mosquitto: a rule fires, its diagnostics run
on the agent, the output lands on the ticket; forged and unapproved requests are refused and the
refusals are on the agent's audit log and on the ticket."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.diag.store import DiagStore
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch import signing, wire
from tests.diag.helpers import keypair, request
from tests.e2e.procs import FIELDWATCH, Proc, wait_for, write_yaml
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e

RULE = """
rules:
  - name: pump_hot
    metric: pump.temp_celsius
    when: value > 80
    severity: P1
    ticket: {title: "Pump {device} at {value:.0f} C"}
    diagnostics: [disk_usage, log_tail, restart_service]
"""


def start(tmp: Path, port: int, key: Path, pub: Path,
          diag: dict[str, Any]) -> tuple[Proc, Proc, str]:
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "pump.yaml").write_text(RULE)
    ccfg = write_yaml(tmp / "collector.yaml", {
        "broker": {"host": "127.0.0.1", "port": port}, "client_id": "fw-test-collector",
        "rules": [str(rules)], "db": f"sqlite:///{tmp / 'fieldwatch.db'}", "batch_wait": "10ms",
        "diag": {"private_key": str(key), "timeout": "20s"}})
    collector = Proc(["collector", "run", "--config", str(ccfg), "--http-port", "0"],
                     tmp / "collector.log")
    base = collector.wait_output(r"HTTP API on (http://\S+)/").group(1)
    wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], 10)
    textfile = tmp / "textfile"
    textfile.mkdir()
    (textfile / "pump.metrics").write_text("pump.temp_celsius 40\n")
    acfg = write_yaml(tmp / "agent.yaml", {
        "device": "pump-01", "site": "plant", "interval": "200ms",
        "broker": {"host": "127.0.0.1", "port": port}, "state_dir": str(tmp / "agent-state"),
        "sources": {"cpu": {"enabled": False}, "load": {"enabled": False},
                    "memory": {"enabled": False}, "disks": {"enabled": False},
                    "net": {"enabled": False},
                    "textfile": {"enabled": True, "dir": str(textfile)}},
        "diag": {"trusted_keys": [str(pub)], **diag}})
    agent = Proc(["agent", "run", "--config", str(acfg)], tmp / "agent.log")
    return collector, agent, base


def events(store: Store, ticket: int, kind: str) -> list[dict[str, Any]]:
    return [e for e in store.timeline(ticket) if e["kind"] == kind]


def forged_refusals(store: Store, ticket: int) -> list[dict[str, Any]]:
    """Refusals of requests the collector did not send (the test's forgeries)."""
    return [e for e in events(store, ticket, "diag_refused") if e["data"]["unsolicited"]]


def test_rule_fires_diagnostics_run_on_the_agent_and_land_on_the_ticket(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    _, key, pub = keypair(tmp_path)
    data = tmp_path / "data"
    (data / "cache").mkdir(parents=True)
    (data / "cache" / "blob").write_bytes(b"x" * 300_000)
    applog = tmp_path / "pump.log"
    applog.write_text("started\nbearing temperature rising\n")
    collector, agent, base = start(tmp_path, mosquitto.port, key, pub, {
        "roots": [str(data)], "logs": {"pump": str(applog)},
        "defaults": {"log_tail": {"log": "pump", "lines": 5}}, "services": ["pumpd"],
        "policy": {"changing": "ask"}})
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    try:
        wait_for(store.list_devices)
        (tmp_path / "textfile" / "pump.metrics").write_text("pump.temp_celsius 95\n")
        [ticket] = wait_for(store.list_tickets)
        tid = ticket["id"]
        results = wait_for(lambda: len(events(store, tid, "diag_result")) == 2
                           and events(store, tid, "diag_result"), 20)
        by_check = {e["data"]["check"]: e for e in results}
        assert by_check["disk_usage"]["data"]["status"] == "ok"
        assert "cache" in by_check["disk_usage"]["data"]["output"]
        assert by_check["log_tail"]["data"]["output"] == ("started\nbearing temperature "
                                                          "rising\n")
        # the changing one named by the rule was not sent automatically, and the ticket says so
        [skipped] = events(store, tid, "diag_skipped")
        assert "restart_service" in skipped["reason"]
        requested = events(store, tid, "diag_requested")
        assert sorted(e["data"]["check"] for e in requested) == ["disk_usage", "log_tail"]
        assert all(e["actor"] == "rule:pump_hot" for e in requested)
        audit = [json.loads(x) for x in
                 (tmp_path / "agent-state" / "diag-audit.jsonl").read_text().splitlines()]
        assert sorted((a["check"], a["status"], a["auto"]) for a in audit) == [
            ("disk_usage", "ok", True), ("log_tail", "ok", True)]
    finally:
        assert agent.stop() == 0
        assert collector.stop() == 0
        store.engine.dispose()


def test_forged_replayed_and_unapproved_requests_are_refused_and_audited_on_both_sides(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    key, key_path, pub = keypair(tmp_path)
    wrong, _, _ = keypair(tmp_path, "attacker")
    marker = tmp_path / "flushed"
    collector, agent, base = start(tmp_path, mosquitto.port, key_path, pub, {
        "policy": {"changing": "ask", "checks": {"top_processes": "never"}},
        "commands": {"flush": {"argv": ["/usr/bin/touch", str(marker)]}}})
    db = f"sqlite:///{tmp_path / 'fieldwatch.db'}"
    store = Store(open_engine(db, create=False))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="intruder")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    topic = wire.topic("plant", "pump-01", "diag/req")
    try:
        wait_for(store.list_devices)
        (tmp_path / "textfile" / "pump.metrics").write_text("pump.temp_celsius 95\n")
        [ticket] = wait_for(store.list_tickets)
        tid = ticket["id"]
        now = time.time()
        good = request("dns_lookup", now, key, ticket=tid, args={"name": "localhost"})
        forged = {
            "unsigned": request("dns_lookup", now, None, ticket=tid, args={"name": "x"}),
            "unknown_key": request("dns_lookup", now, wrong, ticket=tid, args={"name": "x"}),
            "bad_signature": msgspec.structs.replace(good, id=uuid.uuid4().hex,
                                                     args={"name": "evil"}),
            "expired": request("dns_lookup", now - 3600, key, ticket=tid),
            "not_allowed": request("top_processes", now, key, ticket=tid),
            "approval_required": request("flush", now, key, ticket=tid),
            "invalid_arguments": request("dns_lookup", now, key, ticket=tid,
                                         args={"name": "8.8.8.8; rm -rf /"}),
        }
        for req in [good, *forged.values()]:
            client.publish(topic, wire.encode_diag(req), qos=1).wait_for_publish(5)
        wait_for(lambda: len(forged_refusals(store, tid)) == len(forged), 20)
        client.publish(topic, wire.encode_diag(good), qos=1).wait_for_publish(5)  # replay
        refused = wait_for(lambda: len(forged_refusals(store, tid)) == len(forged) + 1
                           and forged_refusals(store, tid), 20)
        reasons = sorted(e["data"]["reason"] for e in refused)
        assert reasons == sorted([*forged, "replayed"])
        audit = [json.loads(x) for x in
                 (tmp_path / "agent-state" / "diag-audit.jsonl").read_text().splitlines()]
        assert sorted(a["reason"] for a in audit if a["status"] == "refused"
                      and a["requested_by"] == "test") == reasons
        assert not marker.exists()
        # with an approval recorded on the ticket the collector's signed request runs it
        diag = DiagStore(store.engine)
        diag.approve(tid, "flush", "Ana", time.time(), 3600, on_behalf_of="ACME plant manager")
        from fieldwatch.collector.diag.config import CollectorDiagConfig
        from fieldwatch.collector.diag.dispatch import Dispatcher

        from fieldwatch.clock import SystemClock
        d = Dispatcher(diag, signing.load_private(key_path),
                       lambda t, p: client.publish(t, p, qos=1), SystemClock(),
                       CollectorDiagConfig())
        d.send("plant", "pump-01", "flush", ticket=tid, requested_by="Ana")
        wait_for(marker.exists, 20)
        wait_for(lambda: [e for e in events(store, tid, "diag_result")
                          if e["data"]["check"] == "flush"], 20)
        [ap] = events(store, tid, "approval")
        assert ap["data"]["on_behalf_of"] == "ACME plant manager"
        last = json.loads((tmp_path / "agent-state" / "diag-audit.jsonl").read_text()
                          .splitlines()[-1])
        assert last["check"] == "flush" and last["approval"]["by"] == "Ana"
    finally:
        client.loop_stop()
        client.disconnect()
        assert agent.stop() == 0
        assert collector.stop() == 0
        store.engine.dispose()


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FIELDWATCH, *args], capture_output=True, text=True, timeout=timeout)


def test_cli_list_run_approve_timeout_cap_and_onsite(tmp_path: Path,
                                                     mosquitto: Mosquitto) -> None:
    _, key, pub = keypair(tmp_path)
    marker = tmp_path / "restarted"
    collector, agent, base = start(tmp_path, mosquitto.port, key, pub, {
        "policy": {"changing": "ask"}, "max_output": 65536,
        "commands": {
            "reset_pump": {"argv": ["/usr/bin/touch", str(marker)],
                           "description": "reset the pump controller"},
            "hang": {"argv": ["/bin/sleep", "60"], "changing": False, "timeout": "500ms"},
            "flood": {"argv": ["/usr/bin/head", "-c", "100000000", "/dev/zero"],
                      "changing": False, "timeout": "60s"}}})
    ccfg = str(tmp_path / "collector.yaml")
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    try:
        wait_for(store.list_devices)
        (tmp_path / "textfile" / "pump.metrics").write_text("pump.temp_celsius 95\n")
        [ticket] = wait_for(store.list_tickets)
        tid = str(ticket["id"])
        listed = cli("diag", "list", "pump-01", "--config", ccfg, "--json")
        assert listed.returncode == 0, listed.stderr
        offered = {c["name"]: (c["class"], c["policy"]) for c in json.loads(listed.stdout)}
        assert offered["reset_pump"] == ("changing", "ask")
        assert offered["tcp_port"] == ("read_only", "auto")
        with socket.create_server(("127.0.0.1", 0)) as srv:
            port = srv.getsockname()[1]
            ran = cli("diag", "run", "plant/pump-01", "tcp_port", "host=127.0.0.1",
                      f"port={port}", "--config", ccfg, "--ticket", tid, "--by", "Ana")
        assert ran.returncode == 0 and "open" in ran.stdout, ran.stderr
        hang = cli("diag", "run", "pump-01", "hang", "--config", ccfg, "--ticket", tid,
                   "--json")
        assert json.loads(hang.stdout)["status"] == "timeout"
        flood = json.loads(cli("diag", "run", "pump-01", "flood", "--config", ccfg,
                               "--ticket", tid, "--json").stdout)
        assert flood["truncated"] and flood["output_bytes"] == 100_000_000
        assert len(flood["output"]) == 65536
        # a changing action: refused without approval, runs once approved (single use)
        denied = cli("diag", "run", "pump-01", "reset_pump", "--config", ccfg, "--ticket", tid)
        assert denied.returncode == 1 and "approval_required" in denied.stderr
        ok = cli("tickets", "approve", tid, "reset_pump", "--by", "Ana",
                 "--on-behalf-of", "ACME plant manager", "--db", str(tmp_path / "fieldwatch.db"))
        assert ok.returncode == 0, ok.stderr
        done = cli("diag", "run", "pump-01", "reset_pump", "--config", ccfg, "--ticket", tid,
                   "--by", "Ana")
        assert done.returncode == 0, done.stderr
        assert marker.exists()
        kinds = [e["kind"] for e in store.timeline(int(tid))]
        assert kinds.count("approval") == 1 and "diag_refused" in kinds
        statuses = sorted(e["data"]["status"] for e in events(store, int(tid), "diag_result"))
        assert statuses.count("timeout") == 1 and statuses.count("ok") >= 3
        visit = cli("diag", "onsite", tid, "--by", "Ana", "--config", ccfg, "--json")
        assert visit.returncode == 0, visit.stderr
        items = json.loads(visit.stdout)[0]["checklist"]
        assert any("pump-01" in i for i in items)
        assert any("hang timeout" in i for i in items)
        assert any("pump.temp_celsius = 95" in i for i in items), items
        [mark] = events(store, int(tid), "needs_onsite")
        assert mark["data"]["checklist"] == items
        shown = cli("diag", "show", tid, "--db", str(tmp_path / "fieldwatch.db"))
        assert "== tcp_port" in shown.stdout and "open (connected" in shown.stdout
        assert "cut at the cap: 100000000 bytes" in shown.stdout
        assert "needs on-site work" in shown.stdout
    finally:
        assert agent.stop() == 0
        assert collector.stop() == 0
        store.engine.dispose()


def test_fieldwatch_up_creates_a_key_and_diag_run_works_next_to_it(tmp_path: Path) -> None:
    import signal

    data = tmp_path / "data"
    up = Proc(["up", "--data", str(data), "--mqtt-port", "0", "--http-port", "0"],
              tmp_path / "up.log")
    try:
        port = up.wait_output(r"embedded MQTT broker on 127\.0\.0\.1:(\d+)").group(1)
        up.wait_output(r"web page and API on")
        store = DiagStore(open_engine(f"sqlite:///{data / 'fieldwatch.db'}", create=False))
        [device] = wait_for(lambda: _devices(store), timeout=30, every=0.2)
        store.engine.dispose()
        out = cli("diag", "run", device, "top_processes", "n=3", "--data", str(data),
                  "--mqtt-port", port, "--json", "--config", str(tmp_path / "none.yaml"))
        assert out.returncode == 2  # an explicit config that does not exist is an error
        assert (data / "mqtt-port").read_text().strip() == port
        # no --mqtt-port: the CLI finds the free port `up` picked in its data directory
        out = cli("diag", "run", device, "top_processes", "n=3", "--data", str(data), "--json")
        assert out.returncode == 0, out.stderr
        assert "by CPU" in json.loads(out.stdout)["output"]
        assert (data / "keys" / "diag-collector.key").stat().st_mode & 0o077 == 0
    finally:
        assert up.stop(signal.SIGINT, timeout=10) == 0, up.log.read_text()[-2000:]


def _devices(store: DiagStore) -> list[str]:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("select device from devices"))]
