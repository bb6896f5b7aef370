"""Output analysis against SciPy, hand calculations and seeded simulations with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from liquidfab.factory.statistics import (
    Estimate,
    best_with_confidence,
    histogram,
    mean_ci,
    mser,
    mser_detail,
    paired_difference,
    quantiles,
    rank,
    replicate_until,
    time_weighted_mean,
    welch_difference,
)

# ------------------------------------------------------------------------- mean_ci


def test_mean_ci_matches_scipy_t_interval():
    rng = np.random.default_rng(7)
    for n, confidence in [(2, 0.95), (10, 0.9), (37, 0.99)]:
        x = rng.lognormal(2.0, 0.5, n)
        estimate = mean_ci(x, confidence)
        low, high = stats.t.interval(confidence, n - 1, loc=x.mean(), scale=stats.sem(x))
        assert estimate.low == pytest.approx(low, rel=1e-12)
        assert estimate.high == pytest.approx(high, rel=1e-12)
        assert estimate.mean == pytest.approx(x.mean())
        assert estimate.std == pytest.approx(x.std(ddof=1))
        assert estimate.n == n
        assert estimate.confidence == confidence


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    samples = rng.normal(50.0, 8.0, size=(400, 10))
    covered = sum(e.low <= 50.0 <= e.high for e in map(mean_ci, samples))
    assert 0.91 <= covered / 400 <= 0.98


def test_mean_ci_single_value_is_infinitely_wide_and_constant_values_exact():
    one = mean_ci([4.2])
    assert one.half_width == math.inf
    assert (one.low, one.high) == (-math.inf, math.inf)
    assert math.isnan(one.std)
    same = mean_ci([0.1, 0.1, 0.1])
    assert same.half_width == 0.0
    assert same.mean == 0.1
    assert same.relative_half_width == 0.0


def test_estimate_text_dict_and_relative_half_width():
    e = Estimate(
        mean=12.4123, half_width=0.3187, low=12.0936, high=12.731, n=20, confidence=0.95, std=1
    )
    assert str(e) == "12.41 ± 0.32 (95% CI, n=20)"
    assert e.relative_half_width == pytest.approx(0.3187 / 12.4123)
    assert e.to_dict()["n"] == 20
    assert e.to_dict()["relative_half_width"] == pytest.approx(e.relative_half_width)
    zero = Estimate(mean=0.0, half_width=1.0, low=-1, high=1, n=5, confidence=0.9, std=1)
    assert zero.relative_half_width == math.inf
    assert "90% CI" in str(zero)


# --------------------------------------------------------------------------- mser


def _transient(seed: int, n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.where(t < 200, 10 * np.exp(-t / 40), 0.0) + rng.normal(0.0, 1.0, n)


def test_mser_truncates_near_the_end_of_an_initial_transient():
    for seed in range(5):
        warm = mser_detail(_transient(seed))
        assert 80 <= warm.truncate <= 260
        assert warm.truncate % 5 == 0
        assert warm.reliable
        assert mser(_transient(seed)) == warm.truncate


def test_mser_keeps_a_stationary_series():
    rng = np.random.default_rng(11)
    for _ in range(5):
        series = rng.normal(100.0, 3.0, 2000)
        assert mser(series) <= 50
        assert mser_detail(series).reliable


def test_mser_flags_a_run_too_short_for_its_warm_up():
    rng = np.random.default_rng(0)
    series = np.linspace(10.0, 0.0, 300) + rng.normal(0.0, 0.1, 300)
    warm = mser_detail(series)
    assert not warm.reliable
    assert warm.truncate <= 150  # still returned, never more than half


def test_mser_short_series():
    assert mser([1.0, 2.0, 3.0]) == 0
    assert mser(np.arange(9.0)) == 0
    warm = mser_detail(np.arange(9.0))
    assert (warm.truncate, warm.reliable) == (0, False)
    assert math.isnan(warm.statistic)


# ---------------------------------------------------------------------- summaries


def test_time_weighted_mean_by_hand():
    times = [0.0, 2.0, 5.0, 9.0]
    values = [1, 3, 0, 4]
    # [0,2)=1, [2,5)=3, [5,9)=0, [9,10]=4 -> (2 + 9 + 0 + 4) / 10
    assert time_weighted_mean(times, values, 0.0, 10.0) == pytest.approx(1.5)
    # window [3, 6]: 2 units at 3, 1 unit at 0 -> 6 / 3
    assert time_weighted_mean(times, values, 3.0, 6.0) == pytest.approx(2.0)
    # a zero-length step is overridden by the value after it
    assert time_weighted_mean([0, 1, 1], [5, 7, 2], 0, 2) == pytest.approx(3.5)


def test_quantiles_and_histogram():
    values = np.arange(1.0, 101.0)
    q = quantiles(values)
    assert list(q) == [0.5, 0.9, 0.95, 0.99]
    assert q[0.5] == pytest.approx(50.5)
    assert quantiles(values, (0.0, 1.0)) == {0.0: 1.0, 1.0: 100.0}
    counts, edges = histogram(values, bins=10)
    assert counts.tolist() == [10] * 10
    assert edges[0] == 1.0 and edges[-1] == 100.0 and edges.size == 11


# -------------------------------------------------------------------- replication


class _Runner:
    """One KPI value per replication from that replication's own seeded stream."""

    def __init__(self, mean: float = 100.0, sd: float = 10.0) -> None:
        self.mean, self.sd = mean, sd
        self.calls: list[tuple[int, int]] = []

    def value(self, index: int) -> float:
        return float(np.random.default_rng([42, index]).normal(self.mean, self.sd))

    def __call__(self, start: int, count: int) -> np.ndarray:
        self.calls.append((start, count))
        return np.array([self.value(i) for i in range(start, start + count)])


def test_replicate_until_stops_when_the_target_is_met():
    run = _Runner()
    result = replicate_until(run, target=0.02, min_reps=5, max_reps=1000)
    assert result.reached
    assert result.estimate.relative_half_width <= 0.02
    assert result.replications == result.values.size == result.estimate.n
    # indices run on without gaps, so every replication keeps its own stream
    starts = [0]
    for _, count in run.calls[:-1]:
        starts.append(starts[-1] + count)
    assert [s for s, _ in run.calls] == starts
    assert run.calls[0] == (0, 5)
    assert result.values.tolist() == [run.value(i) for i in range(result.replications)]
    # it did not stop early, nor go on once the target was met
    before = result.replications - run.calls[-1][1]
    assert mean_ci(result.values[:before]).relative_half_width > 0.02
    assert len(run.calls) <= 4


def test_replicate_until_asks_for_laws_approximate_number_of_replications():
    run = _Runner()
    replicate_until(run, target=0.02, min_reps=5)
    first = mean_ci([run.value(i) for i in range(5)])
    t = stats.t.ppf(0.975, np.arange(5, 1000))
    half = t * first.std / np.sqrt(np.arange(6, 1001))
    least = 6 + int(np.argmax(half <= 0.02 * abs(first.mean)))
    assert run.calls[1] == (5, least - 5)


def test_replicate_until_absolute_target_and_small_steps():
    run = _Runner(sd=2.0)
    result = replicate_until(run, target=1.0, relative=False, min_reps=3, batch=2)
    assert result.reached
    assert result.estimate.half_width <= 1.0
    assert all(count >= 2 for _, count in run.calls[1:])


def test_replicate_until_respects_max_reps():
    run = _Runner()
    result = replicate_until(run, target=1e-6, min_reps=5, max_reps=23)
    assert not result.reached
    assert result.replications == 23
    assert sum(count for _, count in run.calls) == 23


def test_replicate_until_checks_what_run_batch_returns():
    with pytest.raises(ValueError, match=r"returned 2 values"):
        replicate_until(lambda start, count: np.ones(2), target=0.1)
    with pytest.raises(ValueError, match=r"NaN"):
        replicate_until(lambda start, count: np.full(count, np.nan), target=0.1)


# --------------------------------------------------------------------- comparison


def _crn(seed: int, n: int = 20, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Two layouts sharing most of their noise, as common random numbers make them."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 8.0, n)
    return 100 + shift + common + rng.normal(0, 1, n), 100 + common + rng.normal(0, 1, n)


def test_paired_interval_matches_scipy_and_is_narrower_than_welch():
    a, b = _crn(1, shift=2.0)
    paired = paired_difference(a, b)
    welch = welch_difference(a, b)
    low, high = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (paired.difference.low, paired.difference.high) == pytest.approx((low, high))
    low, high = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (welch.difference.low, welch.difference.high) == pytest.approx((low, high))
    assert paired.difference.half_width < welch.difference.half_width / 3
    assert paired.better == "a"
    assert welch.better is None  # the shared noise hides the difference from Welch
    assert paired.ratio == pytest.approx(a.mean() / b.mean())


def test_paired_difference_direction_and_sentence():
    a, b = _crn(2, shift=3.0)
    higher = paired_difference(a, b)
    text = higher.sentence("A", "B", unit="jobs/h")
    assert text.startswith("A is better: throughput +")
    assert "95% CI, 20 paired replications" in text
    assert "jobs/h" in text
    lower = paired_difference(a, b, higher_is_better=False)
    assert lower.better == "b"
    assert lower.sentence("A", "B", "lead time").startswith("B is better: lead time -")
    assert higher.sentence("A", "B", "lead time", higher_is_better=False).startswith("B is")


def test_no_difference_for_identically_distributed_independent_data():
    rng = np.random.default_rng(5)
    a, b = rng.normal(10, 2, 30), rng.normal(10, 2, 30)
    assert paired_difference(a, b).better is None
    welch = welch_difference(a, b)
    assert welch.better is None
    assert welch.sentence("A", "B").startswith("No significant difference in throughput")
    assert "30 + 30 independent replications" in welch.sentence("A", "B")


# ------------------------------------------------------------------------ ranking


def _est(mean: float, half: float) -> Estimate:
    return Estimate(mean, half, mean - half, mean + half, 10, 0.95, 1.0)


def test_rank_and_best_with_confidence():
    estimates = {"line": _est(10, 1), "cell": _est(14, 1), "hybrid": _est(13, 1.5)}
    assert rank(estimates) == ["cell", "hybrid", "line"]
    assert rank(estimates, higher_is_better=False) == ["line", "hybrid", "cell"]
    best = best_with_confidence(estimates)
    assert (best.name, best.runner_up, best.overlaps) == ("cell", "hybrid", True)
    assert "cannot separate" in str(best)
    clear = best_with_confidence({"line": _est(10, 1), "cell": _est(14, 1)})
    assert (clear.name, clear.overlaps) == ("cell", False)
    alone = best_with_confidence({"line": _est(10, 1)})
    assert (alone.name, alone.runner_up, alone.overlaps) == ("line", None, False)


# --------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mean_ci([]), "values is empty"),
        (lambda: mean_ci([1.0, math.nan]), "NaN or infinite"),
        (lambda: mean_ci([[1.0, 2.0]]), "one-dimensional"),
        (lambda: mean_ci(["x"]), "must be numbers"),
        (lambda: mean_ci([1.0, 2.0], confidence=1.0), "strictly between 0 and 1"),
        (lambda: mean_ci([1.0, 2.0], confidence=0), "strictly between 0 and 1"),
        (lambda: mser([]), "series is empty"),
        (lambda: mser([1.0] * 20, batch=0), "batch must be a positive integer"),
        (lambda: time_weighted_mean([0, 1], [1], 0, 2), "differ in length"),
        (lambda: time_weighted_mean([1, 0], [1, 2], 1, 2), "non-decreasing"),
        (lambda: time_weighted_mean([0, 1], [1, 2], 2, 2), "end must be after start"),
        (lambda: time_weighted_mean([1, 2], [1, 2], 0, 2), "undefined before"),
        (lambda: quantiles([1.0, 2.0], (0.5, 1.5)), r"in \[0, 1\]"),
        (lambda: histogram([1.0], bins=0), "bins must be a positive integer"),
        (lambda: replicate_until(lambda s, c: np.ones(c), target=0), "target must be"),
        (lambda: replicate_until(lambda s, c: np.ones(c), target=0.1, min_reps=1), "min_reps"),
        (
            lambda: replicate_until(lambda s, c: np.ones(c), target=0.1, min_reps=5, max_reps=4),
            "max_reps",
        ),
        (lambda: paired_difference([1, 2, 3], [1, 2]), "differ in length"),
        (lambda: paired_difference([1], [2]), "at least 2 values"),
        (lambda: welch_difference([1, 2], [3]), "b needs at least 2"),
        (lambda: rank({}), "estimates is empty"),
    ],
)
def test_bad_inputs_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
