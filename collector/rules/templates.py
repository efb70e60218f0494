"""Ticket text templates: `{device}`, `{value:.0f}`, `{labels.mount}`, `{rule}`...

Validated when rules load (an unknown placeholder is an error there) and rendered without ever
touching Python attributes: only the fields below exist.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

FIELDS = frozenset({"device", "site", "value", "rule", "metric", "severity", "reason", "type"})
_formatter = string.Formatter()


def check_template(text: str, fields: frozenset[str] = FIELDS) -> list[str]:
    """Problems in `text`, empty when it renders for every alert (or, given other `fields`,
    for everything those fields are filled from: notifications use the same grammar)."""
    problems = []
    try:
        parts = list(_formatter.parse(text))
    except ValueError as exc:
        return [f"bad template: {exc} (write {{{{ and }}}} for literal braces)"]
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if conversion:
            problems.append(f"placeholder {{{field}!{conversion}}}: conversions are not allowed")
        if field.startswith("labels."):
            if not field[len("labels."):].isidentifier():
                problems.append(f"placeholder {{{field}}}: write {{labels.NAME}}")
        elif field not in fields:
            allowed = ", ".join(f"{{{f}}}" for f in sorted(fields))
            problems.append(f"unknown placeholder {{{field}}} (use {allowed} or {{labels.NAME}})")
        if spec and field != "value":
            try:
                format("x", spec)
            except ValueError:
                problems.append(f"placeholder {{{field}:{spec}}}: bad format spec")
        elif spec:
            try:
                format(1.0, spec)
            except ValueError:
                problems.append(f"placeholder {{value:{spec}}}: bad number format")
    return problems


def render(text: str, values: Mapping[str, object], labels: Mapping[str, str]) -> str:
    """Render a checked template; a label the alert lacks renders as an empty string."""
    out = []
    for literal, field, spec, _ in _formatter.parse(text):
        out.append(literal)
        if field is None:
            continue
        if field.startswith("labels."):
            value: object = labels.get(field[len("labels."):], "")
        else:
            value = values.get(field, "")
        try:
            out.append(format(value, spec or ""))
        except (ValueError, TypeError):
            out.append(str(value))
    return "".join(out)
