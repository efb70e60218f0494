"""Rows already holding absurd values (a ticket opened at ts 1e300, a last value of infinity —
stored before the wire decoder checked ranges) must not break the ticket list API, `tickets
list`, or the desk's escalation tick for every other ticket. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fieldwatch.collector.pipeline import prepare
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import ruleset_from_text
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.schema import tickets
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web.api.app import HttpServer, make_app

from fieldwatch.cli import main
from fieldwatch.clock import FakeClock
from fieldwatch.jsonout import iso
from tests.e2e.procs import wait_for
from tests.store.helpers import metrics
from tests.tickets.helpers import berlin, desk_policy

NOW = berlin(2027, 1, 4, 12)  # a Monday, within business hours
WARM = """
rules:
  - {name: warm, metric: temp, when: value > 80, severity: P2, ticket: {title: "{device} warm"}}
"""


@pytest.fixture
def desk(db_url_any: str, tmp_path: Path) -> Iterator[ServiceDesk]:
    """A desk with one sane P1 ticket, past its response target, and one opened by a message
    stamped 1e300 (P2: a business-hours calendar has to place that instant in a day)."""
    store = Store(open_engine(db_url_any), desk_policy())
    desk = ServiceDesk(store, FakeClock(NOW - 3600))
    desk.create(device="sane", site="s", title="sane fault", priority="P1", actor="ops")
    engine = Engine(ruleset_from_text(WARM, "warm.yaml"))
    store.write(prepare([metrics("absurd", 1, ts=1e300, value=95.0)], engine, EngineState()),
                NOW)
    with store.engine.begin() as conn:
        conn.execute(tickets.update().where(tickets.c.device == "absurd").values(
            last_value=math.inf))
    desk.clock.t = NOW  # type: ignore[attr-defined]
    yield desk
    store.engine.dispose()


def _absurd(rows: list[dict]) -> dict:
    return next(t for t in rows if t["device"] == "absurd")


def test_ticket_list_api_serves_absurd_rows(desk: ServiceDesk) -> None:
    server = HttpServer(make_app(desk, Stats(), tokens=lambda: frozenset({"tok"})), port=0)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10,
                          headers={"Authorization": "Bearer tok"}) as http:
            r = wait_for(lambda: _get(http, "/api/v1/tickets"), 10)
            assert r.status_code == 200, r.text
            bad = _absurd(r.json())
            assert (bad["opened_at"], bad["last_seen"], bad["last_value"], bad["sla"]) == (
                None, None, None, {})
            sane = next(t for t in r.json() if t["device"] == "sane")
            assert sane["sla"]["response"]["breached"] is True
            assert http.get(f"/api/v1/tickets/{bad['id']}").status_code == 200
    finally:
        server.stop()


def _get(http: httpx.Client, path: str) -> httpx.Response | None:
    try:
        return http.get(path)
    except httpx.TransportError:
        return None


def test_tickets_list_cli_prints_absurd_rows(desk: ServiceDesk, db_url_any: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["tickets", "list", "--db", db_url_any, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert _absurd(rows)["opened_at"] is None
    assert main(["tickets", "list", "--db", db_url_any]) == 0
    assert "absurd" in capsys.readouterr().out


def test_escalation_tick_skips_the_absurd_ticket_and_escalates_the_rest(
        desk: ServiceDesk) -> None:
    bad = _absurd(desk.list())["id"]
    r = desk.tick()
    assert r.skipped == [bad]
    assert {step for _, step in r.escalated} == {"response_80", "response_breach"}
    assert {tid for tid, _ in r.escalated} == {t["id"] for t in desk.list()} - {bad}
    assert desk.tick().skipped == [bad]  # still skipped; still no exception


@pytest.mark.parametrize("ts", [1e300, -1e300, math.inf, -math.inf, math.nan, 2.6e11])
def test_iso_of_a_time_no_date_can_show_is_null(ts: float) -> None:
    assert iso(ts) is None


def test_iso_of_a_sane_time() -> None:
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(None) is None


def test_the_fixture_holds_what_it_says(desk: ServiceDesk) -> None:
    with desk.store.engine.connect() as conn:
        opened, value = conn.execute(sa.select(tickets.c.opened_at, tickets.c.last_value).where(
            tickets.c.device == "absurd")).one()
    assert opened == 1e300 and value == math.inf
