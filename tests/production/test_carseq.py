"""Car sequencing: CSPLib 001 parsing, the violation count, both solvers, incremental deltas."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidfab.production.carseq import (
    CarSequencing,
    WindowCounts,
    greedy_order,
    parse_csplib,
    sequence,
    solve_cp,
    solve_heuristic,
    violations,
)

ROOT = Path(__file__).resolve().parents[2]
CSPLIB = ROOT.parent / "shared" / "data" / "carseq-csplib001.txt"


@pytest.fixture(scope="module")
def instances() -> list[tuple[str, CarSequencing]]:
    assert CSPLIB.exists(), f"the shared benchmark data is missing: {CSPLIB}"
    return parse_csplib(CSPLIB.read_text())


# one option, at most 1 of any 2: classes 0 (with) and 1 (without), two cars each
PAIRS = CarSequencing(counts=(2, 2), requires=((True,), (False,)), p=(1,), q=(2,))


def test_parse_every_instance(instances):
    assert len(instances) == 40
    names = [name for name, _ in instances]
    assert names[0] == "60-01" and names[-1] == "75-10" and len(set(names)) == 40
    for _, inst in instances:
        assert inst.cars == 200 and inst.options == 5
        assert inst.p == (1, 2, 1, 2, 1) and inst.q == (2, 3, 3, 5, 5)
        assert 17 <= len(inst.counts) <= 27
        assert all(len(row) == 5 for row in inst.requires)
    first = instances[0][1]
    assert first.counts[:3] == (3, 84, 5)
    assert first.requires[0] == (True, False, False, True, False)


def test_violations_by_hand():
    assert violations(PAIRS, [0, 0, 1, 1]) == 1  # window [0, 2) holds two
    assert violations(PAIRS, [0, 1, 0, 1]) == 0
    assert violations(PAIRS, [1, 0, 0, 1]) == 1
    # two options: o0 at most 1 in 2, o1 at most 1 in 3; class 0 has both, 1 only o1, 2 none
    inst = CarSequencing((2, 1, 2), ((True, True), (False, True), (False, False)), (1, 1), (2, 3))
    # o0 bits 1 1 0 0 0 -> windows of 2: [1 1]=2 over; o1 bits 1 1 1 0 0 -> windows of 3:
    # [1 1 1] over, [1 1 0] over, [1 0 0] fine: 1 + 2 = 3
    assert violations(inst, [0, 0, 1, 2, 2]) == 3
    # 0 2 1 2 0: o0 1 0 0 0 1 -> none; o1 1 0 1 0 1 -> [1 0 1] over twice, [0 1 0] fine
    assert violations(inst, [0, 2, 1, 2, 0]) == 2
    assert violations(inst, [0, 2, 2, 1, 0]) == 1  # o1: 1 0 0 1 1 -> only [0 1 1] over


def test_short_sequence_is_one_window():
    inst = CarSequencing((3,), ((True,),), (2,), (5,))
    assert violations(inst, [0, 0, 0]) == 1
    assert violations(inst, [0, 0]) == 0


def test_violations_rejects_unknown_class():
    with pytest.raises(ValueError, match=r"class 7 is not in 0\.\.1"):
        violations(PAIRS, [0, 7])


def test_check_counts():
    PAIRS.check([0, 1, 0, 1])
    with pytest.raises(ValueError, match="class 0 appears 3 times, expected 2"):
        PAIRS.check([0, 0, 0, 1])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("3 1 2\n1\n2\n0 1 1\n1 1 0\n", "add up to 2, not 3"),
        ("2 1 2\n1\n2\n0 1 2\n1 1 0\n", "flags must be 0 or 1"),
        ("2 1 2\n1\n2\n1 1 1\n0 1 0\n", "for class 0"),
        ("2 1 2\n1\n2\n0 1 1\n", "ends early"),
        ("2 2 1\n1\n2 2\n0 2 1 1\n", "expected 2 values of p"),
        ("2 1 1\n1\n0\n0 2 1\n", "need q >= 1"),
        ("2 1\n", "expected 'cars options classes'"),
        ("2 1 x\n", "expected integers"),
    ],
)
def test_bad_csplib_text(text, match):
    with pytest.raises(ValueError, match=match):
        parse_csplib(text)


def test_bad_instance_shapes():
    with pytest.raises(ValueError, match="2 class counts but 1 option rows"):
        CarSequencing((1, 1), ((True,),), (1,), (2,))
    with pytest.raises(ValueError, match="has 2 option flags, expected 1"):
        CarSequencing((1,), ((True, False),), (1,), (2,))


def test_sequence_solves_the_first_instances(instances):
    for _, inst in instances[:3]:
        got = sequence(inst, time_limit=20)
        inst.check(got.order)
        assert got.violations == 0 == violations(inst, got.order)
        assert got.optimal


def test_heuristic_alone_reaches_zero(instances):
    inst = instances[2][1]  # the greedy start breaks windows here: local search must fix them
    assert violations(inst, greedy_order(inst)) > 0
    got = solve_heuristic(inst, seed=0, time_limit=20)
    assert got.violations == 0 and got.method == "local search"
    inst.check(got.order)


def test_cp_alone_solves_a_csplib_instance(instances):
    inst = instances[0][1]
    got = solve_cp(inst, time_limit=60)
    inst.check(got.order)
    assert (got.violations, got.method, got.optimal) == (0, "cp-sat", True)


def test_cp_falls_back_when_no_sequence_meets_every_window():
    # three cars with the option, at most one in any two: impossible
    inst = CarSequencing((3,), ((True,),), (1,), (2,))
    got = solve_cp(inst, time_limit=30)
    assert got.method == "greedy" and got.violations == 2 and not got.optimal
    hinted = solve_cp(inst, time_limit=30, hint=[0, 0, 0])
    assert hinted.method == "hint"


def test_cp_rejects_a_bad_hint():
    with pytest.raises(ValueError, match="class 0 appears 1 times, expected 2"):
        solve_cp(PAIRS, time_limit=5, hint=[0, 1, 1, 1])


def test_bad_limits():
    with pytest.raises(ValueError, match="time_limit must be positive"):
        solve_heuristic(PAIRS, time_limit=0)
    with pytest.raises(ValueError, match="heuristic_share"):
        sequence(PAIRS, time_limit=1, heuristic_share=0)


def _check_moves(inst: CarSequencing, order: list[int], moves: list[tuple[bool, int, int]]) -> None:
    state = WindowCounts(inst.requires, inst.p, inst.q, order)
    assert state.total == violations(inst, order)
    for is_swap, i, j in moves:
        before = violations(inst, state.order)
        if is_swap:
            delta = state.swap_delta(i, j)
            state.swap(i, j)
        else:
            delta = state.insert_delta(i, j)
            state.insert(i, j)
        after = violations(inst, state.order)
        assert delta == after - before
        assert state.total == after
    fresh = WindowCounts(inst.requires, inst.p, inst.q, state.order)
    assert fresh.counts == state.counts and fresh.bits == state.bits


def test_incremental_delta_matches_recount_on_csplib(instances):
    rng = random.Random(11)
    for _, inst in instances[:2]:
        order = greedy_order(inst, rng)
        n = len(order)
        moves = [(rng.random() < 0.5, rng.randrange(n), rng.randrange(n)) for _ in range(300)]
        _check_moves(inst, order, moves)


@st.composite
def instance_and_moves(draw):
    k = draw(st.integers(1, 3))
    classes = draw(st.integers(1, 4))
    counts = draw(st.lists(st.integers(1, 4), min_size=classes, max_size=classes))
    requires = [
        tuple(draw(st.lists(st.booleans(), min_size=k, max_size=k))) for _ in range(classes)
    ]
    q = draw(st.lists(st.integers(1, 6), min_size=k, max_size=k))
    p = [draw(st.integers(0, qq)) for qq in q]
    inst = CarSequencing(tuple(counts), tuple(requires), tuple(p), tuple(q))
    order = draw(st.permutations([c for c, n in enumerate(counts) for _ in range(n)]))
    n = len(order)
    move = st.tuples(st.booleans(), st.integers(0, n - 1), st.integers(0, n - 1))
    return inst, list(order), draw(st.lists(move, max_size=25))


@settings(max_examples=150, deadline=None)
@given(instance_and_moves())
def test_incremental_delta_matches_recount_property(case):
    _check_moves(*case)
