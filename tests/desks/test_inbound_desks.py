"""Issue 16, per desk kind (Jira, Zammad, PagerDuty, GLPI, ServiceNow): a person's change in the
desk comes back as that desk's own webhook, in its documented shape and signature scheme, and
changes the fieldwatch ticket — once, never echoed back to that desk; a bad signature is
refused and audited; a replay changes nothing; an acknowledgment in the desk stops the
escalation; a change whose webhook was lost arrives by the reconcile."""

from __future__ import annotations

from typing import Any

import pytest
from fieldwatch.collector.desks.inbound.reconcile import reconcile_once
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from tests.desks.inbound_kits import KINDS, Said
from tests.desks.inbound_rig import Rig

ACTOR = {"jira": "Ines Engineer", "zammad": "ines@example.com", "pagerduty": "Ines Engineer",
         "glpi": "unknown", "servicenow": "ines.engineer"}
ASSIGNEE = {**dict.fromkeys(KINDS, "Ines Engineer"), "zammad": "ines@example.com"}
NOTE = "Bearing noise confirmed on site."


def events(rig: Rig, tid: int, kind: str | None = None) -> list[dict[str, Any]]:
    return [e for e in rig.store.timeline(tid) if kind is None or e["kind"] == kind]


@pytest.mark.parametrize("kind", KINDS)
def test_a_signed_change_in_the_desk_changes_the_ticket_and_is_not_echoed(
        rig_factory: Any, kind: str) -> None:
    rig: Rig = rig_factory(kind)
    tid, ext = rig.open_ticket()
    rig.clock.advance(60)
    r = rig.said(ext, "ack")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "applied": 1}
    t = rig.ticket(tid)
    assert t["state"] == "acknowledged" and t["acknowledged_at"] == rig.clock.now()
    [ack] = events(rig, tid, "acknowledged")
    assert ack["actor"] == f"{kind}:{ACTOR[kind]}"
    assert ack["data"]["origin"] == kind

    rig.clock.advance(60)
    assert rig.said(ext, "assign").json()["applied"] == 1
    assert rig.ticket(tid)["assignee"] == ASSIGNEE[kind]
    rig.clock.advance(60)
    assert rig.said(ext, "comment").json()["applied"] == 1
    [note] = events(rig, tid, "comment")
    assert NOTE in note["reason"]
    rig.clock.advance(60)
    assert rig.said(ext, "resolve").json()["applied"] == 1
    t = rig.ticket(tid)
    assert t["state"] == "resolved" and t["resolution"]["cause"] == f"resolved in {kind}"
    rig.clock.advance(600)
    assert rig.said(ext, "reopen").json()["applied"] == 1
    assert rig.ticket(tid)["state"] in OPEN_STATES and rig.ticket(tid)["reopen_count"] == 1

    # no ping-pong: what came from the desk went to the other desk only
    rows = rig.outbox_rows(tid)
    back = [r for r in rows if (r["payload"]["event"]["data"] or {}).get("origin") == kind]
    assert {r["desk"] for r in back} == {"other"}
    assert {r["action"] for r in back} >= {"acknowledge", "update", "resolve", "reopen"}
    assert [r["action"] for r in rows if r["desk"] == kind] == ["open"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_signature_is_refused_and_audited(rig_factory: Any, kind: str) -> None:
    rig: Rig = rig_factory(kind)
    tid, ext = rig.open_ticket()
    rig.clock.advance(60)
    headers, body = rig.kit.webhook(ext, Said("resolve"), rig.clock.now(), secret="guessed")
    r = rig.post(headers, body)
    assert r.status_code == 401 and "signature" in r.json()["detail"]
    good, body = rig.kit.webhook(ext, Said("resolve"), rig.clock.now())
    refused = 2
    if kind != "servicenow":  # ServiceNow signs nothing: its token names the sender only
        assert rig.post(good, body.replace(b"{", b"{ ", 1)).status_code == 401  # altered
        refused += 1
    unsigned = {k: v for k, v in good.items() if k.lower() not in (
        "x-hub-signature", "x-pagerduty-signature", "x-glpi-signature", "authorization")}
    assert rig.post(unsigned, body).status_code == 401
    assert rig.ticket(tid)["state"] == "open"
    assert [(a["desk"], a["reason"], a["status"]) for a in rig.refusals()] == [
        (kind, "signature", 401)] * refused
    assert rig.stats.get("inbound_refused_total", f"{kind}:signature") == refused
    assert rig.post(good, body).status_code == 200  # the genuine one still works
    assert rig.ticket(tid)["state"] == "resolved"


@pytest.mark.parametrize("kind", KINDS)
def test_a_replay_changes_nothing(rig_factory: Any, kind: str) -> None:
    rig: Rig = rig_factory(kind)
    tid, ext = rig.open_ticket()
    rig.clock.advance(60)
    ack = rig.kit.webhook(ext, Said("ack"), rig.clock.now())
    assert rig.post(*ack).json()["applied"] == 1
    rig.clock.advance(60)
    note = rig.kit.webhook(ext, Said("comment"), rig.clock.now())
    assert rig.post(*note).json()["applied"] == 1
    before = rig.store.timeline(tid)
    rig.clock.advance(3600)
    for request in (note, ack, note):
        r = rig.post(*request)
        assert r.status_code == 200 and r.json() == {"status": "replay"}
    assert rig.store.timeline(tid) == before
    assert rig.stats.get("inbound_replays_total", kind) == 3
    assert len(events(rig, tid, "comment")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_ack_in_the_desk_stops_the_escalation(rig_factory: Any, kind: str) -> None:
    rig: Rig = rig_factory(kind)
    desk = ServiceDesk(rig.store, rig.clock)  # the shipped SLA: P1 responds in 15 min
    acked, ext = rig.open_ticket("a")
    ignored, _ = rig.open_ticket("b")
    rig.clock.advance(5 * 60)
    assert rig.said(ext, "ack").json()["applied"] == 1
    rig.clock.advance(11 * 60)  # 16 min after opening: response_80 and the breach are due
    fired = desk.tick().escalated
    assert (ignored, "response_80") in fired and (ignored, "response_breach") in fired
    assert not [step for tid, step in fired if tid == acked]
    assert events(rig, acked, "sla_escalation") == []


@pytest.mark.parametrize("kind", KINDS)
def test_reconcile_brings_a_change_whose_webhook_was_lost(rig_factory: Any, kind: str) -> None:
    rig: Rig = rig_factory(kind)
    tid, ext = rig.open_ticket()
    target = rig.target()
    assert reconcile_once(rig.store, "fieldwatch", target, rig.clock, rig.stats) == {
        "nothing": 1}
    rig.clock.advance(60)
    rig.kit.change(rig.kit.emulator, ext, Said("ack"))  # the webhook never came
    assert reconcile_once(rig.store, "fieldwatch", target, rig.clock, rig.stats) == {
        "applied": 1}
    assert rig.ticket(tid)["state"] == "acknowledged"
    [ack] = events(rig, tid, "acknowledged")
    assert ack["actor"].startswith(f"{kind}:") and ack["data"]["origin"] == kind
    assert ack["data"]["desk_event"] == "reconcile"
    assert reconcile_once(rig.store, "fieldwatch", target, rig.clock, rig.stats) == {
        "nothing": 1}  # read again: no edge, nothing
    rig.clock.advance(60)
    rig.kit.change(rig.kit.emulator, ext, Said("resolve"))
    reconcile_once(rig.store, "fieldwatch", target, rig.clock, rig.stats)
    assert rig.ticket(tid)["state"] == "resolved"
    assert rig.stats.get("inbound_changes_total", f"{kind}:applied") == 2


def test_reconcile_moves_past_tickets_it_cannot_read(rig_factory: Any) -> None:
    rig: Rig = rig_factory("jira", reconcile_batch=1)
    gone, gone_key = rig.open_ticket("a")
    tid, ext = rig.open_ticket("b")
    del rig.kit.emulator.issues[gone_key]  # deleted in Jira: 404
    rig.kit.change(rig.kit.emulator, ext, Said("ack"))
    target = rig.target()
    rig.clock.advance(1)
    assert reconcile_once(rig.store, "fieldwatch", target, rig.clock, rig.stats) == {"error": 1}
    assert reconcile_once(rig.store, "fieldwatch", target, rig.clock, rig.stats) == {
        "applied": 1}
    assert rig.ticket(tid)["state"] == "acknowledged" and rig.ticket(gone)["state"] == "open"
    assert rig.stats.get("inbound_reconcile_errors_total", "jira") == 1
