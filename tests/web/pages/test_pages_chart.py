"""Chart geometry (pure) and the thresholds drawn from the rules."""

from __future__ import annotations

import math

import pytest
from fieldwatch.collector.rules.expr import parse
from fieldwatch.collector.rules.functions import FUNCTIONS, METRIC_NAMES
from fieldwatch.collector.rules.loader import ruleset_from_text
from fieldwatch.collector.web.pages.chart import (
    Box,
    SeriesIn,
    Threshold,
    bar_chart,
    format_value,
    line_chart,
    nice_step,
    reduce,
    split,
    time_ticks,
    value_range,
)
from fieldwatch.collector.web.pages.thresholds import constants, for_chart, of_text
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.web.pages.conftest import RULES


@pytest.mark.parametrize(("span", "count", "step"), [
    (100, 4, 25), (1, 4, 0.25), (7, 4, 2), (0.03, 3, 0.01), (9e6, 4, 2.5e6), (0, 4, 1.0)])
def test_nice_step(span: float, count: int, step: float) -> None:
    assert nice_step(span, count) == pytest.approx(step)


def test_value_range_is_round_and_covers_the_values() -> None:
    assert value_range([3.2, 97.5]) == (0.0, 100.0, 25.0)
    assert value_range([]) == (0.0, 1.0, 0.25)
    lo, hi, _ = value_range([42.0, 42.0])  # one value: a range around it
    assert lo < 42 < hi
    assert value_range([math.nan, 5.0, math.inf])[0] <= 5.0


def test_time_ticks_are_round_instants_inside_the_range() -> None:
    ticks = time_ticks(1_000, 1_000 + 86400)
    assert all(t % 3600 == 0 and 1_000 <= t <= 87_400 for t in ticks) and 3 <= len(ticks) <= 6
    assert time_ticks(5.0, 5.0) == [5.0]


@pytest.mark.parametrize(("v", "text"), [(0.30000000000000004, "0.3"), (1_500_000, "1.5M"),
                                         (25_000, "25k"), (-2e9, "-2G"), (87.5, "87.5")])
def test_format_value(v: float, text: str) -> None:
    assert format_value(v) == text


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=600), st.integers(1, 80))
def test_reduce_keeps_at_most_two_points_a_bucket_and_every_extreme(values: list[float],
                                                                    buckets: int) -> None:
    pts = [(float(i), v) for i, v in enumerate(values)]
    out = reduce(pts, buckets)
    assert len(out) <= max(len(pts), 0) and (len(pts) <= 2 * buckets or len(out) <= 2 * buckets)
    assert min(v for _, v in out) == min(values) and max(v for _, v in out) == max(values)
    assert [t for t, _ in out] == sorted(t for t, _ in out)


def test_split_cuts_at_gaps_and_nans() -> None:
    pts = [(0, 1.0), (10, 2.0), (20, 3.0), (200, 4.0), (210, math.nan), (220, 5.0), (230, 6.0)]
    assert split(pts) == [[(0, 1.0), (10, 2.0), (20, 3.0)], [(200, 4.0)], [(220, 5.0), (230, 6.0)]]


def test_a_line_chart_draws_every_point_in_range_within_its_box() -> None:
    pts = [(1000.0 + 60 * i, 50 + i % 7) for i in range(50)]
    c = line_chart([SeriesIn("mount=/", pts + [(99_999.0, 1.0)])], 1000, 1000 + 60 * 49,
                   [Threshold(90, "disk_nearly_full", "when", ">")], Box())
    assert c.points == 50 and len(c.lines[0].segments) == 1
    coords = [tuple(map(float, p.split(","))) for p in c.lines[0].segments[0].split()]
    b = c.box
    assert all(b.x0 <= x <= b.x1 and b.y1 <= y <= b.y0 for x, y in coords)
    assert c.v0 <= 50 and c.v1 >= 90  # the threshold is on the chart
    assert c.thresholds[0].y == pytest.approx(b.y0 - (90 - c.v0) / (c.v1 - c.v0) * (b.y0 - b.y1))
    assert c.lines[0].last == 50 + 49 % 7


def test_a_long_series_is_reduced_to_the_plot_width() -> None:
    pts = [(float(i), math.sin(i / 50)) for i in range(20_000)]
    c = line_chart([SeriesIn("x", pts)], 0, 20_000)
    assert c.points <= 2 * int(c.box.x1 - c.box.x0)


def test_bars_and_the_pareto_line() -> None:
    c = bar_chart(["fan", "psu", "disk"], [("tickets", [5.0, 3.0, None])],
                  cumulative=[50.0, 80.0, 100.0])
    assert [b.value for b in c.bars] == [5.0, 3.0] and not c.empty
    assert len(c.line.split()) == 3 and c.line_ticks[-1].label == "100%"
    pct = bar_chart(["P1"], [("response", [None])], top=100.0)
    assert pct.empty and pct.yticks[-1].label == "100"


# -- thresholds from the rules ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "found"), [
    ("value > 90", [(">", 90.0)]), ("90 < value", [(">", 90.0)]),
    ("value < 5 or value > 70", [("<", 5.0), (">", 70.0)]),
    ("value >= 10 and value <= 20", [(">=", 10.0), ("<=", 20.0)]),
    ("predict_linear(6h, 24h) >= 100 and value > 50", None), ("rate(5m) > 3", None),
    ("value != 3", None), ("not value > 3", None), ("value + 1 > 3", None)])
def test_constants(text: str, found: list[tuple[str, float]] | None) -> None:
    assert constants(parse(text, METRIC_NAMES, FUNCTIONS)) == found


def test_of_text_is_forgiving() -> None:
    assert of_text(None) == [] and of_text("value >") == [] and of_text("zscore > 3") == []


def test_thresholds_of_the_rules_that_read_the_chart() -> None:
    rules = ruleset_from_text(RULES + """
  - name: only_db
    metric: disk.used_percent
    device: "=~db-.*"
    when: value > 80
    severity: P3
    ticket: {title: t}
  - name: learned
    metric: disk.used_percent
    anomaly: {z: 3}
    severity: P3
    ticket: {title: t}
""", "rules.yaml")
    got = for_chart(rules, "disk.used_percent", "hq", "web-01", "", [{"mount": "/"}])
    assert [(t.label, t.kind, t.op, t.value) for t in got] == [
        ("disk_nearly_full", "when", ">", 90.0), ("disk_nearly_full", "clear", "<", 85.0)]
    assert for_chart(rules, "disk.used_percent", "hq", "web-01", "", [{"mount": "/boot"}]) == []
    assert [t.label for t in for_chart(rules, "disk.used_percent", "hq", "db-1", "", [])] == [
        "disk_nearly_full", "disk_nearly_full", "only_db"]
    temp = for_chart(rules, "temp.celsius", "hq", "web-01", "", [{"sensor": "cpu"}])
    assert [(t.op, t.value) for t in temp] == [("<", 5.0), (">", 70.0)]


def test_kpi_trend_buckets_are_utc_days_or_weeks_from_monday() -> None:
    from datetime import UTC, datetime

    from fieldwatch.collector.web.pages.dashboard import buckets

    def at(*args: int) -> float:
        return datetime(*args, tzinfo=UTC).timestamp()

    days = buckets(at(2027, 2, 24, 10), at(2027, 3, 3, 10))
    assert days[0] == (at(2027, 2, 24, 10), at(2027, 2, 25))  # clipped to the period
    assert days[-1] == (at(2027, 3, 3), at(2027, 3, 3, 10)) and len(days) == 8
    weeks = buckets(at(2027, 1, 20), at(2027, 3, 3))  # a Wednesday: its week began Monday 18
    assert weeks[0] == (at(2027, 1, 20), at(2027, 1, 25)) and weeks[1][0] == at(2027, 1, 25)
    assert all(datetime.fromtimestamp(b, UTC).weekday() == 0 for b, _ in weeks[1:])
    assert len(buckets(0, 3650 * 86400.0)) == 60  # bounded
