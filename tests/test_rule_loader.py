from pathlib import Path

import pytest
from fieldwatch.collector.rules.expr import ExprError, compile_expr, parse
from fieldwatch.collector.rules.loader import load_rules, rules_from_text
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch.cli import main
from fieldwatch.errors import RuleError

BROKEN = """\
rules:
  - name: d
    metric: disk.used_percent
    when: value >> 90
    fro: 5m
    severity: P4
    ticket: {title: "Disk {labelz}"}
"""


def test_every_problem_reported_at_once_with_locations() -> None:
    with pytest.raises(RuleError) as info:
        rules_from_text(BROKEN, "x.yaml")
    lines = [str(p) for p in info.value.problems]
    assert any(s.startswith("x.yaml:4:") and "when:" in s for s in lines)
    assert any(s.startswith("x.yaml:5:5: fro: unknown key") for s in lines)
    assert any(s.startswith("x.yaml:6:") and "P1" in s for s in lines)
    assert any(s.startswith("x.yaml:7:") and "{labelz}" in s for s in lines)


def test_yaml_syntax_error_located() -> None:
    with pytest.raises(RuleError) as info:
        rules_from_text("rules:\n  - name: [unclosed\n", "y.yaml")
    assert str(info.value.problems[0]).startswith("y.yaml:")
    assert "invalid YAML" in str(info.value)


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    rule = ("rules:\n  - {name: same, metric: m, when: value > 1, severity: P3,"
            " ticket: {title: t}}\n")
    (tmp_path / "a.yaml").write_text(rule)
    (tmp_path / "b.yaml").write_text(rule)
    with pytest.raises(RuleError, match="already defined"):
        load_rules([tmp_path])


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text(BROKEN)
    assert main(["rules", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.yaml'}:5:5: fro: unknown key" in err
    assert main(["rules", "check", str(Path(__file__).parents[1] / "rules")]) == 0


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("value > 90", 95, True), ("value > 90", 90, False),
    ("value >= 10 and value < 20", 15, True), ("not value == 3", 3, False),
    ("value * 2 - 1 > 8 or value % 2 == 1", 3, True), ("(value + 1) / 0 > 1", 1, False),
    ("-value < -5", 6, True),
])
def test_expressions(text: str, value: float, expected: bool) -> None:
    class Ctx:
        pass
    ctx = Ctx()
    ctx.value = value  # type: ignore[attr-defined]
    assert compile_expr(parse(text))(ctx) is expected


@given(st.text(max_size=80))
def test_parser_never_raises_anything_but_expr_error(text: str) -> None:
    try:
        parse(text)
    except ExprError as exc:
        assert 1 <= exc.col <= len(text) + 1


@pytest.mark.parametrize("attack", ["__import__('os')", "value.__class__", "exec('x')",
                                    "value[0]", "lambda: 1", "open('/etc/passwd')"])
def test_no_route_to_python(attack: str) -> None:
    with pytest.raises(ExprError):
        parse(attack)
