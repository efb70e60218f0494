"""KPI figures from a constructed history equal the values computed by hand."""

from __future__ import annotations

import pytest
from fieldwatch.collector.tickets.kpi import compute, percentile
from fieldwatch.collector.tickets.report import month_bounds, monthly_markdown

from tests.tickets.helpers import berlin, sla_policy

T0 = berlin(2027, 1, 4, 9)  # Monday 09:00 Berlin
H = 3600.0


def row(id: int, rule: str, prio: str, opened: float, ack: float | None,
        resolved: float | None, state: str, **kw: object) -> dict:
    return {"id": id, "rule": rule, "severity": prio, "sla_priority": prio, "state": state,
            "opened_at": opened, "acknowledged_at": ack, "resolved_at": resolved,
            "pauses": [], "reopen_count": 0, "recurrences": 0, "satisfaction": None,
            "resolution": None, **kw}


HISTORY = [
    row(1, "disk_full", "P1", T0, T0 + 600, T0 + H, "closed", satisfaction=5,
        resolution={"cause": "disk full", "parts": ["ssd"]}),
    row(2, "disk_full", "P1", T0 + 100, T0 + 1300, T0 + 100 + 5 * H, "resolved",
        reopen_count=1, recurrences=1, satisfaction=3,
        resolution={"cause": "disk full", "parts": ["ssd", "cable"]}),
    row(3, "fan", "P2", T0, T0 + H, T0 + 7 * H, "closed", resolution={"cause": "fan dust"}),
    row(4, "fan", "P2", T0, None, None, "open"),
    row(5, "fan", "P2", T0 - 40 * 86400, T0, T0, "closed"),  # before the window: not counted
]


def test_kpis_match_hand_computed_values() -> None:
    k = compute(HISTORY, sla_policy(), since=T0 - 86400, until=T0 + 86400)  # until Tue 09:00
    assert k["tickets"] == {"opened": 4, "acknowledged": 3, "resolved": 3, "closed": 2,
                            "open": 1, "by_priority": {"P1": 2, "P2": 2, "P3": 0}}
    assert k["mtta_s"] == (600 + 1200 + 3600) / 3
    assert k["mttr_s"] == (3600 + 18000 + 25200) / 3
    assert k["sla"]["P1"] == {
        "response": {"met": 1, "breached": 1, "pending": 0, "compliance": 0.5},
        "resolution": {"met": 1, "breached": 1, "pending": 0, "compliance": 0.5}}
    # ticket 4 never answered: 8 working hours by Tuesday 09:00 > 2 h; resolution exactly at
    # its 8 h target is not yet breached
    assert k["sla"]["P2"] == {
        "response": {"met": 1, "breached": 1, "pending": 0, "compliance": 0.5},
        "resolution": {"met": 1, "breached": 0, "pending": 1, "compliance": 1.0}}
    assert k["sla"]["P3"]["response"]["compliance"] is None
    assert k["response_by_rule"] == {
        "disk_full": {"count": 2, "mean_s": 900.0, "p50_s": 600.0, "p90_s": 1200.0,
                      "max_s": 1200.0},
        "fan": {"count": 1, "mean_s": 3600.0, "p50_s": 3600.0, "p90_s": 3600.0,
                "max_s": 3600.0}}
    assert k["recurrence_rate"] == round(1 / 3, 4)
    assert k["first_time_fix_rate"] == round(2 / 3, 4)
    assert k["satisfaction"] == {"count": 2, "mean": 4.0}
    assert k["causes"] == [
        {"cause": "disk full", "count": 2, "percent": 66.7, "cumulative_percent": 66.7},
        {"cause": "fan dust", "count": 1, "percent": 33.3, "cumulative_percent": 100.0}]
    assert k["parts"] == {"ssd": 2, "cable": 1}


def test_waiting_time_does_not_count_against_the_sla() -> None:
    # P2 opened Mon 09:00, waiting on the customer 09:30-16:00, answered 16:30: 1 h used
    t = row(1, "fan", "P2", T0, T0 + 7.5 * H, None, "acknowledged",
            pauses=[[T0 + 0.5 * H, T0 + 7 * H]])
    k = compute([t], sla_policy(), T0, T0 + 8 * H)
    assert k["sla"]["P2"]["response"]["met"] == 1


def test_empty_history() -> None:
    k = compute([], sla_policy(), 0, 1)
    assert (k["mtta_s"], k["mttr_s"], k["recurrence_rate"], k["causes"]) == (None, None, None,
                                                                              [])


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 90, 4), ([5], 99, 5), ([], 50, None),
    ([3, 1, 2], 100, 3)])
def test_nearest_rank_percentile(values: list[float], p: float, expected: float) -> None:
    assert percentile(values, p) == expected


def test_monthly_markdown_has_every_section() -> None:
    since, until = month_bounds(2027, 1)
    assert until - since == 31 * 86400
    assert month_bounds(2026, 12)[1] == since
    text = monthly_markdown(compute(HISTORY, sla_policy(), since, until), since)
    assert text.startswith("# Service report — January 2027")
    for heading in ("## Volume", "## SLA compliance", "## Causes (Pareto)", "## Parts used",
                    "## Response time by fault type"):
        assert heading in text
    assert "| disk full | 2 | 66.7 % | 66.7 % |" in text
