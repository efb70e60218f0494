"""Notification text per channel and language: `{severity}`, `{title}`, `{oncall}`, `{labels.x}`…

Templates are checked when the config loads (an unknown placeholder is a located error) and
rendered by the rule engine's renderer (collector/rules/templates.py), which looks fields up
in a plain mapping — never Python attributes or indexes — so a template cannot reach into
objects, and a value (a device-supplied label) is text, never a template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fieldwatch.collector.desks.model import Change
from fieldwatch.collector.rules.templates import check_template as check_fields
from fieldwatch.collector.rules.templates import render

FIELDS = frozenset({
    "reference", "id", "title", "description", "severity", "priority", "site", "device",
    "team", "rule", "state", "value", "assignee", "action", "action_text", "actor", "reason",
    "step", "recipients", "oncall", "person", "channel",
})


@dataclass(frozen=True)
class Text:
    title: str
    body: str


# Shipped wording; a channel's `templates:` replaces it per language.
BUILTIN: dict[str, Text] = {
    "en": Text(title="[{severity}] {action_text}: {title}",
               body="{action_text}: {title}\n{site}/{device}\n{reason}\n"
                    "Ticket {reference} · team {team} · on call {oncall}"),
    "zh": Text(title="[{severity}] {action_text}：{title}",
               body="{action_text}：{title}\n{site}/{device}\n{reason}\n"
                    "工单 {reference} · 团队 {team} · 值班 {oncall}"),
}

ACTION_TEXT: dict[str, dict[str, str]] = {
    "en": {"open": "New ticket", "escalate": "Escalation", "acknowledge": "Acknowledged",
           "update": "Update", "resolve": "Resolved", "reopen": "Reopened", "close": "Closed"},
    "zh": {"open": "新工单", "escalate": "升级", "acknowledge": "已确认", "update": "更新",
           "resolve": "已解决", "reopen": "重新打开", "close": "已关闭"},
}


def check_template(text: str) -> list[str]:
    """Problems in `text`, empty when it renders for every notification."""
    return check_fields(text, FIELDS)


def candidates(language: str) -> list[str]:
    """`zh-Hans-CN` → [`zh-hans-cn`, `zh`]: the exact tag first, then its primary language."""
    tag = language.lower().replace("_", "-")
    primary = tag.split("-")[0]
    return [tag] if primary == tag else [tag, primary]


def pick(language: str, fallback: str, own: Mapping[str, Text]) -> tuple[str, Text]:
    """The text for `language`: the channel's own, else the shipped one, else the same for
    `fallback` (the channel's or the config's language), else English."""
    own = {k.lower().replace("_", "-"): v for k, v in own.items()}
    for lang in [*candidates(language), *candidates(fallback), "en"]:
        for table in (own, BUILTIN):
            if lang in table:
                return lang, table[lang]
    return "en", BUILTIN["en"]  # pragma: no cover - "en" is always shipped


def values(change: Change, language: str, recipients: list[str], oncall: str | None,
           person: str | None, channel: str) -> dict[str, object]:
    """Every placeholder's value for one notification (text, or the ticket's latest value)."""
    t, ev = change.ticket, change.event
    data: Mapping[str, Any] = ev.get("data") if isinstance(ev.get("data"), dict) else {}

    def s(v: object) -> str:
        return "" if v is None else str(v)

    value = t.get("last_value")
    return {
        "reference": change.reference, "id": s(t.get("id")), "title": s(t.get("title")),
        "description": s(t.get("description")),
        "severity": s(t.get("priority") or t.get("severity")),
        "priority": s(t.get("priority") or t.get("severity")), "site": s(t.get("site")),
        "device": s(t.get("device")), "team": s(t.get("team")), "rule": s(t.get("rule")),
        "state": s(t.get("state")), "value": value if isinstance(value, int | float) else s(value),
        "assignee": s(t.get("assignee")), "action": change.action,
        "action_text": ACTION_TEXT.get(language, ACTION_TEXT["en"]).get(change.action,
                                                                        change.action),
        "actor": s(ev.get("actor")), "reason": s(ev.get("reason")), "step": s(data.get("step")),
        "recipients": ", ".join(recipients), "oncall": s(oncall), "person": s(person),
        "channel": channel,
    }


def render_text(text: Text, vals: Mapping[str, object], labels: Mapping[str, str]) -> Text:
    safe = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
    return Text(title=render(text.title, vals, safe).strip(),
                body="\n".join(line.rstrip() for line in render(text.body, vals,
                                                                 safe).splitlines()
                               if line.strip()))
