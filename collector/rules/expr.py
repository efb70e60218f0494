"""The condition language: a small safe expression grammar, parsed by hand, never `eval`.

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
    sum     := term (("+" | "-") term)*
    term    := unary (("*" | "/" | "%") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | NAME | NAME "(" args ")" | "(" expr ")"
    args    := (arg ("," arg)*)?      arg := expr | DURATION (e.g. 5m)

Names and functions come from tables the caller passes, so the grammar cannot reach Python
attributes, builtins or anything else. Parsing yields a tree; `compile_expr` turns it into
closures for speed. Errors are ExprError with the 1-based column of the offending token.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fieldwatch.durations import parse_duration


class ExprError(ValueError):
    def __init__(self, message: str, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.col = col  # 1-based column inside the expression text


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Duration:
    seconds: float


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]


Node = Num | Duration | Name | Unary | Binary | Call

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<dur>(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+(?![A-Za-z0-9_.]))
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|==|!=|[<>+\-*/%(),])
""", re.VERBOSE)

_KEYWORDS = {"and", "or", "not"}
_CMP = {"<", "<=", ">", ">=", "==", "!="}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    col: int


def _tokenize(text: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExprError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = m.lastgroup or ""
        if kind != "ws":
            tok = m.group()
            out.append(_Tok("kw" if kind == "name" and tok in _KEYWORDS else kind, tok, pos + 1))
        pos = m.end()
    out.append(_Tok("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str, names: frozenset[str], functions: Mapping[str, Function]):
        self.toks = _tokenize(text)
        self.i = 0
        self.names = names
        self.functions = functions

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.take()
        if tok.text != text:
            raise ExprError(f"expected {text!r}, got {tok.text or 'end of expression'!r}",
                            tok.col)
        return tok

    def parse(self) -> Node:
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise ExprError(f"unexpected {tok.text!r} after a complete expression", tok.col)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek().text == "or":
            self.take()
            node = Binary("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.peek().text == "and":
            self.take()
            node = Binary("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.peek().text == "not":
            self.take()
            return Unary("not", self.not_())
        return self.cmp()

    def cmp(self) -> Node:
        node = self.sum()
        if self.peek().text in _CMP:
            op = self.take().text
            node = Binary(op, node, self.sum())
            if self.peek().text in _CMP:
                raise ExprError("chained comparisons are ambiguous: join them with `and`",
                                self.peek().col)
        return node

    def sum(self) -> Node:
        node = self.term()
        while self.peek().text in ("+", "-"):
            op = self.take().text
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek().text in ("*", "/", "%"):
            op = self.take().text
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek().text == "-":
            self.take()
            return Unary("-", self.unary())
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return Num(float(tok.text))
        if tok.kind == "dur":
            raise ExprError(f"a duration ({tok.text}) is only allowed as a function argument",
                            tok.col)
        if tok.text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if tok.kind == "name":
            if self.peek().text == "(":
                return self.call(tok)
            if tok.text not in self.names:
                known = ", ".join(sorted(self.names)) or "none"
                raise ExprError(f"unknown name {tok.text!r} (known: {known})", tok.col)
            return Name(tok.text)
        what = tok.text or "end of expression"
        raise ExprError(f"expected a number, a name or '(', got {what!r}", tok.col)

    def call(self, name_tok: _Tok) -> Node:
        fn = self.functions.get(name_tok.text)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise ExprError(f"unknown function {name_tok.text!r} (known: {known})",
                            name_tok.col)
        self.expect("(")
        args: list[Node] = []
        if self.peek().text != ")":
            while True:
                tok = self.peek()
                if tok.kind == "dur":
                    self.take()
                    args.append(Duration(parse_duration(tok.text)))
                else:
                    args.append(self.or_())
                if self.peek().text != ",":
                    break
                self.take()
        self.expect(")")
        if len(args) != len(fn.params):
            raise ExprError(f"{name_tok.text}() takes {len(fn.params)} argument(s): "
                            f"{name_tok.text}({', '.join(fn.params)})", name_tok.col)
        for arg in args:
            if fn.window and not isinstance(arg, Duration):
                raise ExprError(f"{name_tok.text}() takes durations such as 5m: "
                                f"{name_tok.text}({', '.join(fn.params)})", name_tok.col)
            if not fn.window and isinstance(arg, Duration):
                raise ExprError(f"{name_tok.text}() takes numbers, not durations",
                                name_tok.col)
        if fn.window and any(a.seconds <= 0 for a in args if isinstance(a, Duration)):
            raise ExprError(f"{name_tok.text}(): durations must be positive", name_tok.col)
        return Call(name_tok.text, tuple(args))


@dataclass(frozen=True)
class Function:
    """A function the grammar may call: `impl(ctx, *args)`. A `window` function takes only
    duration literals (fixed at load time, so buffers can be sized); others take only numbers."""

    params: tuple[str, ...]
    impl: Callable[..., float]
    window: bool = False


def parse(text: str, names: frozenset[str] = frozenset({"value"}),
          functions: Mapping[str, Function] | None = None) -> Node:
    """Parse `text` or raise ExprError (the only exception it raises for any input)."""
    if not isinstance(text, str):
        raise ExprError("expected an expression string", 1)
    if len(text) > 2000:
        raise ExprError("expression longer than 2000 characters", 2001)
    try:
        return _Parser(text, names, functions or {}).parse()
    except RecursionError:
        raise ExprError("expression nested too deeply", 1) from None


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan  # a division by zero is "no answer", never a crash


def _mod(a: float, b: float) -> float:
    return math.fmod(a, b) if b else math.nan


Compiled = Callable[[Any], Any]


def compile_expr(node: Node, functions: Mapping[str, Function] | None = None) -> Compiled:
    """Closures over a context object: names read its attributes of the same name."""
    fns = functions or {}
    match node:
        case Num(value=v) | Duration(seconds=v):
            return lambda ctx: v
        case Name(name=n):
            return operator.attrgetter(n)
        case Unary(op="not", operand=o):
            f = compile_expr(o, fns)
            return lambda ctx: not f(ctx)
        case Unary(op="-", operand=o):
            f = compile_expr(o, fns)
            return lambda ctx: -f(ctx)
        case Binary(op="and", left=a, right=b):
            fa, fb = compile_expr(a, fns), compile_expr(b, fns)
            return lambda ctx: bool(fa(ctx)) and bool(fb(ctx))
        case Binary(op="or", left=a, right=b):
            fa, fb = compile_expr(a, fns), compile_expr(b, fns)
            return lambda ctx: bool(fa(ctx)) or bool(fb(ctx))
        case Binary(op=op, left=a, right=Num(value=c)) if op in _CMP:
            return _cmp_const(op, compile_expr(a, fns), c)  # the common `x > 90`: one call
        case Binary(op=op, left=a, right=b):
            fa, fb = compile_expr(a, fns), compile_expr(b, fns)
            fop = _div if op == "/" else _mod if op == "%" else _BINARY[op]
            return lambda ctx: fop(fa(ctx), fb(ctx))
        case Call(func=name, args=args):
            impl = fns[name].impl
            if all(isinstance(a, Duration) for a in args):  # constants: no per-call list
                consts = [a.seconds for a in args if isinstance(a, Duration)]
                if len(consts) == 1:
                    c0 = consts[0]
                    return lambda ctx: impl(ctx, c0)
                if len(consts) == 2:
                    c0, c1 = consts
                    return lambda ctx: impl(ctx, c0, c1)
            fargs = [compile_expr(a, fns) for a in args]
            if len(fargs) == 1:
                f0 = fargs[0]
                return lambda ctx: impl(ctx, f0(ctx))
            return lambda ctx: impl(ctx, *[f(ctx) for f in fargs])
    raise TypeError(f"not an expression node: {node!r}")  # pragma: no cover


def _cmp_const(op: str, fa: Compiled, c: float) -> Compiled:
    if op == ">":
        return lambda ctx: fa(ctx) > c
    if op == ">=":
        return lambda ctx: fa(ctx) >= c
    if op == "<":
        return lambda ctx: fa(ctx) < c
    if op == "<=":
        return lambda ctx: fa(ctx) <= c
    if op == "==":
        return lambda ctx: fa(ctx) == c
    return lambda ctx: fa(ctx) != c


def windows_in(node: Node) -> list[float]:
    """Every duration literal an expression passes to a function (the windows it reads)."""
    match node:
        case Duration(seconds=s):
            return [s]
        case Unary(operand=o):
            return windows_in(o)
        case Binary(left=a, right=b):
            return windows_in(a) + windows_in(b)
        case Call(args=args):  # a window function's first argument is its window
            first = [args[0].seconds] if args and isinstance(args[0], Duration) else []
            return first + [w for a in args if not isinstance(a, Duration)
                            for w in windows_in(a)]
    return []


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def quiet_range(node: Node) -> tuple[float, float] | None:
    """An open interval (lo, hi) of `value` where the expression is surely false, or None.

    The engine skips a sample inside the quiet range of every rule on its metric (when the
    series has no alert in flight) without evaluating anything: most readings are normal,
    so most samples cost one comparison. Conservative: any shape not understood gives None.
    """
    match node:
        case Binary(op=op, left=Name(name="value"), right=Num(value=c)) if op in _FLIP:
            return _cmp_quiet(op, c)
        case Binary(op=op, left=Num(value=c), right=Name(name="value")) if op in _FLIP:
            return _cmp_quiet(_FLIP[op], c)
        case Binary(op="and", left=a, right=b):  # false where either side is false
            qa, qb = quiet_range(a), quiet_range(b)
            if qa is None or qb is None:
                return qa or qb
            # open intervals that overlap have one interval as union; touching ones, as (0, 5)
            # and (5, 9), do not: the point between them (5) may fire
            if qa[0] < qb[1] and qb[0] < qa[1]:
                return min(qa[0], qb[0]), max(qa[1], qb[1])
            return max(qa, qb, key=lambda q: q[1] - q[0])
        case Binary(op="or", left=a, right=b):  # false only where both sides are false
            qa, qb = quiet_range(a), quiet_range(b)
            if qa is None or qb is None:
                return None
            lo, hi = max(qa[0], qb[0]), min(qa[1], qb[1])
            return (lo, hi) if lo < hi else None
    return None


def _cmp_quiet(op: str, c: float) -> tuple[float, float] | None:
    inf = math.inf
    if op in (">", ">="):
        return -inf, c
    if op in ("<", "<="):
        return c, inf
    return None


def names_in(node: Node) -> set[str]:
    """Every name and function an expression uses (for validation and dependencies)."""
    match node:
        case Name(name=n):
            return {n}
        case Unary(operand=o):
            return names_in(o)
        case Binary(left=a, right=b):
            return names_in(a) | names_in(b)
        case Call(func=f, args=args):
            return {f"{f}()"}.union(*(names_in(a) for a in args))
    return set()
