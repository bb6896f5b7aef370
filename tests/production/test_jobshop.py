"""Job-shop scheduling: parsing JSPLIB, CP-SAT to the optimum, and the independent check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from liquidfab.production.jobshop import (
    Job,
    JobShop,
    Scheduled,
    parse_jobshop,
    solve_jobshop,
)

FT06 = Path(__file__).parent / "data" / "ft06.txt"


@pytest.fixture(scope="module")
def ft06() -> JobShop:
    return parse_jobshop(FT06.read_text())


@pytest.fixture(scope="module")
def ft06_solved(ft06):
    # generous limit: ft06 closes in well under a second; the limit only guards a hang
    return solve_jobshop(ft06, time_limit=60)


def test_parse_ft06(ft06):
    assert len(ft06.jobs) == 6 and ft06.machines == 6
    assert ft06.jobs[0].operations[:2] == (((2, 1),), ((0, 3),))
    assert all(len(j.operations) == 6 for j in ft06.jobs)
    assert ft06.lower_bound <= 55


def test_ft06_reaches_published_optimum(ft06_solved):
    s = ft06_solved
    assert s.makespan == 55 and s.value == 55
    assert s.status == "optimal" and s.bound == 55
    assert len(s.operations) == 36
    s.validate()


def test_alternative_machines_pick_the_best_split():
    # three identical one-operation jobs: machine 0 takes 4, machine 1 takes 6.
    # all on 0: 12; one on 1: max(8, 6) = 8 (the optimum); two on 1: 12.
    shop = JobShop(tuple(Job([[(0, 4), (1, 6)]]) for _ in range(3)))
    s = solve_jobshop(shop, time_limit=30)
    s.validate()
    assert s.makespan == 8 and s.status == "optimal"
    assert sorted(op.machine for op in s.operations) == [0, 0, 1]


def test_operation_given_as_a_single_pair_or_alternatives():
    job = Job([(0, 2), [(1, 3), (2, 1)]])
    assert job.operations == (((0, 2),), ((1, 3), (2, 1)))


def test_weighted_tardiness_on_one_machine():
    # one machine; (duration, due, weight): A (4, 4, 1), B (2, 3, 3), C (1, 10, 1).
    # B, A, C: B ends 2 (on time), A ends 6 (2 late), C ends 7 (on time): 2.
    # any order with A before B makes B late by at least 3, weight 3: 9 or more.
    shop = JobShop(
        (
            Job([(0, 4)], due=4, weight=1, name="A"),
            Job([(0, 2)], due=3, weight=3, name="B"),
            Job([(0, 1)], due=10, weight=1, name="C"),
        )
    )
    s = solve_jobshop(shop, objective="tardiness", time_limit=30)
    s.validate()
    assert s.status == "optimal"
    assert s.value == s.tardiness == 2
    ends = {op.job: op.end for op in s.operations}
    assert ends[1] <= 3 and ends[0] == 6


def test_release_dates_hold():
    shop = JobShop((Job([(0, 3), (1, 2)], release=10), Job([(1, 4)])))
    s = solve_jobshop(shop, time_limit=30)
    s.validate()
    first = next(op for op in s.operations if op.job == 0 and op.index == 0)
    assert first.start >= 10
    assert s.makespan == 15


def _replace_op(schedule, job, index, **changes):
    ops = tuple(
        dataclasses.replace(op, **changes) if (op.job, op.index) == (job, index) else op
        for op in schedule.operations
    )
    return dataclasses.replace(schedule, operations=ops)


def test_validate_catches_overlap_and_precedence(ft06_solved):
    s = ft06_solved
    late = max(s.operations, key=lambda op: op.start)
    broken = _replace_op(s, late.job, late.index, start=0, end=late.end - late.start)
    with pytest.raises(ValueError, match=r"before operation|overlaps"):
        broken.validate()


def test_validate_catches_wrong_duration_and_machine(ft06_solved):
    op = ft06_solved.operations[0]
    longer = _replace_op(ft06_solved, op.job, op.index, end=op.end + 1)
    assert any("lasts" in p for p in longer.problems())
    elsewhere = _replace_op(ft06_solved, op.job, op.index, machine=(op.machine + 1) % 6)
    with pytest.raises(ValueError, match="cannot run on machine"):
        elsewhere.validate()


def test_validate_catches_missing_operation(ft06_solved):
    cut = dataclasses.replace(ft06_solved, operations=ft06_solved.operations[1:])
    with pytest.raises(ValueError, match="is not scheduled"):
        cut.validate()


def test_validate_catches_a_wrong_makespan(ft06_solved):
    with pytest.raises(ValueError, match="makespan is 55, not 54"):
        dataclasses.replace(ft06_solved, makespan=54).validate()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no job-shop data"),
        ("# only a comment\n", "no job-shop data"),
        ("two 2\n", "expected 'jobs machines'"),
        ("2 2\n0 1 1 2\n", "expected 2 job lines"),
        ("1 2\n0 1 1\n", "machine duration' pairs"),
        ("1 2\n0 1 x 2\n", "expected integers"),
        ("1 2\n0 1 5 2\n", "machine 5 must be in 0..1"),
        ("1 2\n0 -1\n", "duration -1 non-negative"),
    ],
)
def test_bad_jobshop_text(text, match):
    with pytest.raises(ValueError, match=match):
        parse_jobshop(text)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Job([]), "has no operation"),
        (lambda: Job([[]]), "has no \\(machine, duration\\) option"),
        (lambda: Job([(0, -1)]), "non-negative integers"),
        (lambda: Job([[(0, 1), (0, 2)]]), "offers a machine twice"),
        (lambda: Job([(0, 1)], release=-1), "release must be"),
        (lambda: Job([(0, 1)], due=-3), "due must be"),
        (lambda: JobShop(()), "at least one job"),
        (lambda: JobShop((Job([(3, 1)]),), machines=2), "uses machine 3"),
    ],
)
def test_bad_shop(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_solve_arguments(ft06):
    with pytest.raises(ValueError, match="objective must be"):
        solve_jobshop(ft06, objective="cost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs at least one job with a due date"):
        solve_jobshop(ft06, objective="tardiness")
    with pytest.raises(ValueError, match="time_limit must be positive"):
        solve_jobshop(ft06, time_limit=0)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        solve_jobshop(ft06, workers=0)


def test_scheduled_is_plain_data():
    op = Scheduled(job=1, index=2, machine=3, start=4, end=9)
    assert (op.end - op.start, op.machine) == (5, 3)
