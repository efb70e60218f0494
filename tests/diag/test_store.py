"""Approvals, results and on-site marks in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fieldwatch.collector.diag.config import CollectorDiagConfig
from fieldwatch.collector.diag.dispatch import Dispatcher
from fieldwatch.collector.diag.store import DiagStore
from fieldwatch.collector.rules.loader import rules_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.tickets.alerts import TicketChange

from fieldwatch import signing, wire
from fieldwatch.errors import DiagnosticRefused
from tests.diag.helpers import keypair

RULES = """
rules:
  - name: hot
    metric: temp.celsius
    when: value > 80
    severity: P1
    ticket: {title: hot}
    diagnostics: [top_processes, restart_service]
"""


def open_ticket(store: Store, now: float) -> int:
    ch = TicketChange(kind="fire", fingerprint="fp1", rule="hot", site="plant",
                      device="pump-01", labels={}, severity="P1", title="hot", description="",
                      team=None, value=95.0, first_ts=now, last_ts=now)
    [tid] = store.write(BatchWrite(changes=[ch]), now)
    return tid


@pytest.fixture
def setup(store: Store, tmp_path, clock):  # type: ignore[no-untyped-def]
    key, _, _ = keypair(tmp_path)
    sent: list[tuple[str, bytes]] = []
    diag = DiagStore(store.engine)
    rules = RuleSet(tuple(rules_from_text(RULES)))
    d = Dispatcher(diag, key, lambda t, p: sent.append((t, p)), clock,
                   CollectorDiagConfig(timeout=30), ruleset=lambda: rules)
    return d, diag, open_ticket(store, clock.now()), sent, store


def result(req: wire.DiagRequest, status: str = "ok", **kw: object) -> bytes:
    return wire.encode_diag(wire.DiagResult(device=req.device, site=req.site, id=req.id,
                                            check=req.check, status=status, ts=req.issued,
                                            ticket=req.ticket, **kw))  # type: ignore[arg-type]


def kinds(store: Store, tid: int) -> list[str]:
    return [e["kind"] for e in store.timeline(tid)]


def test_rule_diagnostics_are_signed_and_sent_read_only_only(setup) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    d.run_for_tickets([tid])
    [(topic, payload)] = sent
    assert topic == "fieldwatch/v1/plant/pump-01/diag/req"
    req = wire.decode_diag_request(payload)
    assert (req.check, req.auto, req.ticket, req.approval) == ("top_processes", True, tid, None)
    signing.verify(req, {req.key_id: signing.public_bytes(d.key.public_key())})
    assert sorted(kinds(store, tid)) == ["diag_requested", "diag_skipped", "opened"]


def test_result_recorded_once_and_bad_results_rejected(setup) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    req = d.send("plant", "pump-01", "top_processes", ticket=tid)
    payload = result(req, output="PID 1 init", exit_code=0)
    topic = "fieldwatch/v1/plant/pump-01/diag/res"
    assert d.take_result(topic, payload)["status"] == "ok"
    assert d.take_result(topic, payload) is None  # a second listener hears it: no duplicate
    assert d.take_result("fieldwatch/v1/plant/other/diag/res", payload) is None
    assert d.take_result(topic, b"{garbage") is None
    assert d.stats.get("diag_rejected_total", "topic_mismatch") == 1
    assert d.stats.get("diag_rejected_total", "malformed") == 1
    [ev] = [e for e in store.timeline(tid) if e["kind"] == "diag_result"]
    assert ev["data"]["output"] == "PID 1 init"


def test_approval_is_single_use_and_expires(setup, clock) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    with pytest.raises(DiagnosticRefused):
        diag.approve(tid, "restart_service", " ", clock.now(), 60)
    with pytest.raises(DiagnosticRefused):
        diag.approve(tid + 99, "restart_service", "Ana", clock.now(), 60)
    diag.approve(tid, "restart_service", "Ana", clock.now(), 60, on_behalf_of="ACME")
    req = d.send("plant", "pump-01", "restart_service", {"service": "pumpd"}, ticket=tid,
                 requested_by="Ana")
    assert req.approval is not None
    assert (req.approval.by, req.approval.on_behalf_of, req.approval.ticket) == (
        "Ana", "ACME", tid)
    assert d.send("plant", "pump-01", "restart_service", ticket=tid).approval is None
    diag.approve(tid, "restart_service", "Bo", clock.now(), 60)
    clock.advance(61)
    assert d.send("plant", "pump-01", "restart_service", ticket=tid).approval is None


def test_failed_remote_action_marks_needs_onsite_with_a_checklist(setup, clock) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    diag.approve(tid, "restart_service", "Ana", clock.now(), 60)
    req = d.send("plant", "pump-01", "restart_service", {"service": "pumpd"}, ticket=tid)
    d.take_result("fieldwatch/v1/plant/pump-01/diag/res", result(req, "failed", exit_code=1,
                                                                  reason="failed"))
    mark = diag.onsite(tid)
    assert mark is not None and "restart_service failed" in mark["reason"]
    assert any("restart_service failed" in i for i in mark["checklist"])
    assert kinds(store, tid).count("needs_onsite") == 1


def test_unanswered_requests_become_no_response(setup, clock) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    d.send("plant", "pump-01", "top_processes", ticket=tid)
    d.sweep()
    assert "diag_no_response" not in kinds(store, tid)
    clock.advance(31)
    d.sweep()
    d.sweep()
    assert kinds(store, tid).count("diag_no_response") == 1
    assert diag.onsite(tid) is not None  # the device did not answer: someone must go


def test_refusals_of_requests_nobody_sent_go_on_that_devices_ticket_only(setup) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    forged = wire.DiagResult(device="pump-01", site="plant", id="x" * 32, check="ping",
                             status="refused", reason="unsigned", ts=1.8e9, ticket=tid)
    d.take_result("fieldwatch/v1/plant/pump-01/diag/res", wire.encode_diag(forged))
    other = wire.DiagResult(device="pump-02", site="plant", id="y" * 32, check="ping",
                            status="refused", reason="unsigned", ts=1.8e9, ticket=tid)
    d.take_result("fieldwatch/v1/plant/pump-02/diag/res", wire.encode_diag(other))
    refused = [e for e in store.timeline(tid) if e["kind"] == "diag_refused"]
    assert [(e["data"]["reason"], e["data"]["unsolicited"]) for e in refused] == [
        ("unsigned", True)]
    assert d.stats.get("diag_unsolicited_total") == 2


def test_api_records_an_approval(setup) -> None:  # type: ignore[no-untyped-def]
    import httpx
    from fieldwatch.collector.telemetry.stats import Stats
    from fieldwatch.collector.web.api.app import HttpServer, make_app

    from tests.e2e.procs import wait_for

    d, diag, tid, sent, store = setup
    server = HttpServer(make_app(store, Stats(), tokens=lambda: frozenset({"t0ken"})), port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, 10)
    with httpx.Client(base_url=base) as anonymous:
        assert anonymous.post(f"/api/v1/tickets/{tid}/approvals",
                              json={"action": "x"}).status_code == 401
        assert anonymous.get(f"/api/v1/tickets/{tid}/diagnostics").status_code == 401
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer t0ken"}) as http:
        r = http.post(f"/api/v1/tickets/{tid}/approvals",
                      json={"action": "restart_service", "on_behalf_of": "ACME"})
        assert r.status_code == 201
        assert "by is not taken" in http.post(f"/api/v1/tickets/{tid}/approvals", json={
            "action": "restart_service", "by": "Ana"}).json()["detail"]  # the caller approves
        assert http.post(f"/api/v1/tickets/{tid + 9}/approvals",
                         json={"action": "x"}).status_code == 404
        assert http.post(f"/api/v1/tickets/{tid}/approvals", json={"note": "n"}
                         ).status_code == 400
        got = http.get(f"/api/v1/tickets/{tid}/diagnostics").json()
    server.stop()
    assert [(a["action"], a["by"], a["on_behalf_of"]) for a in got["approvals"]] == [
        ("restart_service", "api-token", "ACME")]


def test_a_refused_request_gives_its_approval_back(setup, clock) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    diag.approve(tid, "restart_service", "Ana", clock.now(), 600)
    req = d.send("plant", "pump-01", "restart_service", {"service": "typo"}, ticket=tid)
    assert req.approval is not None
    d.take_result("fieldwatch/v1/plant/pump-01/diag/res",
                  result(req, "refused", reason="invalid_arguments"))
    again = d.send("plant", "pump-01", "restart_service", {"service": "pumpd"}, ticket=tid)
    assert again.approval is not None  # nothing ran, so the approval was still good
    d.take_result("fieldwatch/v1/plant/pump-01/diag/res", result(again, "ok", exit_code=0))
    assert d.send("plant", "pump-01", "restart_service", ticket=tid).approval is None
    assert diag.onsite(tid) is None


def test_checklist_from_inventory_metrics_history_and_results() -> None:
    from fieldwatch.collector.diag.onsite import checklist

    metrics = wire.encode(wire.Metrics(device="pump-01", site="plant", seq=3, ts=10.0, samples=[
        wire.Sample("temp.celsius", 96.5, {"sensor": "bearing"}),
        wire.Sample("mem.used_percent", 40.0)]))
    older = wire.encode(wire.Metrics(device="pump-01", site="plant", seq=2, ts=5.0, samples=[
        wire.Sample("temp.celsius", 70.0, {"sensor": "bearing"})]))
    facts = {
        "ticket": {"id": 7, "site": "plant", "device": "pump-01", "title": "Pump hot",
                   "severity": "P1", "rule": "hot"},
        "device": {"status": "offline", "status_cause": "lost", "last_seen": 10.0,
                   "inventory": {"os": "Linux", "kernel": "6.1", "cpu_model": "Cortex-A72",
                                 "ram_bytes": 4 * 2**30,
                                 "hardware": {"vendor": "ACME", "serial": "SN-42"},
                                 "disks": [{"name": "sda", "bytes": 500_000_000_000,
                                            "model": "WD Red", "serial": "WD-1"}],
                                 "nics": {"eth0": "aa:bb:cc:dd:ee:ff"}}},
        "metrics": [metrics, older, b"{garbage"],
        "history": [{"rule": "hot"}, {"rule": "hot"}, {"rule": "disk"}],
        "diagnostics": [{"check_name": "restart_service", "status": "failed",
                         "reason": "failed"},
                        {"check_name": "top_processes", "status": "ok", "reason": ""}],
        "metric": "temp.celsius",
    }
    text = "\n".join(checklist(facts))
    assert "vendor=ACME, serial=SN-42, system=Linux 6.1, cpu=Cortex-A72, ram=4.0 GiB" in text
    assert "sda (500 GB, WD Red, WD-1)" in text and "eth0 aa:bb:cc:dd:ee:ff" in text
    assert "offline (lost)" in text and "power, network" in text
    assert 'temp.celsius{sensor="bearing"} = 96.5' in text and "= 70" not in text
    assert "mem.used_percent" not in text  # another family than the rule's metric
    assert "restart_service failed" in text and "top_processes" not in text
    assert "3 earlier ticket(s)" in text and "hot ×2" in text
    assert checklist({"ticket": facts["ticket"]})[0].startswith("Go to site plant")


def test_a_result_binds_to_the_device_and_site_asked(setup) -> None:  # type: ignore[no-untyped-def]
    d, diag, tid, sent, store = setup
    req = d.send("plant", "pump-01", "top_processes", ticket=tid)
    for site, device in [("plant", "pump-02"), ("depot", "pump-01")]:
        forged = wire.DiagResult(device=device, site=site, id=req.id, check=req.check,
                                 status="ok", ts=d.clock.now(), output="forged", ticket=tid)
        assert d.take_result(wire.topic(site, device, "diag/res"),
                             wire.encode_diag(forged)) is None
        with pytest.raises(DiagnosticRefused, match="device_mismatch"):
            diag.complete(forged, 2.0)
    assert d.stats.get("diag_rejected_total", "device_mismatch") == 2
    assert [r["status"] for r in diag.requests_of(tid)] == ["sent"]
    row = d.take_result("fieldwatch/v1/plant/pump-01/diag/res", result(req, output="real"))
    assert row is not None and row["status"] == "ok"
    [ev] = [e for e in store.timeline(tid) if e["kind"] == "diag_result"]
    assert ev["data"]["output"] == "real"
