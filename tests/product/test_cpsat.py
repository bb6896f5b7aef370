"""The CP-SAT translation is exact: every expression means in the model what it evaluates to."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from liquidfab.errors import ProductError
from liquidfab.product.configurator import Configurator
from liquidfab.product.cpsat import Translation
from liquidfab.product.definition import product_from_data
from liquidfab.product.expressions import evaluate, parse

OPTIONS = [
    {"id": "e", "type": "enum", "values": ["p", "q", "r"]},
    {"id": "f", "type": "enum", "values": ["q", "r", "s"]},
    {"id": "b", "type": "bool"},
    {"id": "i", "type": "int", "min": -2, "max": 3},
    {"id": "d", "type": "decimal", "min": -1, "max": 1, "step": 0.5},
    {"id": "h", "type": "decimal", "min": 0.25, "max": 1.75, "step": 0.75},
]


def small_product(options=OPTIONS, constraints=()):
    return product_from_data(
        {
            "id": "org.example.small",
            "version": "1.0.0",
            "name": "Small",
            "options": list(options),
            "constraints": list(constraints),
            "pricing": {"base": 1},
        }
    )


PRODUCT = small_product()
NAMES = list(PRODUCT.options)
ASSIGNMENTS = [
    dict(zip(NAMES, combo, strict=True))
    for combo in itertools.product(*(PRODUCT.options[n].domain() for n in NAMES))
]

# --- random expressions over the options, as text -------------------------------------

CONSTANTS = st.sampled_from(["0", "1", "-2", "0.5", "1.25", "3", "True"])
# true/false values count as 0 or 1 in arithmetic
NUM_LEAVES = st.one_of(
    st.sampled_from(["i", "d", "h", "b", "(not b)", "(i > 0)", "(e == 'p')"]), CONSTANTS
)


def _num(children):
    return st.one_of(
        st.tuples(children, st.sampled_from("+-*"), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, st.sampled_from(["2", "-0.5", "4"])).map(
            lambda t: f"({t[0]} / {t[1]})"
        ),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: f"min({', '.join(xs)})"),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: f"max({', '.join(xs)})"),
        children.map(lambda a: f"abs({a})"),
        children.map(lambda a: f"-{a}"),
        st.tuples(children, BOOLS, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    )


ATOMS = st.one_of(
    st.sampled_from(
        [
            "e == 'p'",
            "e != 'q'",
            "e in ['p', 'r']",
            "e not in ['r']",
            "e == f",
            "f != e",
            "i in [0, 2, -1]",
            "d in [0.5, -1, 7]",
            "b",
            "b in [1]",
            "i == b",
        ]
    ),
    st.tuples(NUM_LEAVES, st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), NUM_LEAVES).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
)


def _bool(children):
    return st.one_of(
        children.map(lambda a: f"not {a}"),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: "(" + " and ".join(xs) + ")"),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: "(" + " or ".join(xs) + ")"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    )


BOOLS = st.recursive(ATOMS, _bool, max_leaves=6)
NUMS = st.recursive(NUM_LEAVES, _num, max_leaves=7)
COMPARISONS = st.tuples(NUMS, st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), NUMS).map(
    lambda t: f"{t[0]} {t[1]} {t[2]}"
)


def _solve_fixed(t: Translation, env) -> cp_model.CpSolver:
    model = t.model.clone()
    for name in NAMES:
        t.fix_in(model, name, env[name])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    return solver


SAMPLE = ASSIGNMENTS[::37]  # a spread of 30-odd assignments out of 1,080


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NUMS)
def test_numbers_are_exact(text):
    expr = parse(text, PRODUCT.scope, want="num")
    t = Translation(PRODUCT)
    t.declare()
    num = t.num(expr)
    expression = t.linear(num)
    for env in SAMPLE:
        solver = _solve_fixed(t, env)
        got = Fraction(solver.value(expression), num.den)
        assert got == evaluate(expr, env), (text, env)
        assert num.lo <= got * num.den <= num.hi  # the interval bounds hold


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(BOOLS, COMPARISONS))
def test_truth_is_exact(text):
    expr = parse(text, PRODUCT.scope, want="bool")
    t = Translation(PRODUCT)
    t.declare()
    lit = t.lit(expr)
    for env in SAMPLE:
        want = bool(evaluate(expr, env))
        if isinstance(lit, bool):
            assert lit == want, (text, env)
            continue
        solver = _solve_fixed(t, env)
        assert solver.boolean_value(t.obj(lit)) == want, (text, env)


class _Count(cp_model.CpSolverSolutionCallback):
    def __init__(self):
        super().__init__()
        self.n = 0

    def on_solution_callback(self):
        self.n += 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(BOOLS, COMPARISONS))
def test_required_rules_keep_exactly_the_valid_assignments(text):
    """Auxiliary variables are functions of the options: solutions are assignments."""
    expr = parse(text, PRODUCT.scope, want="bool")
    t = Translation(PRODUCT)
    t.declare()
    t.require(expr)
    counter = _Count()
    solver = cp_model.CpSolver()
    solver.parameters.enumerate_all_solutions = True
    solver.parameters.num_workers = 1
    solver.solve(t.model, counter)
    assert counter.n == sum(bool(evaluate(expr, env)) for env in ASSIGNMENTS), text


def test_every_numeric_option_value_is_on_its_grid():
    t = Translation(PRODUCT)
    t.declare()
    for env in SAMPLE:
        solver = _solve_fixed(t, env)
        assert {n: t.value_of(solver, n) for n in NAMES} == env


def test_numbers_beyond_64_bits_are_refused_in_words():
    product = small_product(
        constraints=[
            {
                "id": "huge",
                "message": "Too big to solve.",
                "rule": "i * 1000000000000 * d * 1000000000 * h * 100000000 > 1",
            }
        ]
    )
    with pytest.raises(ProductError, match="beyond what the solver handles"):
        Configurator(product)


TRICKY = [
    "(not b) * i",
    "(1 - b) * d",
    "b * h * i",
    "(i > 0) * (d - h)",
    "min(i, d) * max(h, b)",
    "abs(i * d - h) / -0.5",
    "(i if b else d) * (h if e == 'p' else -1)",
    "i * i * d - (e == f) * 3",
    "(d + h) * (i - d)",
]


@pytest.mark.parametrize("text", TRICKY)
def test_products_of_terms_are_exact(text):
    expr = parse(text, PRODUCT.scope, want="num")
    t = Translation(PRODUCT)
    t.declare()
    num = t.num(expr)
    for env in ASSIGNMENTS[::7]:
        solver = _solve_fixed(t, env)
        assert Fraction(solver.value(t.linear(num)), num.den) == evaluate(expr, env), env
