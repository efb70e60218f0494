"""The case library: past fixes offered for a new ticket by text (CJK too), rule and device type,
never below MIN_SCORE; through the service desk on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fieldwatch.collector.tickets.cases import (
    MIN_SCORE,
    Resolution,
    features,
    score_cases,
    similar,
)
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from hypothesis import given, settings
from hypothesis import strategies as st

# (title, description, cause, fix)
LIBRARY = [
    ("Paper jam in tray 2", "The printer on the 3rd floor jams on every print job",
     "worn pickup roller", "Replaced the pickup roller and cleaned the paper path"),
    ("Fan noise", "Loud rattling fan noise from the server rack",
     "fan bearing worn", "Replaced fan 2"),
    ("风扇异响", "机房服务器风扇声音很大", "风扇轴承磨损", "更换风扇"),
    ("打印机卡纸", "", "进纸辊老化", "更换进纸辊"),
    ("Toner low", "Prints come out faded", "toner cartridge empty", "Replaced the toner cartridge"),
]


def _case(i: int, title: str, description: str, cause: str, fix: str,
          **kw: Any) -> dict[str, Any]:
    return {"id": i, "rule": "manual", "title": title, "description": description,
            "device": f"dev-{i}", "site": "hq", "device_type": "printer", "resolved_at": i,
            "resolution": {"cause": cause, "fix": fix, "parts": []}, **kw}


def _history() -> list[dict[str, Any]]:
    return [_case(i, *row) for i, row in enumerate(LIBRARY, 1)]


def _new(title: str, description: str = "", **kw: Any) -> dict[str, Any]:
    return {"id": 99, "rule": "manual", "title": title, "description": description,
            "device": "dev-new", "site": "hq", "device_type": "printer", **kw}


def _ids(ticket: dict[str, Any]) -> list[int]:
    return [c["id"] for c in similar(ticket, _history())]


def test_a_fan_noise_is_not_offered_a_paper_jam_fix() -> None:
    """Issue 12: every manual ticket matched every other (same rule `manual`, +3)."""
    assert _ids(_new("Fan noise", "The fan is very loud")) == [2]
    assert _ids(_new("Printer fan noise")) == [2]  # "printer" alone is no paper jam
    assert _ids(_new("Paper jam", "jams again")) == [1]


def test_chinese_titles_match_by_characters() -> None:
    assert _ids(_new("风扇噪音")) == [3]
    assert _ids(_new("服务器风扇噪音很大")) == [3]
    assert _ids(_new("打印机卡纸了")) == [4]


def test_nothing_below_the_threshold() -> None:
    assert _ids(_new("Screen flickers")) == []
    assert _ids(_new("显示器闪烁")) == []
    # same device type and the rule `manual` alone are no likeness
    assert all(s < MIN_SCORE for s, _ in score_cases(_new("Screen flickers"), _history()))
    # a weak textual overlap ("job", "server") stays below it too
    weak = {p["id"]: s for s, p in score_cases(_new("Server job failed"), _history())}
    assert 0.1 < weak[1] < MIN_SCORE and 0.1 < weak[2] < MIN_SCORE
    assert _ids(_new("Server job failed")) == []


def test_rule_made_tickets_rank_by_rule_labels_and_text() -> None:
    hist = [_case(1, "Disk / on web-01 at 93%", "", "logs filled the disk", "rotated logs",
                  rule="disk_nearly_full", labels={"mount": "/"}, device_type="server"),
            _case(2, "Disk /var on db-01 at 95%", "", "old backups", "moved the backups",
                  rule="disk_nearly_full", labels={"mount": "/var"}, device_type="server"),
            _case(3, "Fan nct6775/CPU fan on web-01 stopped (0 rpm)", "", "dust", "cleaned it",
                  rule="fan_stopped", labels={"sensor": "nct6775/CPU fan"},
                  device_type="server")]
    new = _new("Disk /var on app-02 at 92%", rule="disk_nearly_full", labels={"mount": "/var"},
               device="app-02", device_type="server")
    assert [c["id"] for c in similar(new, hist)] == [2, 1]


def test_the_ticket_itself_and_cases_without_a_note_are_left_out() -> None:
    hist = [*_history(), _case(6, "Fan noise", "", "x", "y", resolution=None)]
    assert _ids(_new("Fan noise") | {"id": 2}) == []
    assert [c["id"] for c in similar(_new("Fan noise"), hist)] == [2]


@given(st.text(max_size=200), st.text(max_size=200))
@settings(max_examples=60, deadline=None)
def test_any_text_scores_between_0_and_1(a: str, b: str) -> None:
    assert all(v > 0 for v in features(a).values())
    hist = [_case(1, b, a, b or "c", "f"), *_history()]
    for s, _ in score_cases(_new(a, b), hist):
        assert 0.0 <= s <= 1.0 + 1e-9


def test_the_desk_suggests_past_fixes_on_both_databases(desk: ServiceDesk) -> None:
    for title, description, cause, fix in LIBRARY:
        tid = desk.create(device="d", title=title, description=description, actor="x")["id"]
        desk.act(tid, "resolve", "eli", note=Resolution(cause=cause, fix=fix))
    shown = desk.create(device="d2", title="风扇噪音", actor="x")
    [case] = shown["similar"]
    assert case["title"] == "风扇异响" and case["resolution"]["fix"] == "更换风扇"
    assert case["score"] >= MIN_SCORE
    fan = desk.create(device="d3", title="Fan noise", description="very loud", actor="x")
    assert [c["title"] for c in fan["similar"]] == ["Fan noise"]
    assert desk.create(device="d4", title="Screen flickers", actor="x")["similar"] == []
