"""Staleness: a metric alert whose series stops arriving ends, saying "no data".

Why: metric alerts are judged on their samples, so without samples a firing alert would never
be judged again and stay firing for ever. The series is stale once it has been silent (on the
collector's clock, minus the time the collector was cut off) for

    stale_after = the rule's `stale_after`, else 3 x max(device interval, series step)

- device interval: declared by its inventory (`interval`, seconds), else estimated from the
  times of its metrics messages: the lower median of the last 8 gaps between its newest
  messages, so an outage, a replayed backlog or one slow cycle does not move it (the larger of
  the two when both are known);
- series step: the lower median of the last 5 gaps between the samples of the alert's own
  series, for series slower than their device (SMART, hourly). While an alert has seen one
  sample only, its step is unknown and it waits at least UNKNOWN_FLOOR: a slow series is not
  taken for a gone one.

Gaps shorter than that change nothing: conditions are judged per sample, and `for` counts
sample time across them. A stale pending alert is dropped (no ticket had opened). A stale firing
alert resolves with the "no data" resolution, unless an absence or offline alert of its device
(pending or firing) explains the silence — that ticket carries it and the alert is kept, to be
judged by its next sample when the device is back. A device gone wholly silent is given the time
its own absence rules need to judge it before anything is called stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fieldwatch.collector.rules.model import Rule
from fieldwatch.collector.rules.state import NEG_INF, AlertState, DeviceState, EngineState

if TYPE_CHECKING:
    from fieldwatch.collector.rules.engine import Engine, Transition

FACTOR = 3.0
UNKNOWN_FLOOR = 3 * 3600.0
KEEP_DEVICE = 8
KEEP_SERIES = 5


def note_message(dev: DeviceState, ts: float) -> None:
    """A metrics message of `dev` measured at `ts`: one more gap for its interval estimate.
    Older messages (a backlog being replayed) add nothing."""
    last = dev.last_ts
    if ts <= last:
        return
    if last > NEG_INF:
        gaps = dev.gaps
        gaps.append(ts - last)
        if len(gaps) > KEEP_DEVICE:
            del gaps[0]
    dev.last_ts = ts


def note_gap(a: AlertState, gap: float) -> None:
    """The time between two consecutive samples of the alert's series."""
    if gap <= 0 or gap == float("inf"):
        return
    if a.gaps is None:
        a.gaps = []
    a.gaps.append(gap)
    if len(a.gaps) > KEEP_SERIES:
        del a.gaps[0]


def _lower_median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[(len(s) - 1) // 2]


def interval(dev: DeviceState) -> float:
    """The device's reporting interval in seconds (0: not known yet)."""
    est = _lower_median(dev.gaps) if dev.gaps else 0.0
    return max(dev.declared, est)


def stale_after(rule: Rule, a: AlertState, dev: DeviceState) -> float:
    """Seconds of silence after which the alert's series is stale (0: never)."""
    if rule.stale_after is not None:
        return rule.stale_after
    step = _lower_median(a.gaps) if a.gaps else 0.0
    limit = FACTOR * max(interval(dev), step)
    return limit if a.gaps else max(limit, UNKNOWN_FLOOR)


def horizon(dev: DeviceState) -> float:
    """How long a wholly silent device waits for its own absence rules (absent without a
    metric: `for`; offline: `no_data_for`) to judge it."""
    h = 0.0
    for r in dev.drules:
        if not r.metric:
            h = max(h, r.for_seconds if r.kind == "absent" else r.no_data_for)
    return h


def no_data(rule: Rule, a: AlertState, gap: float, limit: float) -> str:
    return (f"no data: no {rule.metric} sample for {gap:.0f}s (stale after {limit:.0f}s); "
            f"last value {a.value:g}")


def sweep(eng: Engine, st: EngineState, now: float, out: list[Transition]) -> None:
    """End the metric alerts whose series went stale (see the module docstring). Runs on
    every tick over every alert in flight, so the common case is two comparisons."""
    due = []
    for a in st.alerts.values():
        if a.home is None:
            continue  # not a metric alert
        limit = a.stale
        if limit == 0.0:
            rule = eng.rules.get(a.rule)
            if rule is None:
                continue
            limit = a.stale = stale_after(rule, a, a.dev) or -1.0  # -1: never stale
        if limit > 0 and now - a.last_rx > limit:
            due.append(a)
    for a in due:
        rule = eng.rules.get(a.rule)
        if rule is None:
            continue
        dev, limit = a.dev, a.stale
        gap = st.silent_for(a.last_rx, now)
        if gap <= limit:
            continue
        if a.state == "pending":
            eng.drop(st, a)
            continue
        if eng.outage(st, dev, rule.metric) is not None:
            continue  # the device's outage ticket carries it
        if dev.last_rx <= a.last_rx and st.silent_for(dev.last_rx, now) <= horizon(dev):
            continue  # the whole device is quiet: its absence rules judge that first
        a.resolution = no_data(rule, a, gap, limit)
        out.append(eng.transition("resolved", a, rule, now))
        eng.drop(st, a)
