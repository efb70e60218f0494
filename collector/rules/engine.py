"""Rule evaluation, pure: (rules, state, samples) → transitions. No clock, no I/O.

Alert lifecycle per fingerprint (rule + device + labels): inactive → pending (condition true,
`for` not yet met) → firing → resolved. Time is the samples' own timestamps, so data replayed
after an outage is judged by when it happened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from fieldwatch.collector.rules.model import Rule, RuleSet

from fieldwatch.wire import Metrics


def fingerprint(rule: str, site: str, device: str, labels: Mapping[str, str]) -> str:
    """What the fault is: rule, device and identifying labels; never readings or times."""
    key = "\x1f".join([rule, site, device, *(f"{k}={labels[k]}" for k in sorted(labels))])
    return hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


@dataclass(slots=True)
class AlertState:
    state: Literal["pending", "firing"]
    since: float  # sample time the condition became true
    last_ts: float
    value: float


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Literal["firing", "update", "resolved"]
    rule: Rule
    site: str
    device: str
    labels: Mapping[str, str]
    fingerprint: str
    value: float
    ts: float


@dataclass(slots=True)
class _Ctx:
    value: float


class Engine:
    """Holds the rule index; alert state lives in the dict the caller passes (and may persist)."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._by_metric = ruleset.by_metric()

    def evaluate(self, state: dict[str, AlertState],
                 messages: Iterable[Metrics]) -> list[Transition]:
        out: list[Transition] = []
        by_metric = self._by_metric
        for msg in messages:
            for s in msg.samples:
                rules = by_metric.get(s.name)
                if not rules:
                    continue
                ts = msg.ts if s.ts is None else s.ts
                for rule in rules:
                    if rule.labels and not rule.matches_labels(s.labels):
                        continue
                    fp = fingerprint(rule.name, msg.site, msg.device, s.labels)
                    t = step(rule, state, fp, s.value, ts)
                    if t is not None:
                        out.append(Transition(t, rule, msg.site, msg.device, s.labels, fp,
                                              s.value, ts))
        return out


def step(rule: Rule, state: dict[str, AlertState], fp: str, value: float,
         ts: float) -> Literal["firing", "update", "resolved"] | None:
    """Advance one alert by one sample; returns the transition kind, if any."""
    ctx = _Ctx(value)
    current = state.get(fp)
    if current is not None and ts < current.last_ts:
        return None  # older than what this alert already saw: late data cannot rewind it
    if current is None:
        if not rule.when(ctx):
            return None
        if rule.for_seconds <= 0:
            state[fp] = AlertState("firing", ts, ts, value)
            return "firing"
        state[fp] = AlertState("pending", ts, ts, value)
        return None
    current.last_ts, current.value = ts, value
    if current.state == "pending":
        if not rule.when(ctx):
            del state[fp]
            return None
        if ts - current.since >= rule.for_seconds:
            current.state = "firing"
            return "firing"
        return None
    cleared = rule.clear(ctx) if rule.clear is not None else not rule.when(ctx)
    if cleared:
        del state[fp]
        return "resolved"
    return "update"
