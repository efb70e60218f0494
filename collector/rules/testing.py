"""`fieldwatch rules test`: rule unit tests, like `promtool test rules`.

A test file names rule files, feeds input series (compact notation, see notation.py), status
changes and events through the same Engine the collector runs, ticking its clock every step, and
checks the alerts at given times. Pure: no clock, no I/O beyond reading the files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fieldwatch.collector.rules.engine import Engine, EngineState, Transition
from fieldwatch.collector.rules.loader import load_rules, rule_files, ruleset_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.rules.notation import parse_selector, parse_series
from fieldwatch.collector.rules.templates import render
from fieldwatch.collector.tickets.alerts import plan
from fieldwatch.collector.tickets.config import DeskPolicy
from fieldwatch.collector.tickets.recurrence import Ledger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fieldwatch import wire
from fieldwatch.durations import Duration, format_duration
from fieldwatch.errors import LocatedError, Problem, RuleError
from fieldwatch.models import validation_problems
from fieldwatch.yamlmarks import load_yaml

DEFAULT_DEVICE = "test-device"
DEFAULT_SITE = "test"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeriesIn(_Strict):
    series: str
    values: str | int | float
    device: str | None = None
    site: str | None = None

    @field_validator("series")
    @classmethod
    def _sel(cls, v: str) -> str:
        parse_selector(v)
        return v

    @field_validator("values", mode="after")
    @classmethod
    def _vals(cls, v: str | int | float) -> str:
        parse_series(str(v))
        return str(v)


class StatusIn(_Strict):
    at: Duration
    state: Literal["online", "offline"]
    cause: str = ""
    device: str = DEFAULT_DEVICE
    site: str = DEFAULT_SITE


class EventIn(_Strict):
    at: Duration
    type: str
    fields: dict[str, str | int | float | bool | None] = {}
    device: str = DEFAULT_DEVICE
    site: str = DEFAULT_SITE


class InventoryIn(_Strict):
    """Inventory facts (`type`, `parent`, `polled_by`, `interval`); an inventory also confirms
    the device, like metrics do (a device known only from its status opens no ticket)."""

    at: Duration
    facts: dict[str, str | int | float | bool | None]
    device: str = DEFAULT_DEVICE
    site: str = DEFAULT_SITE


class LinkIn(_Strict):
    """The collector cut off from the broker from `at` for `for`."""

    at: Duration
    for_: Duration = Field(alias="for")


class ExpAlert(_Strict):
    device: str = DEFAULT_DEVICE
    site: str | None = None
    labels: dict[str, str] = {}
    state: Literal["firing", "pending"] = "firing"
    flapping: bool | None = None
    silenced: bool | None = None
    suppressed: bool | None = None
    title: str | None = None


class AlertCheck(_Strict):
    eval_time: Duration
    rule: str
    exp_alerts: list[ExpAlert] = []


class TicketCheck(_Strict):
    """How many tickets a rule would have opened (and reopened) by `eval_time`, as the
    collector's store counts them (tickets.recurrence, default verification window)."""

    eval_time: Duration
    rule: str
    opened: int
    reopened: int | None = None


class TestCase(_Strict):
    name: str = ""
    interval: Duration | None = None
    input_series: list[SeriesIn] = []
    input_status: list[StatusIn] = []
    input_events: list[EventIn] = []
    input_inventory: list[InventoryIn] = []
    collector_disconnected: list[LinkIn] = []
    alert_rule_test: list[AlertCheck] = []
    ticket_test: list[TicketCheck] = []


class TestFile(_Strict):
    rule_files: list[str]
    evaluation_interval: Duration = 60.0
    tests: list[TestCase]
    extra_rules: str | None = None  # inline YAML (silences, devices) for these tests


@dataclass
class Result:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def run_test_files(paths: Iterable[str | Path]) -> list[Result]:
    """Run every test in the files (directories: their *.yaml). Raises RuleError for a broken
    test or rule file, with locations."""
    results: list[Result] = []
    for p in rule_files(paths):
        results.extend(run_test_file(p))
    return results


def run_test_file(path: Path) -> list[Result]:
    try:
        text = path.read_text(encoding="utf-8")
        doc = load_yaml(text, str(path))
    except OSError as exc:
        raise RuleError([Problem(str(path), 0, 0, f"cannot read: {exc.strerror}")]) from None
    except LocatedError as exc:
        raise RuleError(exc.problems) from None
    try:
        spec = TestFile.model_validate(doc.data)
    except ValidationError as exc:
        raise RuleError(validation_problems(exc, doc)) from None
    ruleset = load_rules([path.parent / f for f in spec.rule_files])
    if spec.extra_rules:
        extra = ruleset_from_text(spec.extra_rules, f"{path}:extra_rules")
        ruleset = RuleSet(ruleset.rules + extra.rules, ruleset.silences + extra.silences,
                          {**ruleset.devices, **extra.devices})
    problems = []
    for i, case in enumerate(spec.tests):
        for j, check in enumerate([*case.alert_rule_test, *case.ticket_test]):
            if ruleset.get(check.rule) is None:
                problems.append(doc.problem(("tests", i, "alert_rule_test" if j < len(
                    case.alert_rule_test) else "ticket_test"), f"unknown rule {check.rule!r}"))
    if problems:
        raise RuleError(problems)
    return [run_case(ruleset, case, spec.evaluation_interval, str(path), i)
            for i, case in enumerate(spec.tests)]


def run_case(ruleset: RuleSet, case: TestCase, default_interval: float, file: str = "",
             index: int = 0) -> Result:
    interval = case.interval or default_interval
    result = Result(file, case.name or f"test {index + 1}")
    engine = Engine(ruleset)
    st = EngineState()
    inputs: dict[float, list[wire.Message]] = {}
    seqs: dict[tuple[str, str], int] = {}
    per_step: dict[int, dict[tuple[str, str], list[wire.Sample]]] = {}
    for s in case.input_series:
        name, labels = parse_selector(s.series)
        device = s.device or labels.pop("device", DEFAULT_DEVICE)
        site = s.site or labels.pop("site", DEFAULT_SITE)
        for k, v in enumerate(parse_series(str(s.values))):
            if v is not None:
                per_step.setdefault(k, {}).setdefault((site, device), []).append(
                    wire.Sample(name, v, labels))
    for k, by_dev in per_step.items():
        for (site, device), samples in by_dev.items():
            seq = seqs[(site, device)] = seqs.get((site, device), 0) + 1
            inputs.setdefault(k * interval, []).append(
                wire.Metrics(device=device, site=site, seq=seq, ts=k * interval, samples=samples))
    for st_in in case.input_status:
        inputs.setdefault(st_in.at, []).append(wire.Status(
            device=st_in.device, site=st_in.site, state=st_in.state, cause=st_in.cause,
            ts=st_in.at))
    for inv in case.input_inventory:
        inputs.setdefault(inv.at, []).append(wire.Inventory(
            device=inv.device, site=inv.site, ts=inv.at, facts=dict(inv.facts)))
    for ev in case.input_events:
        inputs.setdefault(ev.at, []).append(wire.Event(
            device=ev.device, site=ev.site, type=ev.type, ts=ev.at, fields=dict(ev.fields)))
    checks: dict[float, list[AlertCheck | TicketCheck]] = {}
    for c in [*case.alert_rule_test, *case.ticket_test]:
        checks.setdefault(c.eval_time, []).append(c)
    end = max([*checks, *inputs, 0.0])
    steps = int(math.floor(end / interval)) if interval > 0 else 0
    moments = sorted({*inputs, *checks, *(k * interval for k in range(steps + 1))})
    opened: dict[str, int] = {}
    reopened: dict[str, int] = {}
    ledger = Ledger(DeskPolicy().sla.verify_window)
    link = sorted((d.at, d.at + d.for_) for d in case.collector_disconnected)
    for t in moments:
        out: list[Transition] = []
        connected = not any(a <= t < b for a, b in link)
        out.extend(engine.tick(st, t, connected))  # the clock moved: absence is judged first
        if connected:
            for msg in inputs.get(t, ()):
                engine.observe(st, msg, t, out)
        for ch in plan(out):
            how = ledger.apply(ch)
            if how in ("open", "new"):
                opened[ch.rule] = opened.get(ch.rule, 0) + 1
            elif how == "reopen":
                reopened[ch.rule] = reopened.get(ch.rule, 0) + 1
        for c in checks.get(t, ()):
            if isinstance(c, TicketCheck):
                got = (opened.get(c.rule, 0), reopened.get(c.rule, 0))
                if got[0] != c.opened or c.reopened not in (None, got[1]):
                    result.failures.append(f"at {format_duration(t)} rule {c.rule}: expected "
                                           f"{c.opened} ticket(s) opened"
                                           + ("" if c.reopened is None else
                                              f", {c.reopened} reopened")
                                           + f", got {got[0]} opened, {got[1]} reopened")
            else:
                result.failures.extend(_check_alerts(engine, st, c, t))
    return result


def _actual(engine: Engine, st: EngineState, rule: str) -> list[dict[str, Any]]:
    out = []
    for a in st.alerts.values():
        if a.rule != rule:
            continue
        r = engine.rules[rule]
        values = {"device": a.device, "site": a.site, "value": a.value, "rule": rule,
                  "metric": r.metric, "severity": r.severity, "reason": a.reason,
                  "type": a.dev.dtype if a.dev is not None else ""}
        out.append({"device": a.device, "site": a.site, "labels": dict(a.labels),
                    "state": a.state, "flapping": a.flapping,
                    "silenced": a.silenced is not None, "suppressed": a.suppressed_by is not None,
                    "title": render(r.ticket.title, values, a.labels)})
    return out


def _matches(exp: ExpAlert, got: Mapping[str, Any]) -> bool:
    if exp.device != got["device"] or exp.labels != got["labels"] or exp.state != got["state"]:
        return False
    return all(getattr(exp, k) is None or getattr(exp, k) == got[k]
               for k in ("site", "flapping", "silenced", "suppressed", "title"))


def _show(a: Mapping[str, Any]) -> str:
    flags = [k for k in ("flapping", "silenced", "suppressed") if a.get(k)]
    labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
    return (f"{a['device']}{{{labels}}} {a['state']}" + (f" [{' '.join(flags)}]" if flags else "")
            + f" title={a['title']!r}")


def _check_alerts(engine: Engine, st: EngineState, c: AlertCheck, t: float) -> list[str]:
    actual = _actual(engine, st, c.rule)
    unmatched = list(actual)
    missing = []
    for exp in c.exp_alerts:
        hit = next((a for a in unmatched if _matches(exp, a)), None)
        if hit is None:
            missing.append(exp)
        else:
            unmatched.remove(hit)
    extra = [a for a in unmatched if a["state"] == "firing"]  # unlisted pending ones are fine
    if not missing and not extra:
        return []
    want = "; ".join(f"{e.device}{{{','.join(f'{k}={v}' for k, v in sorted(e.labels.items()))}}}"
                     f" {e.state}" for e in c.exp_alerts) or "none"
    got = "; ".join(_show(a) for a in actual) or "none"
    return [f"at {format_duration(t)} rule {c.rule}:\n      expected: {want}\n"
            f"      got:      {got}"]
