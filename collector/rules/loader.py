"""Rule files → a validated RuleSet, or every problem at once as `file:line:col: message`.

A file holds `rules:` (a list), and optionally `silences:` (maintenance windows) and
`devices:` (type and parent of devices, for selectors and dependencies). A bare list is a
list of rules.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from fieldwatch.collector.rules.anomaly import AnomalySpec
from fieldwatch.collector.rules.expr import ExprError, compile_expr, parse, quiet_range, windows_in
from fieldwatch.collector.rules.functions import ANOMALY_NAMES, FUNCTIONS, METRIC_NAMES
from fieldwatch.collector.rules.model import (
    DeviceInfo,
    EventSpec,
    Flapping,
    Rule,
    RuleSet,
    Silence,
    TicketTemplate,
)
from fieldwatch.collector.rules.selectors import Matcher, Selector, parse_matcher
from fieldwatch.collector.rules.templates import check_template
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fieldwatch.durations import Duration
from fieldwatch.errors import LocatedError, Problem, RuleError
from fieldwatch.models import validation_problems
from fieldwatch.yamlmarks import Loaded, load_yaml

NAMES = METRIC_NAMES
NO_FUNCTIONS: dict[str, Any] = {}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _matcher(v: object) -> Matcher:
    return parse_matcher(v)


class TicketSpec(_Strict):
    title: str
    description: str = ""
    team: str | None = None
    routing: dict[str, str] = {}


class AnomalyModel(_Strict):
    z: float = Field(4.0, gt=0)  # the default condition: abs(zscore) > z
    half_life: Duration = 3600.0
    warmup: int = Field(30, ge=2)
    season: Duration = 0.0
    slots: int = Field(24, ge=1, le=168)


class FlappingModel(_Strict):
    changes: int = Field(6, ge=2)
    window: Duration = 3600.0


class EventModel(_Strict):
    type: str
    fields: dict[str, str | int | float | bool] = {}
    labels_from: list[str] = []
    clear_type: str | None = None
    resolve_after: Duration = 0.0


class RuleSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=128)
    kind: Literal["metric", "absent", "offline", "event"] | None = None
    metric: str | None = Field(None, min_length=1)
    labels: dict[str, str | int | float] = {}
    device: str | None = None
    site: str | None = None
    type: str | None = None
    when: str | None = None
    for_: Duration = Field(0.0, alias="for")
    clear: str | None = None
    keep_firing_for: Duration = 0.0
    update_interval: Duration = 0.0
    no_data_for: Duration = 0.0
    hold: Duration = 30.0
    stale_after: Duration | None = None
    severity: Literal["P1", "P2", "P3"]
    ticket: TicketSpec
    diagnostics: list[str] = []
    auto_resolve: bool = True
    on_recurrence: Literal["reopen", "new", "ignore"] = "reopen"
    verify_window: Duration | None = None
    anomaly: AnomalyModel | None = None
    flapping: FlappingModel | Literal[False] = FlappingModel()
    event: EventModel | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, v: object) -> object:
        if isinstance(v, dict):
            for k, m in v.items():
                _matcher(m)  # raises ValueError with the reason, located by the caller
                if not isinstance(k, str):
                    raise ValueError("label names are strings")
        return v

    @field_validator("device", "site", "type")
    @classmethod
    def _match(cls, v: str | None) -> str | None:
        if v is not None:
            _matcher(v)
        return v

    @field_validator("event", mode="before")
    @classmethod
    def _event_short(cls, v: object) -> object:
        return {"type": v} if isinstance(v, str) else v


class SilenceModel(_Strict):
    id: str | None = None
    matchers: dict[str, str | int | float]
    starts: float | dt.datetime | None = None
    ends: float | dt.datetime
    author: str = ""
    reason: str = ""

    @field_validator("matchers")
    @classmethod
    def _m(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("a silence needs at least one matcher (it would mute everything)")
        for m in v.values():
            _matcher(m)
        return v


class DeviceModel(_Strict):
    type: str = ""
    parent: str | None = None


def _epoch(v: float | dt.datetime | None, default: float) -> float:
    if v is None:
        return default
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.UTC)
        return v.timestamp()
    return float(v)


def _expr_problem(doc: Loaded, path: tuple[str | int, ...], exc: ExprError) -> Problem:
    line, col = doc.where(path)
    return Problem(doc.file, line, col + exc.col - 1, f"{path[-1]}: {exc.message}")


def rules_from_text(text: str, file: str = "<string>") -> list[Rule]:
    """Validate one rule file's text; raises RuleError listing every problem."""
    return list(ruleset_from_text(text, file).rules)


def ruleset_from_text(text: str, file: str = "<string>") -> RuleSet:
    """Rules, silences and devices of one file; raises RuleError listing every problem."""
    try:
        doc = load_yaml(text, file)
    except LocatedError as exc:
        raise RuleError(exc.problems) from None
    data = doc.data if doc.data is not None else {"rules": []}
    prefix: tuple[str | int, ...] = ("rules",)
    if isinstance(data, list):  # a bare list of rules is accepted too
        prefix, items, data = (), data, {}
    elif isinstance(data, dict) and set(data) <= {"rules", "silences", "devices"}:
        items = data.get("rules") or []
    else:
        extra = sorted(set(data) - {"rules", "silences", "devices"}) if isinstance(
            data, dict) else []
        if extra:
            raise RuleError([doc.problem((extra[0],), f"{extra[0]}: unknown key (a rule file "
                                         "holds rules, silences and devices)", at_key=True)])
        raise RuleError([doc.problem((), "expected `rules:` holding a list of rules")])
    if not isinstance(items, list):
        raise RuleError([doc.problem(prefix, "rules: expected a list of rules")])
    problems: list[Problem] = []
    rules: list[Rule] = []
    for i, item in enumerate(items):
        rule, found = _one_rule(doc, (*prefix, i), item)
        problems.extend(found)
        if rule is not None:
            rules.append(rule)
    silences = _silences(doc, data.get("silences"), problems, file)
    devices = _devices(doc, data.get("devices"), problems)
    if problems:
        raise RuleError(problems)
    return RuleSet(tuple(rules), tuple(silences), devices)


def _silences(doc: Loaded, items: object, problems: list[Problem], file: str) -> list[Silence]:
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(doc.problem(("silences",), "silences: expected a list"))
        return []
    out = []
    for i, item in enumerate(items):
        try:
            m = SilenceModel.model_validate(item)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, doc, ("silences", i)))
            continue
        starts, ends = _epoch(m.starts, 0.0), _epoch(m.ends, 0.0)
        if ends <= starts:
            problems.append(doc.problem(("silences", i, "ends"), "ends: must be after starts"))
            continue
        line, _ = doc.where(("silences", i))
        out.append(Silence(m.id or f"{Path(file).name}:{line}",
                           {k: _matcher(v) for k, v in m.matchers.items()},
                           starts, ends, m.author, m.reason))
    return out


def _devices(doc: Loaded, items: object, problems: list[Problem]) -> dict[str, DeviceInfo]:
    if items is None:
        return {}
    if not isinstance(items, dict):
        problems.append(doc.problem(("devices",), "devices: expected a mapping of device ids"))
        return {}
    out = {}
    for name, item in items.items():
        try:
            m = DeviceModel.model_validate(item)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, doc, ("devices", name)))
            continue
        out[str(name)] = DeviceInfo(m.type, m.parent)
    return out


def _kind(raw: dict[str, Any]) -> str:
    k = raw.get("kind")
    if isinstance(k, str):
        return k
    return "event" if "event" in raw else "metric"


_ONLY: dict[str, tuple[str, ...]] = {  # keys that make sense only for some kinds
    "when": ("metric",), "clear": ("metric",), "keep_firing_for": ("metric",),
    "anomaly": ("metric",), "event": ("event",), "no_data_for": ("offline",),
    "hold": ("offline", "absent"), "stale_after": ("metric",),
}


def _one_rule(doc: Loaded, where: tuple[str | int, ...],
              item: object) -> tuple[Rule | None, list[Problem]]:
    """Check one rule entry completely, so a file's every mistake shows in one run."""
    problems: list[Problem] = []
    spec: RuleSpec | None = None
    try:
        spec = RuleSpec.model_validate(item)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, doc, where))
    raw = item if isinstance(item, dict) else {}
    kind = _kind(raw)
    for key, kinds in _ONLY.items():
        if key in raw and kind not in kinds:
            problems.append(doc.problem((*where, key), f"{key}: not used by {kind} rules "
                                        f"(only {', '.join(kinds)})", at_key=True))
    if kind == "metric" and not raw.get("metric"):
        problems.append(doc.problem(where, "metric: required key is missing"))
    if kind == "metric" and "when" not in raw and "anomaly" not in raw:
        problems.append(doc.problem(where, "when: required key is missing"))
    if kind == "absent" and not raw.get("for"):
        problems.append(doc.problem(where, "for: an absent rule needs `for` (how long silent)"))
    if kind == "event" and "event" not in raw:
        problems.append(doc.problem(where, "event: required key is missing"))
    names = ANOMALY_NAMES if "anomaly" in raw else METRIC_NAMES
    compiled, nodes = {}, {}
    for key in ("when", "clear"):
        text = raw.get(key)
        if not isinstance(text, str):
            continue
        try:
            nodes[key] = parse(text, names, FUNCTIONS)
            compiled[key] = compile_expr(nodes[key], FUNCTIONS)
        except ExprError as exc:
            problems.append(_expr_problem(doc, (*where, key), exc))
    ticket = raw.get("ticket") if isinstance(raw.get("ticket"), dict) else {}
    for key in ("title", "description"):
        text = ticket.get(key)
        if isinstance(text, str):
            problems.extend(doc.problem((*where, "ticket", key), f"ticket.{key}: {msg}")
                            for msg in check_template(text))
    if problems or spec is None:
        return None, problems
    return _build(doc, where, spec, kind, compiled, nodes, raw), []


def _build(doc: Loaded, where: tuple[str | int, ...], spec: RuleSpec, kind: str,
           compiled: dict[str, Any], nodes: dict[str, Any], raw: dict[str, Any]) -> Rule:
    line, _ = doc.where(where)
    anomaly = None
    if spec.anomaly is not None:
        a = spec.anomaly
        anomaly = AnomalySpec(a.half_life, a.warmup, a.season, a.slots)
        if "when" not in compiled:
            text = f"abs(zscore) > {a.z:g}"
            nodes["when"] = parse(text, ANOMALY_NAMES, FUNCTIONS)
            compiled["when"] = compile_expr(nodes["when"], FUNCTIONS)
    when = compiled.get("when", _never)
    window = max((w for n in nodes.values() for w in windows_in(n)), default=0.0)
    quiet = None
    if kind == "metric" and anomaly is None and window == 0 and "when" in nodes:
        quiet = quiet_range(nodes["when"])
    event = None
    if spec.event is not None:
        e = spec.event
        event = EventSpec(_matcher(e.type), {k: _matcher(v) for k, v in e.fields.items()},
                          tuple(e.labels_from),
                          _matcher(e.clear_type) if e.clear_type else None, e.resolve_after)
    selector = Selector(
        {k: _matcher(v) for k, v in spec.labels.items()},
        _matcher(spec.device) if spec.device else None,
        _matcher(spec.site) if spec.site else None,
        _matcher(spec.type) if spec.type else None,
    )
    flap = None if spec.flapping is False else Flapping(spec.flapping.changes,
                                                        spec.flapping.window)
    return Rule(
        name=spec.name, metric=spec.metric or "", kind=kind,  # type: ignore[arg-type]
        labels={k: str(v) for k, v in spec.labels.items()}, selector=selector,
        when=when, when_text=spec.when or (f"abs(zscore) > {spec.anomaly.z:g}"
                                           if spec.anomaly else ""),
        for_seconds=spec.for_, clear=compiled.get("clear"), clear_text=spec.clear,
        keep_firing_for=spec.keep_firing_for, update_interval=spec.update_interval,
        severity=spec.severity,
        ticket=TicketTemplate(spec.ticket.title, spec.ticket.description, spec.ticket.team,
                              dict(spec.ticket.routing)),
        diagnostics=tuple(spec.diagnostics), auto_resolve=spec.auto_resolve,
        on_recurrence=spec.on_recurrence, verify_window=spec.verify_window,
        origin=f"{doc.file}:{line}", window=window, quiet=quiet, anomaly=anomaly,
        flapping=flap, no_data_for=spec.no_data_for, hold=spec.hold, event=event,
        stale_after=spec.stale_after,
        signature=json.dumps(raw, sort_keys=True, default=str),
    )


def _never(ctx: object) -> bool:
    return False


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule files named: files as given, directories' `*.yaml`/`*.yml` (not recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml")))
        else:
            out.append(p)
    return out


def load_rules(paths: Iterable[str | Path]) -> RuleSet:
    """Every rule in `paths`; names must be unique across files. Raises RuleError."""
    problems: list[Problem] = []
    rules: list[Rule] = []
    silences = []
    devices = {}
    seen: dict[str, str] = {}
    for f in rule_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
            part = ruleset_from_text(text, str(f))
        except OSError as exc:
            problems.append(Problem(str(f), 0, 0, f"cannot read: {exc.strerror}"))
            continue
        except RuleError as exc:
            problems.extend(exc.problems)
            continue
        for r in part.rules:
            if r.name in seen:
                file_, line = r.origin.rsplit(":", 1)
                problems.append(Problem(file_, int(line), 1,
                                        f"rule name {r.name!r} already defined at {seen[r.name]}"))
                continue
            seen[r.name] = r.origin
            rules.append(r)
        silences.extend(part.silences)
        devices.update(part.devices)
    if problems:
        raise RuleError(problems)
    return RuleSet(tuple(rules), tuple(silences), devices)
