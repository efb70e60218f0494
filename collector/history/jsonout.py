"""The stable JSON shapes of series and points (CLI `--json` and the HTTP API alike)."""

from __future__ import annotations

from typing import Any

from fieldwatch.collector.history import Query, Series, SeriesKey
from fieldwatch.collector.history.selector import parse_selector

from fieldwatch.durations import parse_duration
from fieldwatch.errors import FieldwatchError
from fieldwatch.jsonout import finite


def key_json(k: SeriesKey) -> dict[str, Any]:
    return {"metric": k.metric, "site": k.site, "device": k.device, "labels": dict(k.labels)}


def series_json(s: Series) -> dict[str, Any]:
    """Values JSON cannot carry (an average overflowing to infinity) are null."""
    return {**key_json(s.key), "resolution": s.resolution,
            "points": [[t, finite(v)] for t, v in s.points],
            "min": None if s.minimum is None else [finite(v) for v in s.minimum],
            "max": None if s.maximum is None else [finite(v) for v in s.maximum]}


MAX_RANGE = 3660 * 86400.0  # ten years: anything longer is a typo


def build_query(selector: str, start: float, end: float, step: str | float | None) -> Query:
    """A Query from a selector string and a range; FieldwatchError says what is wrong."""
    metric, sel = parse_selector(selector)
    if not end > start:
        raise FieldwatchError("the range is empty: end must come after start")
    if end - start > MAX_RANGE:
        raise FieldwatchError("the range is longer than ten years")
    seconds = None
    if step is not None and step != "":
        try:
            seconds = parse_duration(step)
        except ValueError as exc:
            raise FieldwatchError(f"step: {exc}") from None
        if seconds < 1:
            raise FieldwatchError("step: at least 1s")
    return Query(metric, sel, start, end, seconds)
