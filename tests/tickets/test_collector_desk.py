"""The collector process serves the desk API with token auth and runs the SLA tick: an alert
over real Mosquitto opens a ticket, the API shows it, and an escalation reaches a webhook."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.service import Ticker
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from tests.e2e.procs import Proc, wait_for, write_yaml
from tests.servers import Mosquitto
from tests.tickets.helpers import desk_policy
from tests.tickets.test_notifier import Hook

pytestmark = pytest.mark.e2e

RULE = """
rules:
  - {name: pump_hot, metric: pump.temp_celsius, when: value > 80, severity: P1,
     ticket: {title: "Pump {device} at {value:.0f} C", team: field}}
"""
SLA = """
priorities:
  P1: {respond: 2s, resolve: 1h}
  P2: {respond: 2h, resolve: 8h}
  P3: {respond: 8h, resolve: 40h}
escalation:
  - {name: response_80, clock: response, at: 80%, notify: team}
"""


def test_collector_api_and_escalation_webhook(tmp_path: Path, mosquitto: Mosquitto) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "pump.yaml").write_text(RULE)
    (tmp_path / "sla.yaml").write_text(SLA)
    (tmp_path / "teams.yaml").write_text(
        "teams: {field: {lead: ann, members: [{name: ann}, {name: ben}]}}\n")
    hook = Hook()
    cfg = write_yaml(tmp_path / "collector.yaml", {
        "broker": {"host": "127.0.0.1", "port": mosquitto.port}, "client_id": "fw-desk-test",
        "rules": [str(tmp_path / "rules")], "db": f"sqlite:///{tmp_path / 'fw.db'}",
        "batch_wait": "10ms",
        "desk": {"sla": str(tmp_path / "sla.yaml"), "teams": str(tmp_path / "teams.yaml"),
                 "tick": "200ms", "webhook": hook.url, "api_token_env": "FW_TEST_API_TOKEN"}})
    proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                tmp_path / "collector.log", env={"FW_TEST_API_TOKEN": "tok"})
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="desk-test-pub")
    try:
        base = proc.wait_output(r"HTTP API on (http://\S+)/").group(1)
        with httpx.Client(base_url=base, timeout=5) as http:
            wait_for(lambda: http.get("/healthz").json()["mqtt_connected"], 10)
            client.connect("127.0.0.1", mosquitto.port)
            client.loop_start()
            msg = wire.Metrics(device="pump-01", site="plant", seq=1, ts=time.time(),
                               samples=[wire.Sample("pump.temp_celsius", 95.0)])
            client.publish(wire.topic("plant", "pump-01", "metrics"), wire.encode(msg),
                           qos=1).wait_for_publish(5)
            assert http.get("/api/v1/tickets").status_code == 401
            auth = {"Authorization": "Bearer tok"}
            [t] = wait_for(lambda: http.get("/api/v1/tickets", headers=auth).json())
            assert (t["rule"], t["team"], t["assignee"]) == ("pump_hot", "field", "ann")
            wait_for(lambda: hook.bodies, timeout=15)
            assert hook.bodies[0]["step"] == "response_80"
            assert hook.bodies[0]["recipients"] == ["ann", "ben"]
            shown = wait_for(lambda: [e for e in http.get(
                f"/api/v1/tickets/{t['id']}", headers=auth).json()["timeline"]
                if e["kind"] == "notified"])
            assert shown[0]["actor"] == "system"
    finally:
        client.loop_stop()
        client.disconnect()
        code = proc.stop()
        hook.close()
    assert code == 0, proc.log.read_text()


def test_a_failing_tick_is_counted_not_fatal(tmp_path: Path) -> None:
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"), desk_policy())
    desk = ServiceDesk(store, FakeClock())
    stats = Stats()
    ticker = Ticker(desk, stats, every=0.01)
    try:
        desk.create(device="d", title="t", priority="P1", actor="x")
        desk.clock.advance(3600)  # type: ignore[attr-defined]
        ticker.run_once()
        assert stats.get("sla_escalations_total") == 2  # response 80 % and breach
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE ticket_escalations")
        ticker.start()
        wait_for(lambda: stats.get("desk_tick_errors_total") >= 1, 5)
    finally:
        ticker.stop()
        store.engine.dispose()
