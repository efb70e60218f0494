"""Rule files → a validated RuleSet, or every problem at once as `file:line:col: message`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from fieldwatch.collector.rules.expr import ExprError, compile_expr, parse
from fieldwatch.collector.rules.model import Rule, RuleSet, TicketTemplate
from fieldwatch.collector.rules.templates import check_template
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fieldwatch.durations import Duration
from fieldwatch.errors import LocatedError, Problem, RuleError
from fieldwatch.yamlmarks import Loaded, load_yaml, validation_problems

NAMES = frozenset({"value"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TicketSpec(_Strict):
    title: str
    description: str = ""
    team: str | None = None


class RuleSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=128)
    metric: str = Field(min_length=1)
    labels: dict[str, str] = {}
    when: str
    for_: Duration = Field(0.0, alias="for")
    clear: str | None = None
    severity: Literal["P1", "P2", "P3"]
    ticket: TicketSpec
    diagnostics: list[str] = []
    auto_resolve: bool = True
    on_recurrence: Literal["reopen", "new", "ignore"] = "reopen"
    verify_window: Duration | None = None


def _expr_problem(doc: Loaded, path: tuple[str | int, ...], exc: ExprError) -> Problem:
    line, col = doc.where(path)
    return Problem(doc.file, line, col + exc.col - 1, f"{path[-1]}: {exc.message}")


def rules_from_text(text: str, file: str = "<string>") -> list[Rule]:
    """Validate one rule file's text; raises RuleError listing every problem."""
    try:
        doc = load_yaml(text, file)
    except LocatedError as exc:
        raise RuleError(exc.problems) from None
    data = doc.data if doc.data is not None else {"rules": []}
    prefix: tuple[str | int, ...] = ("rules",)
    if isinstance(data, list):  # a bare list of rules is accepted too
        prefix, items = (), data
    elif isinstance(data, dict) and set(data) <= {"rules"}:
        items = data.get("rules") or []
    else:
        raise RuleError([doc.problem((), "expected `rules:` holding a list of rules")])
    if not isinstance(items, list):
        raise RuleError([doc.problem(prefix, "rules: expected a list of rules")])
    problems: list[Problem] = []
    rules: list[Rule] = []
    for i, item in enumerate(items):
        where = (*prefix, i)
        rule, found = _one_rule(doc, where, item)
        problems.extend(found)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RuleError(problems)
    return rules


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
    compiled = {}
    for key in ("when", "clear"):
        text = raw.get(key)
        if not isinstance(text, str):
            continue
        try:
            compiled[key] = compile_expr(parse(text, NAMES))
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
    line, _ = doc.where(where)
    return Rule(
        name=spec.name, metric=spec.metric, labels=dict(spec.labels), when=compiled["when"],
        when_text=spec.when, for_seconds=spec.for_, clear=compiled.get("clear"),
        clear_text=spec.clear, severity=spec.severity,
        ticket=TicketTemplate(spec.ticket.title, spec.ticket.description, spec.ticket.team),
        diagnostics=tuple(spec.diagnostics), auto_resolve=spec.auto_resolve,
        on_recurrence=spec.on_recurrence, verify_window=spec.verify_window,
        origin=f"{doc.file}:{line}",
    ), []


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
    seen: dict[str, str] = {}
    for f in rule_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
            file_rules = rules_from_text(text, str(f))
        except OSError as exc:
            problems.append(Problem(str(f), 0, 0, f"cannot read: {exc.strerror}"))
            continue
        except RuleError as exc:
            problems.extend(exc.problems)
            continue
        for r in file_rules:
            if r.name in seen:
                file_, line = r.origin.rsplit(":", 1)
                problems.append(Problem(file_, int(line), 1,
                                        f"rule name {r.name!r} already defined at {seen[r.name]}"))
                continue
            seen[r.name] = r.origin
            rules.append(r)
    if problems:
        raise RuleError(problems)
    return RuleSet(tuple(rules))
