"""One SLA definition for `report kpi` and `report monthly` (issue 12 #7): verdicts as of the
moment the report is made, whatever window it covers."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fieldwatch.collector.tickets.kpi import compute, sla_verdicts
from fieldwatch.collector.tickets.report import monthly_markdown

from tests.cli.helpers import run
from tests.tickets.helpers import berlin, sla_policy

T0 = berlin(2027, 1, 4, 9)  # Monday 09:00 Berlin
H = 3600.0


def ticket(prio: str, opened: float, ack: float | None = None,
           resolved: float | None = None) -> dict:
    return {"id": 1, "rule": "r", "severity": prio, "sla_priority": prio, "state": "open",
            "opened_at": opened, "acknowledged_at": ack, "resolved_at": resolved, "pauses": [],
            "reopen_count": 0, "recurrences": 0, "satisfaction": None, "resolution": None}


def test_a_minutes_old_ticket_is_pending_in_a_window_that_ends_in_the_future() -> None:
    t = ticket("P1", T0)
    month_end = T0 + 27 * 86400
    k = compute([t], sla_policy(), T0 - 3 * 86400, month_end, now=T0 + 5 * 60)
    assert k["sla"]["P1"]["response"] == {"met": 0, "breached": 0, "pending": 1,
                                          "compliance": None}
    assert k["as_of"] == T0 + 5 * 60


@pytest.mark.parametrize(("ack", "now", "verdict"), [
    (None, T0 + 10 * 60, "pending"),     # running, within 15 min
    (None, T0 + 20 * 60, "breached"),    # running, past 15 min
    (T0 + 10 * 60, T0 + 9 * H, "met"),   # stopped within target
    (T0 + 20 * 60, T0 + 9 * H, "breached"),
])
def test_verdicts_as_of_now(ack: float | None, now: float, verdict: str) -> None:
    assert sla_verdicts(ticket("P1", T0, ack), sla_policy(), now)["response"] == verdict


def test_a_past_month_shows_what_is_known_now_not_at_its_last_instant() -> None:
    """Opened 5 min before the window's end, answered 10 min after it: met, not pending."""
    until = T0 + 5 * 60
    t = ticket("P1", T0, ack=T0 + 15 * 60 - 1)
    k = compute([t], sla_policy(), T0 - 86400, until, now=T0 + 30 * 86400)
    assert k["sla"]["P1"]["response"]["met"] == 1


def test_the_markdown_shows_pending_and_when_the_clocks_were_read() -> None:
    k = compute([ticket("P1", T0)], sla_policy(), T0 - 86400, T0 + 86400, now=T0 + 60)
    text = monthly_markdown(k, T0 - 86400)
    assert "| P1 | 0 (—) | 0 | 1 | 0 (—) | 0 | 1 |" in text
    assert f"Clocks as of {T0 + 60}" in text


def test_monthly_and_kpi_agree_on_a_fresh_ticket(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", str(tmp_path / "fw.db")]
    assert run(capsys, "tickets", "create", "--device", "d", "--title", "t", "--priority",
               "P1", *db)[0] == 0
    month = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m")
    _, kpi, _ = run(capsys, "report", "kpi", "--since", "1d", "--json", *db)
    _, monthly, _ = run(capsys, "report", "monthly", "--month", month, "--json", *db)
    assert json.loads(kpi)["sla"] == json.loads(monthly)["sla"]
    assert json.loads(monthly)["sla"]["P1"]["response"]["pending"] == 1
    _, text, _ = run(capsys, "report", "monthly", "--month", month, *db)
    assert "| P1 | 0 (—) | 0 | 1 |" in text
