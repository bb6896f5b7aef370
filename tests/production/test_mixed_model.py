"""Mixed-model sequencing: setups, ratio windows and due dates, CP-SAT against the heuristic."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from liquidfab.production.mixed_model import (
    LineProblem,
    LineState,
    Order,
    Weights,
    evaluate,
    plan_line,
    plan_line_cp,
    plan_line_heuristic,
)

CHANGE = np.array([[0.0, 10.0, 10.0], [10.0, 0.0, 10.0], [10.0, 10.0, 0.0]])


def _runs(variants: list[int]) -> int:
    """How many blocks of equal consecutive variants."""
    return 1 + sum(a != b for a, b in itertools.pairwise(variants))


def _variants(problem: LineProblem, order: tuple[str, ...]) -> list[int]:
    by_id = {o.id: o for o in problem.orders}
    return [by_id[i].variant for i in order]


def test_setup_minimization_groups_variants():
    variants = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    orders = tuple(Order(f"o{i}", v) for i, v in enumerate(variants))
    problem = LineProblem(orders, {}, CHANGE)
    assert evaluate(problem, [o.id for o in orders]).setup == 80.0  # every step changes
    for plan in (
        plan_line_cp(problem, time_limit=30),
        plan_line_heuristic(problem, seed=0, time_limit=10),
    ):
        assert plan is not None
        assert plan.setup == 20.0  # three blocks, two changeovers
        assert _runs(_variants(problem, plan.order)) == 3
    assert plan_line_cp(problem, time_limit=30).optimal


def test_start_variant_sets_the_first_block():
    orders = tuple(Order(f"o{i}", v) for i, v in enumerate([0, 1, 1, 0]))
    problem = LineProblem(orders, {}, CHANGE, start_variant=1)
    plan = plan_line(problem, time_limit=20)
    assert plan.setup == 10.0
    assert _variants(problem, plan.order)[:2] == [1, 1]


def test_window_rules_beat_setups():
    # sunroof at most 1 in 2; grouping the sunroof variant would save setup but break windows
    orders = tuple(Order(f"s{i}", 0, {"sunroof"}) for i in range(3)) + tuple(
        Order(f"n{i}", 1) for i in range(3)
    )
    problem = LineProblem(orders, {"sunroof": (1, 2)}, CHANGE[:2, :2])
    plan = plan_line(problem, time_limit=20)
    assert plan.window_violations == 0
    flags = ["sunroof" in next(o for o in orders if o.id == i).options for i in plan.order]
    assert all(not (a and b) for a, b in itertools.pairwise(flags))
    # three separate sunroof blocks need two blocks between them: 5 blocks, 4 changeovers
    # (grouping would need only one, at the price of two violated windows)
    assert plan.setup == 40.0
    assert plan.objective == pytest.approx(40.0)


def test_explicit_window_weight_can_prefer_setups():
    orders = (Order("s0", 0, {"x"}), Order("s1", 0, {"x"}), Order("n0", 1), Order("n1", 1))
    problem = LineProblem(orders, {"x": (1, 2)}, CHANGE[:2, :2], weights=Weights(window=1.0))
    plan = plan_line_cp(problem, time_limit=30)
    assert plan is not None and plan.optimal
    # one violated window (cost 1) beats two extra changeovers (cost 20)
    assert (plan.window_violations, plan.setup) == (1, 10.0)


def test_evaluate_by_hand_position_and_time():
    a = Order("a", 0, due=1, processing=10.0)
    b = Order("b", 1, due=1, processing=10.0, weight=2.0)
    by_position = LineProblem((a, b), {}, [[0.0, 5.0], [5.0, 0.0]])
    t = evaluate(by_position, ["a", "b"])
    assert (t.window_violations, t.setup, t.tardiness) == (0, 5.0, 2.0)  # b at 2, due 1, x2
    a_t = Order("a", 0, due=100.0, processing=10.0)
    b_t = Order("b", 1, due=20.0, processing=10.0, weight=2.0)
    by_time = LineProblem((a_t, b_t), {}, [[0.0, 5.0], [5.0, 0.0]], due_in="time")
    t = evaluate(by_time, ["a", "b"])
    assert t.tardiness == 10.0  # b leaves at 10 + 5 + 10 = 25, due 20, weight 2
    assert t.objective == pytest.approx(5.0 + 10.0)


def _random_problem(n: int, due_in: str, seed: int) -> LineProblem:
    rng = random.Random(seed)
    k = 4
    matrix = [
        [0.0 if a == b else float(rng.choice([5, 10, 20])) for b in range(k)] for a in range(k)
    ]
    orders = []
    for i in range(n):
        options = {o for o in ("sunroof", "tow", "paint") if rng.random() < 0.35}
        due = rng.randint(1, n) if due_in == "position" else rng.uniform(0, n * 50)
        orders.append(
            Order(
                f"o{i}",
                rng.randrange(k),
                options,
                due if rng.random() < 0.7 else None,
                rng.choice([30.0, 45.5, 60.0]),
                rng.choice([1.0, 2.5]),
            )
        )
    rules = {"sunroof": (1, 3), "tow": (2, 5), "paint": (1, 2)}
    return LineProblem(tuple(orders), rules, matrix, due_in=due_in, start_variant=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("due_in", ["position", "time"])
def test_incremental_evaluation_matches_full_recount(due_in):
    problem = _random_problem(30, due_in, seed=5)
    rng = random.Random(9)
    seq = list(range(30))
    rng.shuffle(seq)
    state = LineState(problem, seq)

    def full():
        return evaluate(problem, [problem.orders[i].id for i in state.order])

    for _ in range(400):
        i, j = rng.randrange(30), rng.randrange(30)
        before = full().objective
        if rng.random() < 0.5:
            delta = state.swap_delta(i, j)
            state.swap(i, j)
        else:
            delta = state.insert_delta(i, j)
            state.insert(i, j)
        after = full()
        assert after.objective - before == pytest.approx(delta, rel=1e-9, abs=1e-6)
        kept = state.terms
        assert kept.window_violations == after.window_violations
        assert kept.setup == pytest.approx(after.setup)
        assert kept.tardiness == pytest.approx(after.tardiness)


@pytest.mark.parametrize("due_in", ["position", "time"])
def test_cp_proves_optimal_and_the_heuristic_is_no_better(due_in):
    problem = _random_problem(7, due_in, seed=3)
    exact = plan_line_cp(problem, time_limit=60)
    assert exact is not None and exact.optimal
    quick = plan_line_heuristic(problem, seed=0, time_limit=5)
    assert quick.objective >= exact.objective - 1e-6
    both = plan_line(problem, time_limit=60)
    assert both.objective == pytest.approx(exact.objective)
    assert evaluate(problem, both.order).objective == pytest.approx(both.objective)


def test_large_batch_skips_cp_and_keeps_the_heuristic():
    problem = _random_problem(40, "position", seed=1)
    plan = plan_line(problem, time_limit=2, cp_max_orders=10)
    assert plan.method in ("greedy", "local search")
    assert sorted(plan.order) == sorted(o.id for o in problem.orders)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LineProblem((Order("a", 0), Order("a", 0)), {}, CHANGE), "appears twice"),
        (lambda: LineProblem((Order("a", 5),), {}, CHANGE), "variant 5 is not in 0..2"),
        (lambda: LineProblem((), {}, np.zeros((2, 3))), "must be square"),
        (lambda: LineProblem((), {}, -CHANGE), "non-negative"),
        (lambda: LineProblem((), {"x": (1, 0)}, CHANGE), "need q >= 1"),
        (lambda: LineProblem((), {}, CHANGE, due_in="day"), "due_in must be"),  # type: ignore[arg-type]
        (lambda: LineProblem((), {}, CHANGE, start_variant=3), "start_variant 3"),
        (lambda: LineProblem((Order("a", 0, processing=-1),), {}, CHANGE), "processing"),
        (lambda: LineProblem((Order("a", 0, due=float("nan")),), {}, CHANGE), "due must be"),
    ],
)
def test_bad_problem(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_sequences_and_limits():
    problem = LineProblem((Order("a", 0), Order("b", 1)), {}, CHANGE)
    with pytest.raises(ValueError, match="unknown order id 'c'"):
        evaluate(problem, ["a", "c"])
    with pytest.raises(ValueError, match="exactly once"):
        evaluate(problem, ["a", "a"])
    with pytest.raises(ValueError, match="time_limit must be positive"):
        plan_line_heuristic(problem, time_limit=-1)
    with pytest.raises(ValueError, match="exactly once"):
        plan_line_cp(problem, time_limit=5, hint=["a"])
