"""Rule file validation of the new fields, and `rules test` reporting failures and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from fieldwatch.collector.rules.loader import ruleset_from_text

from fieldwatch.cli import main
from fieldwatch.errors import RuleError

BAD = """\
rules:
  - name: a
    kind: offline
    when: value > 1
    severity: P1
    ticket: {title: t}
  - name: b
    metric: m
    labels: {nic: "=~("}
    when: rate(value) > 1
    severity: P2
    ticket: {title: "{labels.nic} {nope}"}
  - name: c
    kind: absent
    severity: P3
    ticket: {title: t}
  - name: d
    event: {type: x, resolve_after: soon}
    severity: P3
    ticket: {title: t}
silences:
  - matchers: {}
    ends: 2027-01-01T00:00:00Z
devices: [oops]
"""


def test_every_new_field_error_is_located() -> None:
    with pytest.raises(RuleError) as info:
        ruleset_from_text(BAD, "f.yaml")
    got = "\n".join(str(p) for p in info.value.problems)
    for want in ("f.yaml:4:5: when: not used by offline rules",
                 "f.yaml:9:", "bad regex",
                 "f.yaml:10:", "rate() takes durations",
                 "f.yaml:12:", "{nope}",
                 "f.yaml:13:", "an absent rule needs `for`",
                 "f.yaml:18:", "resolve_after",
                 "f.yaml:22:", "at least one matcher",
                 "f.yaml:24:", "devices: expected a mapping"):
        assert want in got, (want, got)


def test_unknown_top_level_key() -> None:
    with pytest.raises(RuleError, match="f.yaml:1:1: rulez: unknown key"):
        ruleset_from_text("rulez: []\n", "f.yaml")


def test_rules_test_reports_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - {name: hot, metric: t, when: value > 5,"
                                     " severity: P1, ticket: {title: x}}\n")
    (tmp_path / "t.yaml").write_text("""
rule_files: [r.yaml]
tests:
  - name: wrong expectation
    input_series: [{series: 't{device="d"}', values: '1 9'}]
    alert_rule_test:
      - {eval_time: 1m, rule: hot, exp_alerts: []}
    ticket_test:
      - {eval_time: 1m, rule: hot, opened: 2}
""")
    assert main(["rules", "test", str(tmp_path / "t.yaml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "got:      d{} firing" in out and "expected 2 ticket(s)" in out
    assert "0 passed, 1 failed" in out
    assert main(["rules", "test", "--json", str(tmp_path / "t.yaml")]) == 1
    assert '"ok": false' in capsys.readouterr().out


def test_rules_test_bad_file_is_located(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.yaml").write_text("rule_files: []\ntests:\n  - input_series:\n"
                                     "      - {series: 'x{', values: '1'}\n")
    assert main(["rules", "test", str(tmp_path / "t.yaml")]) == 1
    assert f"{tmp_path / 't.yaml'}:4:" in capsys.readouterr().err
    (tmp_path / "u.yaml").write_text("rule_files: []\ntests:\n  - alert_rule_test:\n"
                                     "      - {eval_time: 1m, rule: nope}\n")
    assert main(["rules", "test", str(tmp_path / "u.yaml")]) == 1
    assert "unknown rule 'nope'" in capsys.readouterr().err
