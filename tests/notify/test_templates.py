"""Notification text: languages with fallback, and rendering that never evaluates data."""

from __future__ import annotations

import dataclasses

import pytest
from fieldwatch.collector.notify.templates import (
    BUILTIN,
    Text,
    check_template,
    pick,
    render_text,
    values,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.notify.helpers import change


@pytest.mark.parametrize("language, fallback, own, want", [
    ("zh-Hans-CN", "en", {}, "zh"),  # the primary language when the tag is not known
    ("de", "zh", {}, "zh"),  # no German shipped: the channel's language
    ("de", "fr", {}, "en"),  # neither: English
    ("de", "en", {"de": Text("T", "B")}, "de"),  # the channel's own
    ("zh_CN", "en", {"zh-CN": Text("T", "B")}, "zh-cn"),
])
def test_pick(language: str, fallback: str, own: dict[str, Text], want: str) -> None:
    assert pick(language, fallback, own)[0] == want


def test_shipped_templates_check_clean() -> None:
    for t in BUILTIN.values():
        assert check_template(t.title) == [] and check_template(t.body) == []


@pytest.mark.parametrize("text", ["{title.__class__}", "{labels[0]}", "{0}", "{}",
                                  "{value!r}", "{title", "{ticket}"])
def test_unsafe_or_unknown_placeholders_are_refused(text: str) -> None:
    assert check_template(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_device_text_is_never_a_template(label: str) -> None:
    """Titles and labels come from devices: whatever they hold comes out as it is."""
    ch = change(title=label, labels={"sensor": label})
    vals = values(ch, "en", [], None, None, "c")
    out = render_text(Text("{title}|{labels.sensor}", "{title}"), vals, {"sensor": label})
    assert out.title == f"{label}|{label}".strip()


def test_empty_lines_are_dropped_from_the_body() -> None:
    ch = change()
    ch = dataclasses.replace(ch, event={**ch.event, "reason": ""})
    out = render_text(BUILTIN["en"], values(ch, "en", [], None, None, "c"), {})
    assert out.body.splitlines() == ["New ticket: Pump hot", "plant-north/pump-01",
                                     "Ticket fieldwatch-7 · team hardware · on call"]
