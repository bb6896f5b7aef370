"""The expression language: exact, typed, safe, and printable back to text."""

from __future__ import annotations

import builtins
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from liquidfab.product import load_product
from liquidfab.product.expressions import (
    MAX_EXPRESSION_LENGTH,
    Bin,
    Call,
    Cmp,
    Cond,
    Const,
    ExpressionError,
    In,
    Logic,
    NameType,
    Neg,
    Not,
    Var,
    evaluate,
    kind_of,
    names,
    parse,
    to_text,
)
from liquidfab.product.resolved import resolve

SCOPE = {
    "n": NameType("num"),
    "m": NameType("num"),
    "b": NameType("bool"),
    "c": NameType("bool"),
    "e": NameType("str", ("x", "y", "z")),
}
ENV = {"n": Fraction(7, 2), "m": Fraction(-2), "b": True, "c": False, "e": "y"}
LAMP = Path(__file__).with_name("lamp.yaml")


def value(text, env=ENV, **kw):
    return evaluate(parse(text, SCOPE, **kw), env)


# --- evaluation -----------------------------------------------------------------------


def test_arithmetic_is_exact():
    assert value("0.1 + 0.2 == 0.3") is True
    assert value("0.1 + 0.2") == Fraction(3, 10)
    assert value("1 / 3 * 3") == 1
    assert value("n * 0.1") == Fraction(7, 20)
    assert value("1.5e3 + 1_000") == 2500
    assert value("-n") == Fraction(-7, 2)
    assert value("+n - -2") == Fraction(11, 2)


def test_yaml_numbers_and_booleans_are_expressions():
    assert evaluate(parse(2, SCOPE), {}) == 2
    assert evaluate(parse(0.1, SCOPE), {}) == Fraction(1, 10)
    assert evaluate(parse(True, SCOPE), {}) is True
    assert kind_of(parse(False, SCOPE), SCOPE) == "bool"


def test_chained_comparisons():
    expr = parse("1 < n <= 4 < 10", SCOPE)
    assert isinstance(expr, Logic) and expr.op == "and" and len(expr.args) == 3
    assert evaluate(expr, {**ENV, "n": Fraction(4)}) is True
    assert evaluate(expr, {**ENV, "n": Fraction(1)}) is False
    assert evaluate(expr, {**ENV, "n": Fraction(9, 2)}) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("e in ['x', 'y']", True),
        ("e not in ['x', 'y']", False),
        ("e in ('z',)", False),
        ("n in [1, 3.5]", True),
        ("n not in {1, 2}", True),
        ("e == 'y' and not c", True),
        ("b or c", True),
        ("b and c", False),
        ("not (n > 3)", False),
        ("e != 'x'", True),
    ],
)
def test_membership_and_logic(text, expected):
    assert value(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 if b else 20", 10),
        ("10 if c else (20 if e == 'y' else 30)", 20),
        ("min(n, m, 0)", -2),
        ("max(n, 3)", Fraction(7, 2)),
        ("max(n)", Fraction(7, 2)),
        ("abs(m) + abs(n - 10)", Fraction(17, 2)),
        ("15 * b + 15 * c", 15),
        ("b + b + c", 2),
        ("b == 1", True),
        ("c < b", True),
        ("-b", -1),
        ("b if n > 3 else c", True),
    ],
)
def test_conditionals_functions_and_bools_as_numbers(text, expected):
    assert value(text) == expected


def test_kinds():
    assert kind_of(parse("n + 1", SCOPE), SCOPE) == "num"
    assert kind_of(parse("n > 1", SCOPE), SCOPE) == "bool"
    assert kind_of(parse("e", SCOPE), SCOPE) == "str"
    assert kind_of(parse("b if c else 2", SCOPE), SCOPE) == "num"
    # A true/false value is accepted where a number is wanted, not the other way round.
    assert parse("b", SCOPE, want="num") == Var("b")
    with pytest.raises(ExpressionError, match="gives a number, a true/false value is needed"):
        parse("n + 1", SCOPE, want="bool")
    with pytest.raises(ExpressionError, match="gives a text value, a number is needed"):
        parse("e", SCOPE, want="num")


def test_names_and_macros():
    assert names(parse("n + (m if b else 0) > 1 and e in ['x']", SCOPE)) == {"n", "m", "b", "e"}
    macro = parse("n * 2", SCOPE)
    expr = parse("double + 1", SCOPE, macros={"double": macro})
    assert expr == Bin("+", macro, Const(Fraction(1)))
    assert names(expr) == {"n"}


def test_a_missing_value_is_an_error():
    with pytest.raises(ExpressionError, match="n has no value"):
        evaluate(parse("n + 1", SCOPE), {})


# --- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "only min(), max() and abs() may be called"),
        ("open('/etc/passwd')", "only min(), max() and abs() may be called"),
        ("round(n)", "only min(), max() and abs() may be called"),
        ("min(n, key=abs)", "only min(), max() and abs() may be called"),
        ("e.upper", "attributes and indexing are not part of the language"),
        ("n.__class__.__bases__", "attributes and indexing are not part of the language"),
        ("[1, 2][0]", "attributes and indexing are not part of the language"),
        ("(lambda: 1)", "Lambda is not part of the language"),
        ("[x for x in [1]]", "ListComp is not part of the language"),
        ("{x: 1 for x in [1]}", "DictComp is not part of the language"),
        ("sum(x for x in [1])", "only min(), max() and abs() may be called"),
        ("f'{n}'", "JoinedStr is not part of the language"),
        ("(y := 2)", "NamedExpr is not part of the language"),
        ("n ** 2", "BinOp is not part of the language"),
        ("n // 2", "BinOp is not part of the language"),
        ("n % 2", "BinOp is not part of the language"),
        ("b is c", "the comparison Is is not part of the language"),
        ("None", "Constant is not part of the language"),
        ("b'x' == b'x'", "Constant is not part of the language"),
        ("[1, 2]", "List is not part of the language"),
        ("abs(n, m)", "abs() takes one value"),
        ("max()", "max() takes some value"),
        ("e in e", "'in' needs a literal list"),
        ("n in [m]", "the list after 'in' holds constants only"),
        ("n in []", "the list after 'in' is empty"),
        ("import os", "not an expression"),
        ("n +", "not an expression"),
    ],
)
def test_unsafe_and_foreign_constructs_are_refused(text, message):
    with pytest.raises(ExpressionError, match=None) as info:
        parse(text, SCOPE)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q + 1", "unknown name 'q' (at column 1)"),
        ("n + q", "unknown name 'q' (at column 5)"),
        ("e + 1", "'+' needs numbers, not text"),
        ("e < 'y'", "'<' needs numbers, not text"),
        ("-e", "'-' needs numbers, not text"),
        ("min(e)", "min() needs numbers, not text"),
        ("e == 'w'", "'w' is not a value of e (one of x, y, z)"),
        ("'w' != e", "'w' is not a value of e (one of x, y, z)"),
        ("e in ['x', 'w']", "'w' is not a value of e (one of x, y, z)"),
        ("e in [1, 2]", "'in' compares like with like"),
        ("n in ['x']", "'in' compares like with like"),
        ("e == 1", "a text value is compared only with text"),
        ("'a' == 'a'", "comparing two constants says nothing"),
        ("n / m", "the divisor must be a constant"),
        ("n / (2 - 2)", "the divisor must be a constant"),
        ("n / 0", "division by zero"),
        ("n / 0.0", "division by zero"),
        ("not n", "'not' applies to a true/false value"),
        ("n and b", "'and' joins true/false values"),
        ("1 if n else 2", "the condition of 'if … else' must be true/false"),
        ("e if b else 'x'", "'if … else' gives a number or a true/false value"),
        ("e if b else 1", "both branches of 'if … else' must be of one kind"),
    ],
)
def test_type_errors(text, message):
    with pytest.raises(ExpressionError) as info:
        parse(text, SCOPE)
    assert message in str(info.value)


def test_empty_and_too_long_expressions():
    with pytest.raises(ExpressionError, match="non-empty string or a number"):
        parse("   ", SCOPE)
    fits = "max(" + ", ".join(["n"] * 665) + ")"
    assert len(fits) <= MAX_EXPRESSION_LENGTH
    assert evaluate(parse(fits, SCOPE), ENV) == Fraction(7, 2)
    too_long = "max(" + ", ".join(["n"] * 667) + ")"
    assert len(too_long) > MAX_EXPRESSION_LENGTH
    with pytest.raises(ExpressionError, match=f"at most {MAX_EXPRESSION_LENGTH} characters"):
        parse(too_long, SCOPE)


def test_deep_nesting_is_refused():
    with pytest.raises(ExpressionError, match="nests deeper than 40 levels"):
        parse("n" + " + 1" * 60, SCOPE)
    with pytest.raises(ExpressionError, match="nests deeper than 40 levels"):
        parse("-" * 60 + "n", SCOPE)
    with pytest.raises(ExpressionError, match="not an expression"):
        parse("(" * 300 + "n" + ")" * 300, SCOPE)


def test_parse_and_evaluate_never_call_eval_or_exec(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    texts = ["0.1 + 0.2 == 0.3", "max(n, 2) if b else abs(m)", "e in ['x', 'y'] and 1 < n < 4"]
    assert [value(t) for t in texts] == [True, Fraction(7, 2), True]
    with pytest.raises(ExpressionError):
        parse("__import__('os').system('echo pwned')", SCOPE)
    product = load_product(LAMP)
    choices = {"shade": "glass", "colour": "white", "dimmer": True, "arm_cm": Fraction(40)}
    # 39 base + 12 glass + 9 dimmer + (40 - 20) * 0.25 arm
    assert resolve(product, {**choices, "watts": Fraction(7)}).price == Decimal(65)


# --- printing back --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0.1 + 0.2 * n",
        "n - -3",
        "-(n + m) / -4",
        "1 < n < 3",
        "e in ['x', 'z'] or not b",
        "e not in ['x']",
        "n in [1, 2.5]",
        "(10 if b else 20) + max(n, m, 1) * abs(m)",
        "b == (n > 1)",
        "15 * b + 0.25",
        "'x' == e",
        "n * 0.000001",
    ],
)
def test_to_text_round_trips(text):
    expr = parse(text, SCOPE)
    again = parse(to_text(expr), SCOPE)
    assert evaluate(again, ENV) == evaluate(expr, ENV)
    assert to_text(again) == to_text(expr)


def test_to_text_keeps_every_digit():
    expr = parse("n + 1234567.5", SCOPE)
    assert evaluate(parse(to_text(expr), SCOPE), ENV) == evaluate(expr, ENV)


def test_huge_literals_are_refused_or_printable():
    try:
        expr = parse("n < 1e5000", SCOPE)
    except ExpressionError:
        return
    to_text(expr)


def test_infinite_yaml_number_is_an_expression_error():
    with pytest.raises(ExpressionError):
        parse(float("inf"), SCOPE)


# Well-typed random expressions over SCOPE: numbers and true/false values.
decimals = st.decimals(
    min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False
).map(lambda d: Const(Fraction(d)))
nonzero = decimals.filter(lambda c: c.value != 0)
enum_values = st.sampled_from(("x", "y", "z"))


def _num(children):
    return st.one_of(
        st.builds(Neg, children),
        st.builds(Bin, st.sampled_from(("+", "-", "*")), children, children),
        st.builds(Bin, st.just("/"), children, nonzero),
        st.builds(Call, st.sampled_from(("min", "max")), st.tuples(children, children)),
        st.builds(Call, st.just("abs"), st.tuples(children)),
    )


numbers = st.recursive(
    st.one_of(decimals, st.sampled_from((Var("n"), Var("m"), Var("b")))), _num, max_leaves=8
)


def _bool(children):
    return st.one_of(
        st.builds(Not, children),
        st.builds(Logic, st.sampled_from(("and", "or")), st.tuples(children, children)),
        st.builds(Cond, children, children, children),
    )


bool_leaves = st.one_of(
    st.sampled_from((Var("b"), Var("c"), Const(True), Const(False))),
    st.builds(Cmp, st.sampled_from(("==", "!=", "<", "<=", ">", ">=")), numbers, numbers),
    st.builds(Cmp, st.sampled_from(("==", "!=")), st.just(Var("e")), enum_values.map(Const)),
    st.builds(
        In,
        st.just(Var("e")),
        st.lists(enum_values, min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
    st.builds(
        In,
        numbers,
        st.lists(decimals.map(lambda c: c.value), min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
)
booleans = st.recursive(bool_leaves, _bool, max_leaves=6)
expressions = st.one_of(
    numbers,
    booleans,
    st.builds(Cond, booleans, numbers, numbers),
    st.builds(Bin, st.just("*"), numbers, booleans),
)
environments = st.fixed_dictionaries(
    {
        "n": decimals.map(lambda c: c.value),
        "m": decimals.map(lambda c: c.value),
        "b": st.booleans(),
        "c": st.booleans(),
        "e": enum_values,
    }
)


def depth(expr) -> int:
    match expr:
        case Const() | Var():
            return 1
        case Neg(arg=a) | Not(arg=a) | In(arg=a):
            return 1 + depth(a)
        case Bin(left=left, right=right) | Cmp(left=left, right=right):
            return 1 + max(depth(left), depth(right))
        case Logic(args=args) | Call(args=args):
            return 1 + max(depth(a) for a in args)
        case Cond(test=t, then=a, other=b):
            return 1 + max(depth(t), depth(a), depth(b))
    raise AssertionError(expr)


@settings(max_examples=300, deadline=None)
@given(expressions, environments)
def test_to_text_round_trip_property(expr, env):
    assume(depth(expr) < 30)
    kind_of(expr, SCOPE)  # the generated tree is well typed
    text = to_text(expr)
    parsed = parse(text, SCOPE)
    assert evaluate(parsed, env) == evaluate(expr, env)
    assert to_text(parse(to_text(parsed), SCOPE)) == to_text(parsed)
