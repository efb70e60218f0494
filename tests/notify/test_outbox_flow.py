"""Notifications through the real outbox and store: once per change, retried while a service
is down, partial sends never repeated, every send on the ticket's timeline — and a P1 nobody
acknowledges walks the escalation chain to the next person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.desks.config import RetryPolicy
from fieldwatch.collector.desks.outbox import Queue, Worker, register_desks
from fieldwatch.collector.notify.apprise_channel import StoreJournal
from fieldwatch.collector.notify.runtime import build_channels
from fieldwatch.collector.service import Collector
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.alerts import TicketChange
from fieldwatch.collector.tickets.config import DeskPolicy
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from fieldwatch.clock import FakeClock
from fieldwatch.errors import ConfigError
from tests.notify.helpers import ALEX_WEEK, TEAMS, berlin, notifications, teams
from tests.notify.receivers import Receiver, Req
from tests.tickets.helpers import sla_policy

SLA = """
priorities:
  P1: {respond: 15m, resolve: 4h}
  P2: {respond: 2h, resolve: 8h}
  P3: {respond: 8h, resolve: 40h}
escalation:
  - {name: p1_next, clock: response, at: 50%, notify: next, priorities: [P1]}
  - {name: p1_lead, clock: response, at: 100%, notify: lead, priorities: [P1]}
"""


def config(port: int, notify: str = "") -> str:
    return f"""
channels:
  - name: sms
    url: "smseagle://tok3n@127.0.0.1:{port}/{{to}}"
    contact: phone
routes:
  - match: {{severity: [P1], actions: [open, reopen, escalate]}}
    {notify}
    channels: [sms]
"""


class Phones:
    """An SMSEagle gateway: keeps (number, text); numbers in `down` get 503."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.down: set[str] = set()

    def __call__(self, req: Req) -> tuple[int, Any]:
        p = req.json["params"]
        if p["to"] in self.down:
            return 503, {"error": "modem busy"}
        self.texts.append((p["to"], p["message"]))
        return 200, {"result": {"message_id": len(self.texts), "status": "ok"}}

    def to(self) -> list[str]:
        return [n for n, _ in self.texts]


ALEX, BO, DANA = "+4917000001", "+8613800000002", "+4917000004"


@pytest.fixture
def phones() -> Iterator[tuple[Phones, Receiver]]:
    p = Phones()
    r = Receiver(p).start()
    yield p, r
    r.stop()


class Rig:
    def __init__(self, url: str, port: int, at: float, notify: str = "",
                 teams_text: str = TEAMS) -> None:
        self.clock = FakeClock(at)
        self.teams = teams(teams_text)
        self.store = Store(open_engine(url), DeskPolicy(sla=sla_policy(SLA), teams=self.teams))
        self.stats = Stats()
        cfg = notifications(config(port, notify))
        channels = build_channels(cfg, self.teams, StoreJournal(self.store), self.clock,
                                  self.stats)
        register_desks(self.store.engine, "fieldwatch", channels.registrations, 0.0)
        self.worker = Worker(self.store.engine, channels.desks, self.clock,
                             RetryPolicy(base=1.0, jitter=0.0), self.stats, concurrency=1,
                             rand=lambda: 0.0)
        self.desk = ServiceDesk(self.store, self.clock)

    def open_p1(self, fp: str = "pump") -> int:
        now = self.clock.now()
        (tid,) = self.store.write(BatchWrite(changes=[TicketChange(
            kind="fire", fingerprint=fp, rule="pump_hot", site="plant-north",
            device="pump-01", labels={}, severity="P1", title="Pump hot",
            description="bearing hot", team="hardware", value=93.5, first_ts=now,
            last_ts=now)]), now)
        return tid

    def deliver(self) -> int:
        return self.worker.run_once("sms")

    def timeline(self, tid: int) -> list[tuple[str, Any]]:
        return [(e["kind"], e["data"].get("to")) for e in self.store.timeline(tid)
                if e["kind"].startswith("notification")]

    def close(self) -> None:
        self.worker._pool.shutdown()  # never started: no threads to stop
        self.store.engine.dispose()


@pytest.fixture
def rig(db_url_any: str, phones: tuple[Phones, Receiver]) -> Iterator[Rig]:
    r = Rig(db_url_any, phones[1].port, berlin(2026, 3, 10, 22))  # alex's week, at night
    yield r
    r.close()


def test_once_per_change_retried_while_the_gateway_is_down(
        rig: Rig, phones: tuple[Phones, Receiver]) -> None:
    box, gateway = phones
    gateway.status = 503
    tid = rig.open_p1()
    assert rig.deliver() == 1
    assert box.texts == [] and rig.timeline(tid) == []
    (row,) = Queue(rig.store.engine).list("pending")
    assert row["attempts"] == 1 and "error=503" in row["last_error"]
    gateway.status = None
    assert rig.deliver() == 0  # backoff: not due yet
    rig.clock.advance(1.5)
    assert rig.deliver() == 1
    rig.clock.advance(3600)
    assert rig.deliver() == 0
    assert box.to() == [ALEX]
    assert "New ticket: Pump hot" in box.texts[0][1]
    assert rig.timeline(tid) == [("notification_sent", "alex")]
    assert rig.stats.get("notify_sent_total", "sms") == 1


def test_a_partial_send_is_finished_without_repeats(
        db_url_any: str, phones: tuple[Phones, Receiver]) -> None:
    """alex's text goes, dana's gateway slot is busy: the retry sends dana's only."""
    box, gateway = phones
    rig = Rig(db_url_any, gateway.port, berlin(2026, 3, 10, 22), "notify: [oncall, lead]")
    try:
        box.down = {DANA}
        tid = rig.open_p1()
        rig.deliver()
        assert box.to() == [ALEX]
        assert Queue(rig.store.engine).list("pending")[0]["unclear"]  # look before resending
        box.down = set()
        rig.clock.advance(2)
        rig.deliver()
        assert box.to() == [ALEX, DANA]
        assert rig.timeline(tid) == [("notification_sent", "alex"),
                                     ("notification_sent", "dana")]
    finally:
        rig.close()


def test_unanswered_p1_walks_the_escalation_chain(rig: Rig,
                                                  phones: tuple[Phones, Receiver]) -> None:
    box, _ = phones
    tid = rig.open_p1()
    rig.deliver()
    assert box.to() == [ALEX]  # on call this week
    rig.clock.advance(7 * 60)
    assert rig.desk.tick().escalated == []
    rig.clock.advance(60 + 30)  # 8.5 min: half the 15-minute response target
    assert rig.desk.tick().escalated == [(tid, "p1_next")]
    rig.deliver()
    assert box.to() == [ALEX, BO]  # the next person in the rotation
    assert "升级" in box.texts[-1][1]  # bo reads Chinese
    rig.clock.advance(7 * 60)  # 15.5 min: the response target passed
    assert rig.desk.tick().escalated == [(tid, "p1_lead")]
    rig.deliver()
    assert box.to() == [ALEX, BO, DANA]
    rig.clock.advance(3600)
    assert rig.desk.tick().escalated == []
    rig.deliver()
    assert box.to() == [ALEX, BO, DANA]  # each step once
    esc = [e["data"]["recipients"] for e in rig.store.timeline(tid)
           if e["kind"] == "sla_escalation"]
    assert esc == [["bo"], ["dana"]]
    assert rig.timeline(tid) == [("notification_sent", "alex"), ("notification_sent", "bo"),
                                 ("notification_sent", "dana")]


def test_acknowledged_p1_pages_nobody_else(rig: Rig, phones: tuple[Phones, Receiver]) -> None:
    box, _ = phones
    tid = rig.open_p1()
    rig.deliver()
    rig.clock.advance(5 * 60)
    rig.desk.act(tid, "ack", "alex")
    rig.clock.advance(3600)
    assert rig.desk.tick().escalated == []
    rig.deliver()
    assert box.to() == [ALEX]


def test_the_next_person_follows_an_override(db_url_any: str,
                                             phones: tuple[Phones, Receiver]) -> None:
    """cy covers alex's Tuesday night: cy is paged first, alex is next."""
    box, gateway = phones
    text = TEAMS.replace("      start: 2026-01-05", """      start: 2026-01-05
      overrides: [{from: "2026-03-10 20:00", until: "2026-03-11 08:00", who: cy}]""")
    rig = Rig(db_url_any, gateway.port, berlin(2026, 3, 10, 22), teams_text=text)
    try:
        rig.open_p1()
        rig.deliver()
        rig.clock.advance(8.5 * 60)
        rig.desk.tick()
        rig.deliver()
        assert box.to() == ["+4917000003", ALEX]
    finally:
        rig.close()


# -- wiring -----------------------------------------------------------------------------------

def test_the_collector_runs_channels_as_outbox_desks(tmp_path: Path) -> None:
    (tmp_path / "teams.yaml").write_text(TEAMS)
    (tmp_path / "rules").mkdir()
    raw = yaml.safe_load(config(9))
    cfg = CollectorConfig.model_validate({
        "db": f"sqlite:///{tmp_path / 'fw.db'}", "rules": [str(tmp_path / "rules")],
        "desk": {"teams": str(tmp_path / "teams.yaml")}, "notifications": raw})
    c = Collector(cfg, FakeClock(ALEX_WEEK))
    try:
        assert set(c.desks.worker.desks) == {"sms"}
    finally:
        c.http.close()
        c.store.engine.dispose()


def test_a_channel_named_like_a_desk_refuses_to_start(tmp_path: Path) -> None:
    cfg = notifications(config(9))
    with pytest.raises(ConfigError, match="sms: an integrations target has this name"):
        build_channels(cfg, teams(), StoreJournal(None), FakeClock(), Stats(), taken=["sms"])


def test_a_route_naming_a_stranger_refuses_to_start() -> None:
    cfg = notifications(config(9, "notify: [zed]"))
    with pytest.raises(ConfigError, match="nobody of that name"):
        build_channels(cfg, teams(), StoreJournal(None), FakeClock(), Stats())
