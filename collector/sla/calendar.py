"""Business-hours calendars: how much SLA time passes between two instants, and when a target
falls due. Pure; instants are epoch seconds, working hours are local to the calendar's zone
(zoneinfo, so daylight-saving days are as long as they really are)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS = 3700  # ten years of days: bounds every walk over a calendar

Span = tuple[int, int]  # seconds after local midnight, start < end <= 86400


@dataclass(frozen=True)
class Calendar:
    """Working hours per weekday (0 = Monday) in a zone, minus holidays. `always`: 24×7."""

    name: str
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    week: tuple[tuple[Span, ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()
    always: bool = False

    def _local_spans(self, day: date) -> Iterator[tuple[float, float]]:
        """The day's working spans as epoch seconds (DST-correct)."""
        if day in self.holidays:
            return
        for start, end in self.week[day.weekday()]:
            yield (_at(day, start, self.tz), _at(day, end, self.tz))

    def _days_from(self, ts: float) -> Iterator[date]:
        day = datetime.fromtimestamp(ts, self.tz).date()
        for i in range(MAX_DAYS):
            yield day + timedelta(days=i)

    def business_seconds(self, start: float, end: float) -> float:
        """Working time in [start, end); 0 when end <= start."""
        if end <= start:
            return 0.0
        if self.always:
            return end - start
        total = 0.0
        for day in self._days_from(start):
            for s, e in self._local_spans(day):
                total += max(0.0, min(e, end) - max(s, start))
            if datetime.combine(day + timedelta(days=1), time(0), self.tz).timestamp() >= end:
                return total
        raise ValueError(f"calendar {self.name}: span longer than {MAX_DAYS} days")

    def add(self, start: float, seconds: float) -> float:
        """The instant when `seconds` of working time have passed since `start`."""
        if seconds <= 0 or self.always:
            return start + max(seconds, 0.0)
        left = seconds
        for day in self._days_from(start):
            for s, e in self._local_spans(day):
                s = max(s, start)
                if e <= s:
                    continue
                if e - s >= left:
                    return s + left
                left -= e - s
        raise ValueError(f"calendar {self.name}: no working time within {MAX_DAYS} days")


def _at(day: date, seconds: int, tz: ZoneInfo) -> float:
    if seconds >= 86400:
        return datetime.combine(day + timedelta(days=1), time(0), tz).timestamp()
    h, rest = divmod(seconds, 3600)
    return datetime.combine(day, time(h, rest // 60, rest % 60), tz).timestamp()


ALWAYS = Calendar(name="24x7", always=True)
