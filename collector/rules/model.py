"""Validated rules: frozen values the engine evaluates. Built only by the loader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fieldwatch.collector.rules.expr import Compiled

SEVERITIES = ("P1", "P2", "P3")


@dataclass(frozen=True)
class TicketTemplate:
    title: str
    description: str = ""
    team: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    when: Compiled
    when_text: str
    severity: str
    ticket: TicketTemplate
    labels: Mapping[str, str] = field(default_factory=dict)  # label matchers (equality)
    for_seconds: float = 0.0
    clear: Compiled | None = None  # None: the alert clears when `when` is false
    clear_text: str | None = None
    diagnostics: tuple[str, ...] = ()
    auto_resolve: bool = True
    on_recurrence: str = "reopen"  # reopen | new | ignore (a recurrence in the window)
    verify_window: float | None = None  # None: the SLA policy's verify_window
    origin: str = ""  # file:line where the rule is defined

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()

    def by_metric(self) -> dict[str, tuple[Rule, ...]]:
        out: dict[str, list[Rule]] = {}
        for r in self.rules:
            out.setdefault(r.metric, []).append(r)
        return {k: tuple(v) for k, v in out.items()}

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)
