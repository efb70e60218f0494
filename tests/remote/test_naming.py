"""Names on the way out (metric and label names) and on the way back (PromQL selectors)."""

from __future__ import annotations

import pytest
from fieldwatch.collector.history import Query
from fieldwatch.collector.history.remote_query import promql_string, selector
from fieldwatch.collector.history.remote_write import label_name, metric_name, series_labels
from fieldwatch.collector.rules.selectors import Selector, parse_matcher
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize(("name", "prom"), [
    ("disk.used_percent", "disk_used_percent"),
    ("net.rx_errors_total", "net_rx_errors_total"),
    ("agent.buffer_queued", "agent_buffer_queued"),
    ("ups:load", "ups:load"),
    ("temp-°C", "temp__C"),
    ("1wire.temp", "_1wire_temp"),
    ("", "_"),
])
def test_metric_names(name: str, prom: str) -> None:
    assert metric_name(name) == prom


@pytest.mark.parametrize(("name", "prom"), [
    ("mount", "mount"), ("if.name", "if_name"), ("a:b", "a_b"), ("9lives", "_9lives"),
    ("site", "exported_site"), ("device", "exported_device"),
    ("__name__", "exported___name__"), ("__x", "exported___x"), ("", "_"),
])
def test_label_names(name: str, prom: str) -> None:
    assert label_name(name) == prom


def test_series_labels_are_sorted_and_empty_values_left_out() -> None:
    assert series_labels("hq", "web-01", "disk.used_percent",
                         {"mount": "/", "fs": "", "site": "other"}) == (
        ("__name__", "disk_used_percent"), ("device", "web-01"), ("exported_site", "other"),
        ("mount", "/"), ("site", "hq"))


_NAME = st.text(min_size=0, max_size=30)


@settings(max_examples=200, deadline=None)
@given(_NAME)
def test_every_name_becomes_a_valid_prometheus_name(name: str) -> None:
    import re

    assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", metric_name(name))
    assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label_name(name))


@pytest.mark.parametrize(("text", "literal"), [
    ("plain", '"plain"'), ('say "hi"', r'"say \"hi\""'), ("C:\\x", r'"C:\\x"'),
    ("a\nb\tc\r", r'"a\nb\tc\r"'), ("ünï", '"ünï"'),
])
def test_promql_strings(text: str, literal: str) -> None:
    assert promql_string(text) == literal


def test_selector_carries_every_matcher_escaped() -> None:
    sel = Selector(labels={"mount": parse_matcher("=~/var/.*"), "fs": parse_matcher("!=tmpfs"),
                           "note": parse_matcher('a"b')},
                   device=parse_matcher("!~lab-.*"), site=parse_matcher("hq"))
    assert selector(Query("disk.used_percent", sel)) == (
        '{__name__="disk_used_percent",site="hq",device!~"lab-.*",fs!="tmpfs",'
        'mount=~"/var/.*",note="a\\"b"}')


def test_regex_backslashes_survive_the_string_escape() -> None:
    sel = Selector(labels={"nic": parse_matcher(r"=~eth\d+")})
    assert selector(Query("net.rx", sel)) == r'{__name__="net_rx",nic=~"eth\\d+"}'
