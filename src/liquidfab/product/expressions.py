"""A small, safe expression language for constraints, times, quantities and prices.

Product files say things like ``battery_wh * motor_w <= 60000`` or
``240 + 30 * (frame_size == 'L')``. The text is parsed with Python's own grammar
(``ast.parse``, which never runs anything) and then only a whitelist of constructs is
accepted and turned into our own tree. Nothing is ever passed to ``eval``.

Accepted: numbers (exact decimals), strings, ``True``/``False``, option names,
``+ - * /`` (the divisor must be a constant), comparisons (chained too), ``in`` and
``not in`` over a literal list, ``and``/``or``/``not``, ``a if cond else b`` and the
functions ``min``, ``max`` and ``abs``. Arithmetic is exact (fractions), so a price or
a time never picks up a floating-point error.

Every expression is type-checked against the names it may use: numbers, booleans and
enumerations, where a string compared with an enumeration must be one of its values.
A boolean used in arithmetic counts as 0 or 1, so ``15 * rack`` is 15 when a rack is
fitted.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "Bin",
    "Call",
    "Cmp",
    "Cond",
    "Const",
    "Expr",
    "ExpressionError",
    "In",
    "Logic",
    "NameType",
    "Neg",
    "Not",
    "Value",
    "Var",
    "evaluate",
    "exact_number",
    "kind_of",
    "names",
    "parse",
    "to_text",
]

MAX_EXPRESSION_LENGTH = 2000
_MAX_DEPTH = 40
#: A number has at most this many significant digits, and its decimal exponent lies
#: within ± this many places: enough for any measure or price, and cheap to compute with.
MAX_NUMBER_DIGITS = 40

Value = bool | Fraction | str
Kind = Literal["bool", "num", "str"]


class ExpressionError(ValueError):
    """An expression is malformed, unsafe, ill-typed or cannot be evaluated."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message if column is None else f"{message} (at column {column + 1})")
        self.message = message
        self.column = column


@dataclass(frozen=True)
class NameType:
    """What a name stands for: a number, a boolean, or one of an enumeration's values."""

    kind: Kind
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Const:
    value: Value


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Neg:
    arg: Expr


@dataclass(frozen=True)
class Not:
    arg: Expr


@dataclass(frozen=True)
class Bin:
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Cmp:
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Expr
    right: Expr


@dataclass(frozen=True)
class In:
    arg: Expr
    values: tuple[Value, ...]
    negate: bool = False


@dataclass(frozen=True)
class Logic:
    op: Literal["and", "or"]
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Cond:
    test: Expr
    then: Expr
    other: Expr


@dataclass(frozen=True)
class Call:
    fn: Literal["min", "max", "abs"]
    args: tuple[Expr, ...]


Expr = Const | Var | Neg | Not | Bin | Cmp | In | Logic | Cond | Call

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FUNCS = {"min", "max", "abs"}


def exact_number(raw: str | int | float | Decimal) -> Fraction:
    """The exact value of a number written as text (``'0.1'``, ``'1_000'``, ``'1e3'``)
    or given as a number; ValueError if it is not one, not finite or too large.

    The size is checked before the value is built, so ``'1e999999999'`` costs nothing.
    """
    limit = MAX_NUMBER_DIGITS
    if isinstance(raw, bool):
        raise ValueError("true/false is not a number")
    if isinstance(raw, int):
        if raw.bit_length() > 4 * limit:
            raise ValueError(f"a number has at most {limit} digits")
        return Fraction(raw)
    if isinstance(raw, Decimal):
        d = raw
    else:
        text = repr(raw) if isinstance(raw, float) else str(raw).strip().replace("_", "")
        try:
            d = Decimal(text)
        except InvalidOperation:
            try:
                whole = int(text, 0)  # 0x10, 0o17, 0b101
            except ValueError:
                raise ValueError(f"{raw!r} is not a number") from None
            return exact_number(whole)
    if not d.is_finite():
        raise ValueError("a number must be finite")
    if len(d.as_tuple().digits) > limit or (d and abs(d.adjusted()) > limit):
        raise ValueError(
            f"a number has at most {limit} digits and an exponent between -{limit} and {limit}"
        )
    return Fraction(d)


def parse(
    text: str | int | float | bool,
    scope: Mapping[str, NameType],
    *,
    want: Kind | None = None,
    macros: Mapping[str, Expr] | None = None,
) -> Expr:
    """Parse and type-check ``text``; ``want`` is the kind the result must have.

    ``macros`` maps derived names to already-parsed expressions, substituted in place,
    so a derived value costs nothing extra to solve.
    """
    if isinstance(text, bool):
        expr: Expr = Const(text)
    elif isinstance(text, int | float):
        try:
            expr = Const(exact_number(text))
        except ValueError as e:
            raise ExpressionError(str(e)) from None
    else:
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError("an expression must be a non-empty string or a number")
        if len(text) > MAX_EXPRESSION_LENGTH:
            raise ExpressionError(f"an expression is at most {MAX_EXPRESSION_LENGTH} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise ExpressionError(f"not an expression: {e.msg}", (e.offset or 1) - 1) from e
        expr = _Builder(text.strip(), scope, macros or {}).build(tree.body, 0)
    kind = kind_of(expr, scope)
    if want is not None and kind != want and not (want == "num" and kind == "bool"):
        raise ExpressionError(f"this expression gives a {_WORD[kind]}, a {_WORD[want]} is needed")
    return expr


_WORD = {"bool": "true/false value", "num": "number", "str": "text value"}


class _Builder:
    def __init__(self, text: str, scope: Mapping[str, NameType], macros: Mapping[str, Expr]):
        self.text = text
        self.scope = scope
        self.macros = macros

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(message, getattr(node, "col_offset", None))

    def build(self, node: ast.AST, depth: int) -> Expr:
        if depth > _MAX_DEPTH:
            raise self.fail(node, f"the expression nests deeper than {_MAX_DEPTH} levels")
        d = depth + 1
        match node:
            case ast.Constant(value=bool() as v):
                return Const(v)
            case ast.Constant(value=int() | float() as v):
                source = ast.get_source_segment(self.text, node) or repr(v)
                try:
                    return Const(exact_number(source))
                except ValueError as e:
                    raise self.fail(node, str(e)) from None
            case ast.Constant(value=str() as v):
                return Const(v)
            case ast.Name(id=name):
                if name in self.macros:
                    return self.macros[name]
                if name not in self.scope:
                    raise self.fail(node, f"unknown name {name!r}")
                return Var(name)
            case ast.UnaryOp(op=ast.Not(), operand=arg):
                return Not(self.build(arg, d))
            case ast.UnaryOp(op=ast.USub(), operand=arg):
                inner = self.build(arg, d)
                if isinstance(inner, Const) and isinstance(inner.value, Fraction):
                    return Const(-inner.value)
                return Neg(inner)
            case ast.UnaryOp(op=ast.UAdd(), operand=arg):
                return self.build(arg, d)
            case ast.BinOp(op=op, left=left, right=right) if type(op) in _BINOPS:
                return Bin(_BINOPS[type(op)], self.build(left, d), self.build(right, d))
            case ast.BoolOp(op=op, values=values):
                word = "and" if isinstance(op, ast.And) else "or"
                return Logic(word, tuple(self.build(v, d) for v in values))
            case ast.Compare(left=left, ops=ops, comparators=rights):
                parts: list[Expr] = []
                current = left
                for op, right in zip(ops, rights, strict=True):
                    parts.append(self.compare(node, op, current, right, d))
                    current = right
                return parts[0] if len(parts) == 1 else Logic("and", tuple(parts))
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return Cond(self.build(test, d), self.build(body, d), self.build(orelse, d))
            case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]) if fn in _FUNCS:
                if not args or (fn == "abs" and len(args) != 1):
                    raise self.fail(node, f"{fn}() takes {'one' if fn == 'abs' else 'some'} value")
                return Call(fn, tuple(self.build(a, d) for a in args))  # type: ignore[arg-type]
            case ast.Call():
                raise self.fail(node, "only min(), max() and abs() may be called")
            case ast.Attribute() | ast.Subscript():
                raise self.fail(node, "attributes and indexing are not part of the language")
            case _:
                raise self.fail(node, f"{type(node).__name__} is not part of the language")

    def compare(self, node: ast.AST, op: ast.cmpop, left: ast.AST, right: ast.AST, d: int) -> Expr:
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(right, ast.List | ast.Tuple | ast.Set):
                raise self.fail(node, "'in' needs a literal list, such as x in ['a', 'b']")
            values: list[Value] = []
            for item in right.elts:
                built = self.build(item, d)
                if not isinstance(built, Const):
                    raise self.fail(item, "the list after 'in' holds constants only")
                values.append(built.value)
            if not values:
                raise self.fail(node, "the list after 'in' is empty")
            return In(self.build(left, d), tuple(values), isinstance(op, ast.NotIn))
        if type(op) not in _CMPOPS:
            raise self.fail(node, f"the comparison {type(op).__name__} is not part of the language")
        return Cmp(_CMPOPS[type(op)], self.build(left, d), self.build(right, d))  # type: ignore[arg-type]


def _const_kind(value: Value) -> Kind:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    return "num"


def _enum_values(expr: Expr, scope: Mapping[str, NameType]) -> tuple[str, ...] | None:
    if isinstance(expr, Var) and scope[expr.name].kind == "str":
        return scope[expr.name].values
    return None


def _check_text(enum: Expr, other: Expr, scope: Mapping[str, NameType]) -> None:
    values = _enum_values(enum, scope)
    if values is None or not isinstance(other, Const) or not isinstance(other.value, str):
        return
    if other.value not in values:
        name = enum.name  # type: ignore[union-attr]
        raise ExpressionError(
            f"{other.value!r} is not a value of {name} (one of {', '.join(values)})"
        )


def kind_of(expr: Expr, scope: Mapping[str, NameType]) -> Kind:
    """The kind an expression gives; raises ExpressionError where kinds do not fit."""
    match expr:
        case Const(value=v):
            return _const_kind(v)
        case Var(name=n):
            return scope[n].kind
        case Neg(arg=a):
            _numeric(a, scope, "'-'")
            return "num"
        case Not(arg=a):
            if kind_of(a, scope) != "bool":
                raise ExpressionError("'not' applies to a true/false value")
            return "bool"
        case Bin(op=op, left=left, right=right):
            _numeric(left, scope, f"'{op}'")
            _numeric(right, scope, f"'{op}'")
            if op == "/":
                if not isinstance(right, Const):
                    raise ExpressionError("the divisor must be a constant")
                if right.value == 0:
                    raise ExpressionError("division by zero")
            return "num"
        case Cmp(op=op, left=left, right=right):
            lk, rk = kind_of(left, scope), kind_of(right, scope)
            if op in ("==", "!="):
                if "str" in (lk, rk) and lk != rk:
                    raise ExpressionError("a text value is compared only with text")
                if lk == "str" and rk == "str":
                    if isinstance(left, Const) and isinstance(right, Const):
                        raise ExpressionError("comparing two constants says nothing")
                    _check_text(left, right, scope)
                    _check_text(right, left, scope)
                return "bool"
            _numeric(left, scope, f"'{op}'")
            _numeric(right, scope, f"'{op}'")
            return "bool"
        case In(arg=a, values=values):
            k = kind_of(a, scope)
            for v in values:
                vk = _const_kind(v)
                if (vk == "str") != (k == "str"):
                    raise ExpressionError("'in' compares like with like: text with text")
                _check_text(a, Const(v), scope)
            return "bool"
        case Logic(op=op, args=args):
            for a in args:
                if kind_of(a, scope) != "bool":
                    raise ExpressionError(f"'{op}' joins true/false values")
            return "bool"
        case Cond(test=t, then=a, other=b):
            if kind_of(t, scope) != "bool":
                raise ExpressionError("the condition of 'if … else' must be true/false")
            ka, kb = kind_of(a, scope), kind_of(b, scope)
            if ka != kb and not ({ka, kb} == {"num", "bool"}):
                raise ExpressionError("both branches of 'if … else' must be of one kind")
            if "str" in (ka, kb):
                raise ExpressionError("'if … else' gives a number or a true/false value")
            return "num" if "num" in (ka, kb) else "bool"
        case Call(fn=fn, args=args):
            for a in args:
                _numeric(a, scope, f"{fn}()")
            return "num"
    raise ExpressionError(f"unexpected expression node {expr!r}")  # pragma: no cover


def _numeric(expr: Expr, scope: Mapping[str, NameType], where: str) -> None:
    if kind_of(expr, scope) == "str":
        raise ExpressionError(f"{where} needs numbers, not text")


def names(expr: Expr) -> set[str]:
    """The option names an expression reads."""
    match expr:
        case Var(name=n):
            return {n}
        case Const():
            return set()
        case Neg(arg=a) | Not(arg=a) | In(arg=a):
            return names(a)
        case Bin(left=left, right=right) | Cmp(left=left, right=right):
            return names(left) | names(right)
        case Logic(args=args) | Call(args=args):
            return set().union(*(names(a) for a in args))
        case Cond(test=t, then=a, other=b):
            return names(t) | names(a) | names(b)
    raise ExpressionError(f"unexpected expression node {expr!r}")  # pragma: no cover


def _num(value: Value) -> Fraction:
    if isinstance(value, str):
        raise ExpressionError("text used as a number")
    return Fraction(int(value)) if isinstance(value, bool) else value


def evaluate(expr: Expr, env: Mapping[str, Value]) -> Value:
    """The value of ``expr`` when every name has the value ``env`` gives it."""
    match expr:
        case Const(value=v):
            return v
        case Var(name=n):
            try:
                return env[n]
            except KeyError:
                raise ExpressionError(f"{n} has no value") from None
        case Neg(arg=a):
            return -_num(evaluate(a, env))
        case Not(arg=a):
            return not evaluate(a, env)
        case Bin(op=op, left=left, right=right):
            x, y = _num(evaluate(left, env)), _num(evaluate(right, env))
            if op == "+":
                return x + y
            if op == "-":
                return x - y
            if op == "*":
                return x * y
            return x / y
        case Cmp(op=op, left=left, right=right):
            a, b = evaluate(left, env), evaluate(right, env)
            if op in ("==", "!="):
                if not isinstance(a, str):
                    a, b = _num(a), _num(b)
                return (a == b) if op == "==" else (a != b)
            x, y = _num(a), _num(b)
            return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
        case In(arg=a, values=values, negate=negate):
            v = evaluate(a, env)
            hit = any(_same(v, w) for w in values)
            return hit != negate
        case Logic(op="and", args=args):
            return all(evaluate(a, env) for a in args)
        case Logic(op="or", args=args):
            return any(evaluate(a, env) for a in args)
        case Cond(test=t, then=a, other=b):
            return evaluate(a, env) if evaluate(t, env) else evaluate(b, env)
        case Call(fn="abs", args=(a,)):
            return abs(_num(evaluate(a, env)))
        case Call(fn=fn, args=args):
            values_ = [_num(evaluate(a, env)) for a in args]
            return min(values_) if fn == "min" else max(values_)
    raise ExpressionError(f"unexpected expression node {expr!r}")  # pragma: no cover


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return _num(a) == _num(b)


def _fmt(value: Value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return repr(value)
    if value.denominator == 1:
        return str(value.numerator)
    # Every digit: a terminating decimal as one, any other fraction as a quotient.
    rest, places = value.denominator, 0
    for factor in (2, 5):
        count = 0
        while rest % factor == 0:
            rest, count = rest // factor, count + 1
        places = max(places, count)
    if rest != 1:
        return f"({value.numerator} / {value.denominator})"
    digits = abs(value.numerator) * 10**places // value.denominator
    whole, fraction = divmod(digits, 10**places)
    return f"{'-' if value < 0 else ''}{whole}.{fraction:0{places}d}"


def to_text(expr: Expr) -> str:
    """Expression text again, fully parenthesised where it matters, for explanations."""
    match expr:
        case Const(value=v):
            return _fmt(v)
        case Var(name=n):
            return n
        case Neg(arg=a):
            return f"-{_wrap(a)}"
        case Not(arg=a):
            return f"not {_wrap(a)}"
        case Bin(op=op, left=left, right=right) | Cmp(op=op, left=left, right=right):
            return f"{_wrap(left)} {op} {_wrap(right)}"
        case In(arg=a, values=values, negate=negate):
            inside = ", ".join(_fmt(v) for v in values)
            return f"{_wrap(a)} {'not in' if negate else 'in'} [{inside}]"
        case Logic(op=op, args=args):
            return f" {op} ".join(_wrap(a) for a in args)
        case Cond(test=t, then=a, other=b):
            return f"{_wrap(a)} if {_wrap(t)} else {_wrap(b)}"
        case Call(fn=fn, args=args):
            return f"{fn}({', '.join(to_text(a) for a in args)})"
    raise ExpressionError(f"unexpected expression node {expr!r}")  # pragma: no cover


def _wrap(expr: Expr) -> str:
    text = to_text(expr)
    return text if isinstance(expr, Const | Var | Call) else f"({text})"
