"""The expression grammar and the test notation under hypothesis: any text gives a value or
a clean error, never another exception, and no text reaches Python."""

from __future__ import annotations

import builtins
import contextlib
import math
from pathlib import Path

import pytest
from fieldwatch.collector.rules.expr import ExprError, compile_expr, parse, quiet_range
from fieldwatch.collector.rules.functions import ANOMALY_NAMES, FUNCTIONS, EvalCtx
from fieldwatch.collector.rules.notation import parse_selector, parse_series
from hypothesis import given, settings
from hypothesis import strategies as st

ALPHABET = st.sampled_from(list("valuezscorebasrtedp_()<>=!+-*/%., 0123456789smhdw\"'[]{}:\\")
                           + ["and ", "or ", "not ", "rate(", "avg_over(", "5m", "value",
                              "predict_linear(", "__class__", "import", "\n", "é"])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_grammar_text_gives_a_tree_or_expr_error(text: str) -> None:
    try:
        node = parse(text, ANOMALY_NAMES, FUNCTIONS)
    except ExprError as exc:
        assert 1 <= exc.col <= len(text) + 1
        return
    ctx = EvalCtx()
    ctx.value = 3.0
    compile_expr(node, FUNCTIONS)(ctx)  # evaluates without raising: NaN, never an error


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_unicode_gives_only_expr_error(text: str) -> None:
    with contextlib.suppress(ExprError):
        parse(text, ANOMALY_NAMES, FUNCTIONS)


def test_deep_nesting_is_a_clean_error() -> None:
    with pytest.raises(ExprError):
        parse("(" * 600 + "value" + ")" * 600)
    with pytest.raises(ExprError):
        parse("-" * 5000 + "value")


@pytest.mark.parametrize("attack", [
    "__import__('os')", "value.__class__", "exec('x')", "eval(value)", "value[0]",
    "getattr(value, 'x')", "rate(value)", "rate(5m).real", "abs(5m)", "rate(0s) > 1",
    "zscore > 1",  # anomaly names only for anomaly rules
])
def test_no_route_to_python(attack: str) -> None:
    with pytest.raises(ExprError):
        parse(attack, frozenset({"value"}), FUNCTIONS)


def test_compiling_never_touches_eval_or_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("eval/exec reached")
    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    monkeypatch.setattr(builtins, "compile", boom)
    ctx = EvalCtx()
    ctx.value = 5
    node = parse("abs(value - 3) > 1 and not rate(5m) > 1", frozenset({"value"}), FUNCTIONS)
    assert compile_expr(node, FUNCTIONS)(ctx) is True


OPS = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
NUM = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@st.composite
def cond(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        c = draw(NUM)
        return (f"value {draw(OPS)} {c!r}" if draw(st.booleans()) else f"{c!r} {draw(OPS)} value")
    op = draw(st.sampled_from(["and", "or"]))
    return f"({draw(cond(depth + 1))}) {op} ({draw(cond(depth + 1))})"


def test_quiet_ranges_that_only_touch_are_not_merged() -> None:
    # hypothesis found it: (0, inf) and (-inf, 0) were merged to everything, hiding value == 0
    node = parse("(0 < value or 0 <= value) and 0 >= value")
    assert quiet_range(node) in ((0.0, math.inf), (-math.inf, 0.0))
    f, ctx = compile_expr(node), EvalCtx()
    ctx.value = 0.0
    assert f(ctx)


@settings(max_examples=300, deadline=None)
@given(cond(), st.lists(NUM, min_size=1, max_size=20))
def test_quiet_range_is_sound(text: str, values: list[float]) -> None:
    """Inside the quiet range the condition is false: skipping it can never miss an alert."""
    node = parse(text.replace("e+", "e").replace("inf", "1"))
    q = quiet_range(node)
    if q is None:
        return
    f = compile_expr(node)
    ctx = EvalCtx()
    for v in [*values, q[0], q[1], (q[0] + q[1]) / 2 if math.isfinite(q[0] + q[1]) else 0.0]:
        if q[0] < v < q[1]:
            ctx.value = v
            assert not f(ctx), (text, q, v)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_series_notation_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_series(text)
    with contextlib.suppress(ValueError):
        parse_selector(text)


@pytest.mark.parametrize(("text", "values"), [
    ("0+10x3", [0, 10, 20, 30]), ("5-1x2", [5, 4, 3]), ("7x2", [7, 7, 7]),
    ("1 _ 2", [1, None, 2]), ("_x2 1e2", [None, None, 100]), ("-1.5", [-1.5]),
])
def test_series_notation(text: str, values: list[float | None]) -> None:
    assert parse_series(text) == values


def test_series_notation_is_bounded() -> None:
    with pytest.raises(ValueError, match="limited"):
        parse_series("0+1x1000000000")


def test_default_pack_passes_its_unit_tests(capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwatch.cli import main
    tests = Path(__file__).parents[2] / "rules" / "tests"
    assert main(["rules", "test", str(tests)]) == 0
    assert " 0 failed" in capsys.readouterr().out


def test_every_default_rule_has_a_unit_test() -> None:
    from fieldwatch.collector.rules.loader import load_rules
    root = Path(__file__).parents[2] / "rules"
    tested = "".join(p.read_text() for p in (root / "tests").glob("*.yaml"))
    missing = [r.name for r in load_rules([root]).rules if f"rule: {r.name}\n" not in tested]
    assert missing == []
