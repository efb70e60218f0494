"""Alert thresholds to draw on a device's chart, pure: from the rules that read that metric of
that device, the constants of their conditions where a condition is a simple comparison.

`value > 90` gives a line at 90 (with its comparison, `>`, for the label); `value < 5 or value
> 80` gives 5 and 80; a `clear` condition of the same shape gives its constants as `clear`
lines (the hysteresis). A condition that reads
anything but the value itself (`rate(5m) > 10`, `predict_linear(6h, 24h) >= 100 and value >
50`, anomaly scores) has no line on the value's chart and gives none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fieldwatch.collector.rules.expr import Binary, ExprError, Name, Node, Num, parse
from fieldwatch.collector.rules.functions import FUNCTIONS, METRIC_NAMES
from fieldwatch.collector.rules.model import Rule, RuleSet
from fieldwatch.collector.web.pages.chart import Threshold

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}

Bound = tuple[str, float]  # ("<", 5.0): the condition holds for values below 5


def constants(node: Node) -> list[Bound] | None:
    """(comparison, constant) of each comparison of `value` with a number, written value-first
    (`5 > value` → `<`, 5), when the whole condition is such comparisons joined by and/or;
    else None."""
    match node:
        case Binary(op=op, left=Name(name="value"), right=Num(value=c)) if op in _FLIP:
            return [(op, c)]
        case Binary(op=op, left=Num(value=c), right=Name(name="value")) if op in _FLIP:
            return [(_FLIP[op], c)]
        case Binary(op="and" | "or", left=a, right=b):
            ca, cb = constants(a), constants(b)
            return None if ca is None or cb is None else ca + cb
    return None


def of_text(text: str | None) -> list[Bound]:
    if not text:
        return []
    try:
        found = constants(parse(text, METRIC_NAMES, FUNCTIONS))
    except ExprError:
        return []
    return sorted(set(found or []), key=lambda b: (b[1], b[0]))


def applies(rule: Rule, metric: str, site: str, device: str, dtype: str,
            label_sets: Iterable[Mapping[str, str]]) -> bool:
    """Does `rule` read `metric` of this device (for at least one of its series)?"""
    if rule.kind != "metric" or rule.metric != metric or rule.anomaly is not None:
        return False
    if not rule.selector.matches_device(site, device, dtype):
        return False
    sets = list(label_sets)
    return not sets or any(rule.matches_labels(labels) for labels in sets)


def for_chart(rules: RuleSet, metric: str, site: str, device: str, dtype: str,
              label_sets: Iterable[Mapping[str, str]]) -> list[Threshold]:
    """Threshold lines of every rule that reads this chart's series, `when` before `clear`."""
    sets = list(label_sets)
    out: list[Threshold] = []
    for rule in rules.rules:
        if not applies(rule, metric, site, device, dtype, sets):
            continue
        out += [Threshold(c, rule.name, "when", op) for op, c in of_text(rule.when_text)]
        out += [Threshold(c, rule.name, "clear", op) for op, c in of_text(rule.clear_text)]
    return out
