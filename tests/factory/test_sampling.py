"""Common random numbers: every station's work is keyed by its id and replication, so
layout variants see the same jobs; blocks of draws extend a replication stably."""

from __future__ import annotations

import numpy as np
import pytest

from liquidfab.factory import Samples, draw, exact_times, load_layout
from liquidfab.factory.sampling import replication_seeds, stream

HEAD = "layout: {id: com.example.line, version: 1.0.0, name: Test line}\n"

LINE = (
    HEAD
    + """\
mix: [{name: x, weight: 3}, {name: y, weight: 1}]
stations:
  - id: saw
    process: {kind: exponential, mean: 30}
  - id: drill
    buffer: 2
    process: {kind: lognormal, mean: 40, cv: 0.4}
  - id: weld
    buffer: 3
    process: {kind: triangular, low: 10, mode: 20, high: 50}
  - id: paint
    buffer: 1
    process: {kind: exponential, mean: 30}
run: {jobs: 400, replications: 4}
"""
)


@pytest.fixture(scope="module")
def line():
    return load_layout(LINE)


def by_id(layout, samples: Samples) -> dict[str, np.ndarray]:
    return {st.id: samples.process[st.index] for st in layout.stations}


# --- common random numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"order": ["saw", "weld", "drill", "paint"]},
        {"order": ["paint", "drill", "weld", "saw"]},
        {"buffers": [0, 9, 0, "unbounded"]},
        {"servers": {"drill": 3, "paint": 2}},
        {"order": ["drill", "saw", "paint", "weld"], "buffers": {"weld": 7}, "servers": {"saw": 2}},
    ],
)
def test_a_station_keeps_its_stream_wherever_it_stands(line, changes):
    variant = line.revised(changes)
    for a, b in zip(
        draw(line, 300, seed=11, replications=3),
        draw(variant, 300, seed=11, replications=3),
        strict=True,
    ):
        assert np.array_equal(a.variant, b.variant)
        ours, theirs = by_id(line, a), by_id(variant, b)
        for sid in ours:
            assert np.array_equal(ours[sid], theirs[sid]), sid


def test_swapped_order_moves_the_samples_with_the_station(line):
    swapped = line.revised({"order": ["saw", "weld", "drill", "paint"]})
    (a,) = draw(line, 200, seed=3, replications=1)
    (b,) = draw(swapped, 200, seed=3, replications=1)
    assert np.array_equal(a.process[1], b.process[2])  # drill: second, then third
    assert np.array_equal(a.process[2], b.process[1])  # weld: third, then second
    assert not np.array_equal(a.process[1], b.process[1])
    Sa, _ = exact_times(line, [a])
    Sb, _ = exact_times(swapped, [b])
    assert np.array_equal(Sa[0, [0, 2, 1, 3]], Sb[0])


def test_stations_with_the_same_distribution_get_independent_streams(line):
    (s,) = draw(line, 500, seed=1, replications=1)
    saw, paint = s.process[0], s.process[3]  # both exponential(30)
    assert not np.array_equal(saw, paint)
    assert abs(np.corrcoef(saw, paint)[0, 1]) < 0.15


def test_replications_and_seeds_differ(line):
    reps = draw(line, 300, seed=5, replications=3)
    for s in range(len(line.stations)):
        assert not np.array_equal(reps[0].process[s], reps[1].process[s])
        assert not np.array_equal(reps[1].process[s], reps[2].process[s])
    assert not np.array_equal(reps[0].variant, reps[1].variant)
    (other,) = draw(line, 300, seed=6, replications=1)
    assert not np.array_equal(reps[0].process[0], other.process[0])
    (again,) = draw(line, 300, seed=5, replications=1)
    assert np.array_equal(reps[0].process[0], again.process[0])


def test_purposes_have_their_own_streams():
    (rep,) = replication_seeds(9, 1)
    draws = {
        (purpose, key): stream(rep, purpose, key).random(4).tolist()
        for purpose in ("process", "failure", "repair", "inspect", "rework")
        for key in ("a", "b")
    }
    draws["mix", ""] = stream(rep, "mix").random(4).tolist()
    draws["arrivals", ""] = stream(rep, "arrivals").random(4).tolist()
    assert len({tuple(v) for v in draws.values()}) == len(draws)
    assert stream(rep, "process", "a").random(4).tolist() == draws["process", "a"]
    assert stream(rep, "process", "a", extra=1).random(4).tolist() != draws["process", "a"]


def test_replication_seeds_extend_stably():
    def state(seqs):
        return [s.generate_state(4).tolist() for s in seqs]

    long = state(replication_seeds(42, 7))
    assert state(replication_seeds(42, 3)) == long[:3]
    assert state(replication_seeds(42, 4, start=3)) == long[3:]
    assert state(replication_seeds(42, 1, start=6)) == long[6:]
    assert len({tuple(s) for s in long}) == 7
    assert state(replication_seeds(43, 3)) != long[:3]


def test_draw_with_a_start_matches_the_longer_run(line):
    whole = draw(line, 100, seed=8, replications=5)
    tail = draw(line, 100, seed=8, replications=2, start=3)
    for a, b in zip(whole[3:], tail, strict=True):
        assert np.array_equal(a.variant, b.variant)
        for s in range(len(line.stations)):
            assert np.array_equal(a.process[s], b.process[s])


# --- drawing in blocks ------------------------------------------------------------------


BLOCKS = [
    "process: {kind: exponential, mean: 30}",
    "process: {kind: lognormal, mean: 30, cv: 0.7}",
    "process: {kind: by-variant, times: {x: {kind: lognormal, mean: 30, cv: 0.7}, y: 50}}",
    "process: {kind: by-variant, times: {x: {kind: exponential, mean: 30}, "
    "y: {kind: triangular, low: 1, mode: 2, high: 9}}}",
    "process: {kind: empirical, values: [1, 5, 9], weights: [1, 1, 2]}",
]


@pytest.mark.parametrize("process", BLOCKS, ids=["exp", "lognormal", "by-variant", "mixed", "emp"])
def test_blocks_give_the_same_arrays_as_one_draw(process):
    lay = load_layout(
        HEAD
        + "arrivals: {kind: orders, interarrival: {kind: exponential, mean: 100}}\n"
        + "mix: [{name: x}, {name: y}]\n"
        + f"stations:\n  - id: a\n    {process}\n  - id: b\n    process: 3\n"
    )
    (rep,) = replication_seeds(77, 1)
    whole = Samples(lay, rep)
    whole.ensure(1000)
    blocks = Samples(lay, rep)
    for n in (1, 2, 17, 17, 400, 999, 1000):
        blocks.ensure(n)
    assert blocks.jobs == 1000
    assert np.array_equal(whole.variant, blocks.variant)
    assert np.array_equal(whole.process[0], blocks.process[0])
    np.testing.assert_allclose(whole.arrival, blocks.arrival, rtol=1e-12)
    assert np.all(np.diff(whole.arrival) >= 0)
    assert np.all(whole.process[0] >= 0)
    assert np.array_equal(whole.process[1], np.full(1000, 3.0))


def test_arrivals_drawn_in_blocks_are_bit_identical():
    lay = load_layout(
        HEAD + "arrivals: {kind: orders, interarrival: {kind: exponential, mean: 100}}\n"
        "stations:\n  - id: a\n    process: 3\n"
    )
    (rep,) = replication_seeds(77, 1)
    whole = Samples(lay, rep)
    whole.ensure(1000)
    blocks = Samples(lay, rep)
    blocks.ensure(500)
    blocks.ensure(1000)
    assert np.array_equal(whole.arrival, blocks.arrival)


def test_per_variant_times_follow_the_variant():
    lay = load_layout(
        HEAD
        + "mix: [{name: x, weight: 3}, {name: y, weight: 1}]\nstations:\n  - id: a\n"
        + "    process: {kind: by-variant, times: {x: {kind: lognormal, mean: 10, cv: 0.2}, "
        + "y: {kind: lognormal, mean: 100, cv: 0.2}}}\n"
        + "  - id: b\n    process: {kind: by-variant, times: {x: 4, y: 9}}\n"
    )
    (s,) = draw(lay, 20_000, seed=2, replications=1)
    v = s.variant
    assert (v == 1).mean() == pytest.approx(0.25, abs=0.02)
    a = s.process[0]
    assert a[v == 0].mean() == pytest.approx(10, rel=0.02)
    assert a[v == 1].mean() == pytest.approx(100, rel=0.02)
    assert (a[v == 0].std() / 10) == pytest.approx(0.2, rel=0.05)
    assert np.array_equal(s.process[1], np.where(v == 0, 4.0, 9.0))


# --- exact engine times -----------------------------------------------------------------


SETUPS = (
    HEAD
    + """\
mix: [{name: x}, {name: y}, {name: z}]
stations:
  - id: a
    process: {kind: by-variant, times: {x: 10, y: 20, z: 30}}
    setup:
      default: 5
      matrix:
        x: {y: 1, z: 2}
        y: {x: 3}
  - id: b
    process: {kind: exponential, mean: 7}
"""
)


def test_exact_times_fold_setups_by_the_previous_variant():
    lay = load_layout(SETUPS)
    setup = lay.stations[0].setup
    assert setup.tolist() == [[0, 1, 2], [3, 0, 5], [5, 5, 0]]
    samples = draw(lay, 300, seed=4, replications=2)
    S, A = exact_times(lay, samples)
    assert A is None
    assert S.shape == (2, 2, 300)
    for r, s in enumerate(samples):
        v = s.variant
        proc = np.array([10.0, 20.0, 30.0])[v]
        assert S[r, 0, 0] == proc[0]  # the first job needs no setup
        for j in range(1, 300):
            assert S[r, 0, j] == proc[j] + setup[v[j - 1], v[j]]
        assert np.array_equal(S[r, 1], s.process[1])  # no setup: the raw times
    shorter, _ = exact_times(lay, samples, jobs=50)
    assert np.array_equal(shorter, S[:, :, :50])


def test_exact_times_carry_the_arrivals():
    lay = load_layout(
        HEAD + "arrivals: {kind: orders, interarrival: {kind: exponential, mean: 50}}\n"
        "stations:\n  - id: a\n    process: {kind: exponential, mean: 10}\n"
    )
    samples = draw(lay, 2000, seed=1, replications=3)
    S, A = exact_times(lay, samples)
    assert S.shape == (3, 1, 2000)
    assert A.shape == (3, 2000)
    for r, s in enumerate(samples):
        assert np.array_equal(A[r], s.arrival)
        assert A[r, 0] > 0
        assert np.diff(A[r], prepend=0.0).mean() == pytest.approx(50, rel=0.08)


def test_exact_times_use_line_order_and_skip_rework_stations():
    lay = load_layout(
        HEAD
        + """\
stations:
  - id: fix
    role: rework
    returns_to: b
    buffer: unbounded
    process: 99
  - id: a
    process: 1
  - id: b
    process: 2
    inspection: {yield: 0.9, failed: fix}
"""
    )
    assert [s.id for s in lay.stations] == ["a", "b", "fix"]
    S, _ = exact_times(lay, draw(lay, 10, seed=1, replications=1))
    assert S.shape == (1, 2, 10)
    assert S[0, :, 0].tolist() == [1.0, 2.0]
