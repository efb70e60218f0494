"""The one-string selector: the rule language's matchers in PromQL's spelling."""

from __future__ import annotations

import pytest
from fieldwatch.collector.history.selector import (
    SelectorError,
    format_selector,
    matcher,
    parse_selector,
)
from fieldwatch.collector.rules.selectors import Selector
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize(("text", "metric", "sel"), [
    ("temp", "temp", Selector()),
    ("  disk.used_percent {}  ", "disk.used_percent", Selector()),
    ('disk.used_percent{mount="/"}', "disk.used_percent", Selector({"mount": matcher("=", "/")})),
    ('cpu{device="web-01", site!="lab", type=~"ups|pdu", nic!~"lo|docker.*",}', "cpu",
     Selector({"nic": matcher("!~", "lo|docker.*")}, matcher("=", "web-01"),
              matcher("!=", "lab"), matcher("=~", "ups|pdu"))),
    (r'x{a="say \"hi\"", b="back\\slash"}', "x",
     Selector({"a": matcher("=", 'say "hi"'), "b": matcher("=", "back\\slash")})),
    ('x{a="!=not an operator"}', "x", Selector({"a": matcher("=", "!=not an operator")})),
])
def test_parse(text: str, metric: str, sel: Selector) -> None:
    assert parse_selector(text) == (metric, sel)


def test_regex_matchers_match_whole_values() -> None:
    _, sel = parse_selector('x{device=~"web-.*", nic!~"lo"}')
    assert sel.matches_device("s", "web-3", "") and not sel.matches_device("s", "db-web-3", "")
    assert sel.matches_labels({"nic": "eth0"}) and not sel.matches_labels({"nic": "lo"})


@pytest.mark.parametrize(("text", "where"), [
    ("", "column 1: expected a metric name"),
    ("{a=\"b\"}", "column 1: expected a metric name"),
    ("x{a}", "column 4: expected =, !=, =~ or !~"),
    ("x{a=b}", 'column 5: expected a "double-quoted" value'),
    ('x{a="b" c="d"}', "column 9: expected ',' or '}'"),
    ('x{a="b"', "column 8: expected ',' or '}'"),
    ('x{a="b", a="c"}', "column 10: a is matched twice"),
    ('x{=~"b"}', "column 3: expected a label name"),
    ('x{a="b"} y', "column 10: unexpected 'y'"),
    ('x{a=~"("}', "bad regex"),
])
def test_errors_say_where(text: str, where: str) -> None:
    with pytest.raises(SelectorError, match=where.replace("(", r"\(")):
        parse_selector(text)


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,12}", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
matchers = st.builds(matcher, st.sampled_from(["=", "!="]), texts) | st.builds(
    matcher, st.sampled_from(["=~", "!~"]), st.sampled_from(["a.*", "x|y", "[0-9]+", ""]))


@settings(max_examples=200, deadline=None)
@given(names, st.dictionaries(names.filter(lambda n: n not in ("device", "site", "type")),
                              matchers, max_size=3),
       st.none() | matchers, st.none() | matchers)
def test_format_then_parse_is_the_identity(metric: str, labels: dict, device: object,
                                           site: object) -> None:
    sel = Selector(labels, device, site)  # type: ignore[arg-type]
    assert parse_selector(format_selector(metric, sel)) == (metric, sel)
