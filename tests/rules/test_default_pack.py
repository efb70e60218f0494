"""The default pack reads only what shipped sources and profiles emit, and its unit tests feed
only label sets those sources produce (the catalogue is derived by running them: catalogue.py).
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

import pytest
from fieldwatch.collector.rules import testing
from fieldwatch.collector.rules.loader import load_rules, ruleset_from_text
from fieldwatch.collector.rules.model import Rule
from fieldwatch.collector.rules.notation import parse_selector

from fieldwatch.yamlmarks import load_yaml
from tests.conftest import _require
from tests.rules import catalogue as C

RULES = Path(__file__).parents[2] / "rules"


@pytest.fixture(scope="module")
def emitted() -> C.Catalogue:
    _require("snmpd")
    return C.merge(C.agent_catalogue(), C.profile_catalogue(C.shipped_profiles().values()),
                   C.snmpd_catalogue())


def _placeholders(text: str) -> set[str]:
    return {f[len("labels."):] for _, f, _, _ in string.Formatter().parse(text)
            if f and f.startswith("labels.")}


def _readable_sets(rule: Rule, sets: Iterable[frozenset[str]]) -> list[frozenset[str]]:
    """The emitted label sets the rule's selector can match (an equality matcher on a
    non-empty value needs the label)."""
    need = {k for k, m in rule.selector.labels.items() if m.op == "=" and m.value}
    return [s for s in sets if need <= s]


def rule_problems(rules: Iterable[Rule], cat: C.Catalogue) -> list[str]:
    """Every reference of a rule to a metric or label that nothing shipped emits."""
    out = []
    for r in rules:
        texts = [r.ticket.title, r.ticket.description, *r.ticket.routing.values()]
        used = set().union(*(_placeholders(t) for t in texts))
        if r.kind == "event":
            out.append(f"{r.origin}: {r.name}: event rules are not checked here yet")
            continue
        if not r.metric:  # offline, or absent without a metric: alerts carry no labels
            out.extend(f"{r.origin}: {r.name}: {{labels.{k}}} but its alerts have no labels"
                       for k in sorted(used))
            continue
        if r.metric not in cat:
            out.append(f"{r.origin}: {r.name}: metric {r.metric} is emitted by no shipped "
                       "source or profile")
            continue
        keys = set().union(*cat[r.metric])
        for k in sorted(set(r.selector.labels) - keys):
            out.append(f"{r.origin}: {r.name}: matcher on label {k!r}, which {r.metric} never "
                       f"has (it has {sorted(keys)})")
        readable = _readable_sets(r, cat[r.metric])
        for k in sorted(used):
            lacking = [sorted(s) for s in readable if k not in s]
            if lacking:
                out.append(f"{r.origin}: {r.name}: {{labels.{k}}} renders empty for "
                           f"{r.metric} series labelled {lacking}")
    return out


def test_problem_finder_catches_what_the_issue_found(emitted: C.Catalogue) -> None:
    """The two faults of issue 12 in the old pack: each is reported."""
    old = ruleset_from_text("""
rules:
  - name: fan_stopped
    metric: fan.rpm
    when: value < 100
    severity: P2
    ticket: {title: "Fan {labels.fan} on {device} stopped"}
  - name: ups_battery_low
    metric: ups.battery_charge_percent
    when: value < 30
    severity: P1
    ticket: {title: "UPS {device}"}
  - name: temp_mount
    metric: temp.celsius
    labels: {mount: /}
    when: value > 1
    severity: P3
    ticket: {title: t}
  - name: temp_index
    metric: temp.celsius
    when: value > 1
    severity: P3
    ticket: {title: "{labels.index}"}
  - name: down
    kind: offline
    severity: P1
    ticket: {title: "{labels.nic}"}
""")
    got = "\n".join(rule_problems(old.rules, emitted))
    assert "fan_stopped: {labels.fan} renders empty for fan.rpm series labelled" in got
    assert "ups_battery_low: metric ups.battery_charge_percent is emitted by no" in got
    assert "temp_mount: matcher on label 'mount'" in got
    assert "temp_index: {labels.index} renders empty for temp.celsius series labelled " \
           "[['sensor']]" in got  # the agent's sensors have no index; ENTITY-SENSOR has
    assert "down: {labels.nic} but its alerts have no labels" in got


def test_default_rules_read_only_what_is_emitted(emitted: C.Catalogue) -> None:
    assert rule_problems(load_rules([RULES / "default.yaml"]).rules, emitted) == []


def test_default_rules_unit_tests_feed_emitted_label_sets(emitted: C.Catalogue) -> None:
    ruleset = load_rules([RULES / "default.yaml"])
    problems = []
    files = sorted((RULES / "tests").glob("*.yaml"))
    assert files
    for path in files:
        spec = testing.TestFile.model_validate(load_yaml(path.read_text(), str(path)).data)
        for case in spec.tests:
            where = f"{path.name}: {case.name!r}"
            for s in case.input_series:
                name, labels = parse_selector(s.series)
                keys = frozenset(labels) - {"device", "site"}
                if name not in emitted:
                    problems.append(f"{where}: series {name} is emitted by nothing shipped")
                elif keys not in emitted[name]:
                    problems.append(f"{where}: {name} labelled {sorted(keys)}; sources emit "
                                    f"{sorted(sorted(k) for k in emitted[name])}")
            for check in case.alert_rule_test:
                rule = ruleset.get(check.rule)
                assert rule is not None
                for exp in check.exp_alerts:
                    keys = frozenset(exp.labels)
                    if rule.metric and keys not in emitted.get(rule.metric, set()):
                        problems.append(f"{where}: expects {rule.name} alert labelled "
                                        f"{sorted(keys)}; {rule.metric} never has that set")
    assert problems == []


def test_every_default_rule_has_a_unit_test() -> None:
    tested = set()
    for path in (RULES / "tests").glob("*.yaml"):
        spec = testing.TestFile.model_validate(load_yaml(path.read_text(), str(path)).data)
        tested |= {c.rule for case in spec.tests for c in case.alert_rule_test}
    names = {r.name for r in load_rules([RULES / "default.yaml"]).rules}
    assert names - tested == set()
    assert all(r.ok for r in testing.run_test_files([RULES / "tests"]))


def test_the_catalogue_covers_every_source_the_agent_has(emitted: C.Catalogue) -> None:
    covered = set(C.agent_sources(C.FakeClock())) | C.OPERATOR_NAMED
    assert C.registry_names() <= covered
    # and it holds what the sources really said, e.g. the hwmon fixture's fans
    assert emitted["fan.rpm"] >= {frozenset({"sensor"}), frozenset({"sensor", "index"})}
    assert frozenset({"mount"}) in emitted["disk.used_percent"]
    assert frozenset() in emitted["snmp.up"]
