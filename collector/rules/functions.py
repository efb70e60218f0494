"""What a condition can read: the names and functions of the grammar, over one EvalCtx.

The engine reuses one EvalCtx per evaluation pass and sets its fields before each rule, so
evaluating a condition allocates nothing beyond the floats it computes.
"""

from __future__ import annotations

import math

from fieldwatch.collector.rules.expr import Function
from fieldwatch.collector.rules.windows import NAN, Window


class EvalCtx:
    __slots__ = ("value", "ts", "window", "zscore", "baseline", "deviation")

    def __init__(self) -> None:
        self.value = 0.0
        self.ts = 0.0
        self.window: Window | None = None
        self.zscore = NAN
        self.baseline = NAN
        self.deviation = NAN


def _rate(ctx: EvalCtx, w: float) -> float:
    win = ctx.window
    return NAN if win is None else win.rate(ctx.ts, w)


def _delta(ctx: EvalCtx, w: float) -> float:
    win = ctx.window
    return NAN if win is None else win.delta(ctx.ts, w)


def _avg(ctx: EvalCtx, w: float) -> float:
    win = ctx.window
    return NAN if win is None else win.avg(ctx.ts, w)


def _max_over(ctx: EvalCtx, w: float) -> float:
    win = ctx.window
    return NAN if win is None else win.max(ctx.ts, w)


def _min_over(ctx: EvalCtx, w: float) -> float:
    win = ctx.window
    return NAN if win is None else win.min(ctx.ts, w)


def _predict(ctx: EvalCtx, w: float, ahead: float) -> float:
    win = ctx.window
    return NAN if win is None else win.predict_linear(ctx.ts, w, ahead)


def _abs(ctx: EvalCtx, x: float) -> float:
    return abs(x)


def _min(ctx: EvalCtx, a: float, b: float) -> float:
    return a if a <= b else b


def _max(ctx: EvalCtx, a: float, b: float) -> float:
    return a if a >= b else b


def _isnan(ctx: EvalCtx, x: float) -> float:
    return 1.0 if math.isnan(x) else 0.0


FUNCTIONS: dict[str, Function] = {
    "rate": Function(("window",), _rate, window=True),
    "delta": Function(("window",), _delta, window=True),
    "avg_over": Function(("window",), _avg, window=True),
    "max_over": Function(("window",), _max_over, window=True),
    "min_over": Function(("window",), _min_over, window=True),
    "predict_linear": Function(("window", "ahead"), _predict, window=True),
    "abs": Function(("x",), _abs),
    "min": Function(("a", "b"), _min),
    "max": Function(("a", "b"), _max),
    "isnan": Function(("x",), _isnan),
}
WINDOW_FUNCTIONS = frozenset(n for n, f in FUNCTIONS.items() if f.window)

METRIC_NAMES = frozenset({"value"})
ANOMALY_NAMES = frozenset({"value", "zscore", "baseline", "deviation"})
