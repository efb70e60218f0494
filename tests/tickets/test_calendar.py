"""Business-hours calendars: weekends, holidays, daylight saving, and the inverse property."""

from __future__ import annotations

import pytest
from fieldwatch.collector.sla.calendar import ALWAYS
from fieldwatch.collector.sla.policy import CalendarSpec, parse_days, parse_span
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tickets.helpers import berlin, sla_policy

BUSINESS = sla_policy().targets["P2"].calendar
H = 3600.0


def test_across_a_holiday_and_a_weekend() -> None:
    # Thu 2026-12-31 16:00: one working hour left; Fri 1 Jan is a holiday; then the weekend.
    start = berlin(2026, 12, 31, 16)
    assert BUSINESS.business_seconds(start, berlin(2027, 1, 4, 12)) == 4 * H
    assert BUSINESS.add(start, 2 * H) == berlin(2027, 1, 4, 10)
    # Nothing counts from Friday evening to Monday morning.
    assert BUSINESS.business_seconds(berlin(2027, 1, 8, 17), berlin(2027, 1, 11, 9)) == 0
    # Starting outside hours, the clock starts at the next opening.
    assert BUSINESS.add(berlin(2027, 1, 9, 11), 30 * 60) == berlin(2027, 1, 11, 9, 30)


def test_exactly_at_the_end_of_a_day_rolls_to_the_next_opening() -> None:
    assert BUSINESS.add(berlin(2027, 1, 5, 9), 8 * H) == berlin(2027, 1, 5, 17)
    assert BUSINESS.add(berlin(2027, 1, 5, 9), 8 * H + 1) == berlin(2027, 1, 6, 9) + 1


def test_daylight_saving_day_has_25_hours() -> None:
    cal = CalendarSpec(timezone="Europe/Berlin", hours={"mon-sun": ["00:00-24:00"]}).build("x")
    day = cal.business_seconds(berlin(2026, 10, 25), berlin(2026, 10, 26))
    assert day == 25 * H


def test_always_is_plain_arithmetic() -> None:
    assert ALWAYS.business_seconds(100, 400) == 300
    assert ALWAYS.add(100, 15 * 60) == 100 + 900
    assert ALWAYS.business_seconds(400, 100) == 0


@pytest.mark.parametrize(("text", "days"), [
    ("mon", [0]), ("mon-fri", [0, 1, 2, 3, 4]), ("sat,sun", [5, 6]), ("Tue-Thu", [1, 2, 3])])
def test_day_specs(text: str, days: list[int]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize("bad", ["fri-mon", "funday", "mon-"])
def test_bad_day_specs(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_days(bad)


@pytest.mark.parametrize("bad", ["17:00-09:00", "9-17", "09:00-24:01", "22:00-06:00",
                                 "24:00-24:00"])
def test_bad_spans(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_span(bad)


@settings(max_examples=60, deadline=None)
@given(start=st.floats(1.78e9, 1.83e9), seconds=st.floats(1, 200 * H))
def test_add_then_measure_gives_the_same_working_time(start: float, seconds: float) -> None:
    due = BUSINESS.add(start, seconds)
    assert BUSINESS.business_seconds(start, due) == pytest.approx(seconds, abs=1e-3)
    assert BUSINESS.business_seconds(start, due - 1) < seconds
