"""Output analysis for the factory simulator: how sure a number is, and which layout wins.

A simulated KPI is a random variable, so every figure the simulator reports comes with a
confidence interval over independent replications (``mean_ci``). Steady-state runs first
drop their warm-up (``mser``, MSER-5); piecewise-constant signals such as WIP are averaged
over time (``time_weighted_mean``). ``replicate_until`` adds replications until the
interval is as narrow as asked, and ``paired_difference`` compares two layouts run with
common random numbers, where the paired-t interval is much narrower than Welch's
(``welch_difference``, for runs without them).

Every function takes plain sequences or NumPy arrays and refuses empty, non-finite or
mis-shaped input with a ``ValueError`` that says what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "Best",
    "Comparison",
    "Estimate",
    "Sequential",
    "WarmUp",
    "best_with_confidence",
    "histogram",
    "mean_ci",
    "mser",
    "mser_detail",
    "paired_difference",
    "quantiles",
    "rank",
    "replicate_until",
    "time_weighted_mean",
    "welch_difference",
]

#: MSER-5 only trusts a minimum with at least this many batch means after it: with fewer,
#: the statistic is small by chance (with one it is zero by construction).
_MSER_MIN_TAIL = 5


def _sample(values: ArrayLike, name: str, min_n: int = 1) -> np.ndarray:
    """``values`` as a finite 1-D float array of at least ``min_n`` items, or a ValueError."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if array.size < min_n:
        raise ValueError(f"{name} needs at least {min_n} values, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _percent(confidence: float) -> str:
    return f"{confidence * 100:.6g}%"


def _pm(mean: float, half_width: float) -> str:
    """``mean ± half_width`` with the half-width to two significant digits and the mean
    to the same decimal place, so no figure claims more precision than it has."""
    if not math.isfinite(half_width):
        return f"{mean:.4g} ± {half_width}"
    if half_width == 0:
        return f"{mean:.6g} ± 0"
    decimals = 1 - math.floor(math.log10(half_width))
    places = max(decimals, 0)
    return f"{round(mean, decimals):.{places}f} ± {round(half_width, decimals):.{places}f}"


@dataclass(frozen=True)
class Estimate:
    """A mean with its two-sided confidence interval ``[low, high] = mean ± half_width``.

    ``std`` is the sample standard deviation of the observations (for a Welch difference,
    the standard deviation of one ``a - b`` pair, ``sqrt(s_a² + s_b²)``).
    """

    mean: float
    half_width: float
    low: float
    high: float
    n: int
    confidence: float
    std: float

    @property
    def relative_half_width(self) -> float:
        """``half_width / |mean|``: 0 for an exact interval, inf when the mean is 0."""
        if self.half_width == 0:
            return 0.0
        if self.mean == 0:
            return math.inf
        return self.half_width / abs(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """The fields and the relative half-width as plain Python numbers (for reports)."""
        return {**asdict(self), "relative_half_width": self.relative_half_width}

    def __str__(self) -> str:
        return f"{_pm(self.mean, self.half_width)} ({_percent(self.confidence)} CI, n={self.n})"


def _estimate(
    mean: float, std: float, stderr: float, df: float, n: int, confidence: float
) -> Estimate:
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * stderr) if stderr > 0 else 0.0
    return Estimate(
        mean=float(mean),
        half_width=half,
        low=float(mean) - half,
        high=float(mean) + half,
        n=int(n),
        confidence=confidence,
        std=float(std),
    )


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> Estimate:
    """The mean of independent observations (one per replication) with its Student-t
    confidence interval, ``mean ± t(n-1) · s / sqrt(n)``.

    One observation says nothing about the spread, so its interval is infinite (and
    ``std`` is NaN) rather than falsely exact; identical observations give a zero width.
    """
    confidence = _check_confidence(confidence)
    x = _sample(values, "values")
    n = x.size
    if n == 1:
        mean = float(x[0])
        return Estimate(mean, math.inf, -math.inf, math.inf, 1, confidence, math.nan)
    if np.all(x == x[0]):
        return _estimate(x[0], 0.0, 0.0, n - 1, n, confidence)
    std = float(np.std(x, ddof=1))
    return _estimate(x.mean(), std, std / math.sqrt(n), n - 1, n, confidence)


# --------------------------------------------------------------------------- warm-up


@dataclass(frozen=True)
class WarmUp:
    """The MSER-5 result: delete the first ``truncate`` observations.

    ``statistic`` is the MSER value at that truncation point. ``reliable`` is False when
    the run is too short to trust it: the statistic's minimum over the whole series lies
    beyond half of it, or the series has fewer than ten batches.
    """

    truncate: int
    statistic: float
    reliable: bool


def _mser_curve(series: ArrayLike, batch: int) -> np.ndarray:
    """MSER(d) for d = 0 .. k-1 over the k batch means of ``series``."""
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    x = _sample(series, "series")
    k = x.size // batch
    if k == 0:
        return np.empty(0)
    z = x[: k * batch].reshape(k, batch).mean(axis=1)
    z = z - z.mean()  # sums of squares of centred data lose no digits to a large level
    remaining = np.arange(k, 0, -1, dtype=float)  # k - d batch means are kept
    tail_sum = np.cumsum(z[::-1])[::-1]
    tail_sq = np.cumsum((z * z)[::-1])[::-1]
    squares = np.clip(tail_sq - tail_sum**2 / remaining, 0.0, None)
    return squares / remaining**2


def mser_detail(series: ArrayLike, batch: int = 5) -> WarmUp:
    """MSER-5 warm-up truncation (White 1997; White, Cobb & Spratt 2000), with a verdict.

    The series is cut into ``k`` means of ``batch`` observations (a partial last batch is
    ignored). For each truncation point ``d`` the statistic
    ``sum_{i>=d} (z_i - mean_d)² / (k - d)²`` weighs the spread of the kept batch means
    against how many remain; the truncation is the ``d`` in the first half
    (``0 <= d <= k/2``, at least two means kept) that minimises it, returned as
    ``d * batch`` observations.

    The standard caveat (White, Cobb & Spratt 2000; Hoad, Robinson & Davies 2010,
    "Automating warm-up length estimation", JORS 61:1389) is that a minimum beyond half of
    the data means the run is too short to see the end of the warm-up. So the statistic
    is also evaluated past the middle, and ``reliable`` is False when its minimum there is
    lower than in the first half; lengthen the run. The last ``_MSER_MIN_TAIL`` batch
    means are left out of that check (our choice, not the papers'): with so few means
    left the statistic is small by chance and flagged about one stationary run in eight
    (of 200 batches) in our trials. Fewer than ten batches are too few to judge
    (unreliable), and fewer than two cannot be truncated at all (0).
    """
    curve = _mser_curve(series, batch)
    k = curve.size
    if k < 2:
        return WarmUp(truncate=0, statistic=math.nan, reliable=False)
    half = min(k // 2, k - 2)
    d = int(np.argmin(curve[: half + 1]))
    beyond = curve[half + 1 : k - _MSER_MIN_TAIL + 1]
    reliable = k >= 2 * _MSER_MIN_TAIL and not (beyond.size and beyond.min() < curve[d])
    return WarmUp(truncate=d * batch, statistic=float(curve[d]), reliable=bool(reliable))


def mser(series: ArrayLike, batch: int = 5) -> int:
    """How many initial observations to delete as warm-up, by MSER-5 (see ``mser_detail``,
    which also says whether the run was long enough to trust the answer)."""
    return mser_detail(series, batch).truncate


# ------------------------------------------------------------------------ summaries


def time_weighted_mean(times: ArrayLike, values: ArrayLike, start: float, end: float) -> float:
    """The time average over ``[start, end]`` of a piecewise-constant signal (WIP, queue
    length, machine state) that holds ``values[k]`` from ``times[k]`` until ``times[k+1]``,
    the last value until ``end``. A plain mean of the values would overweight the
    moments when the signal changes often.
    """
    t = _sample(times, "times")
    v = _sample(values, "values")
    if t.size != v.size:
        raise ValueError(f"times and values differ in length: {t.size} != {v.size}")
    if np.any(np.diff(t) < 0):
        raise ValueError("times must be non-decreasing")
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError("start and end must be finite")
    if not end > start:
        raise ValueError(f"end must be after start, got start={start}, end={end}")
    if start < t[0]:
        raise ValueError(f"the signal is undefined before times[0]={t[0]}, but start={start}")
    right = np.minimum(np.append(t[1:], np.inf), end)
    left = np.maximum(t, start)
    weights = np.clip(right - left, 0.0, None)
    return float(weights @ v / (end - start))


def quantiles(
    values: ArrayLike, qs: Sequence[float] = (0.5, 0.9, 0.95, 0.99)
) -> dict[float, float]:
    """The ``qs`` quantiles of ``values`` (e.g. lead times: median, p90, p95, p99), by
    linear interpolation between order statistics."""
    x = _sample(values, "values")
    q = _sample(qs, "qs")
    if np.any((q < 0) | (q > 1)):
        raise ValueError(f"quantiles must lie in [0, 1], got {q.tolist()}")
    return {float(p): float(v) for p, v in zip(q, np.quantile(x, q), strict=True)}


def histogram(values: ArrayLike, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Counts and the ``bins + 1`` bin edges of ``values`` (a lead-time distribution)."""
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    counts, edges = np.histogram(_sample(values, "values"), bins=int(bins))
    return counts, edges


# ---------------------------------------------------------------------- replication


@dataclass(frozen=True, eq=False)
class Sequential:
    """The outcome of ``replicate_until``: the estimate over all ``replications`` values,
    and whether the target precision was ``reached`` before ``max_reps``."""

    estimate: Estimate
    values: np.ndarray = field(repr=False)
    reached: bool
    replications: int


def _check_count(value: int, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def replicate_until(
    run_batch: Callable[[int, int], ArrayLike],
    *,
    target: float,
    relative: bool = True,
    confidence: float = 0.95,
    min_reps: int = 5,
    max_reps: int = 1000,
    batch: int = 5,
) -> Sequential:
    """Add replications until the confidence interval is narrow enough.

    ``run_batch(start, count)`` runs replications ``start .. start+count-1`` and returns
    one KPI value each; indices run on without gaps from 0, so a caller that seeds each
    replication by its index gets the same values however the calls are split. Stops as
    soon as the half-width (divided by ``|mean|`` when ``relative``) is <= ``target``,
    or when ``max_reps`` replications are done (``reached=False``).

    After the first ``min_reps``, each call asks for the shortfall to Law's approximate
    number of replications (Simulation Modeling and Analysis, 5th ed., §9.4.1): the
    least ``i > n`` with ``t(i-1) · s / sqrt(i) <= target`` (times ``|mean|`` when
    ``relative``), holding the current ``s`` and mean fixed. That is the ``n (h/target)²``
    projection with the t-quantile of the projected size rather than of the current one,
    which would overshoot badly from a handful of replications. Each call is at least
    ``batch`` (also used while the projection is undefined: mean 0 with ``relative``)
    and at most what ``max_reps`` leaves; the criterion is checked on all values after
    every call. For Law's relative-error guarantee ``|mean - mu| <= gamma |mu|``, pass
    ``target = gamma / (1 + gamma)``.
    """
    if isinstance(target, bool) or not isinstance(target, Real) or not 0 < target < math.inf:
        raise ValueError(f"target must be a positive number, got {target!r}")
    confidence = _check_confidence(confidence)
    min_reps = _check_count(min_reps, "min_reps", 2)
    max_reps = _check_count(max_reps, "max_reps", min_reps)
    batch = _check_count(batch, "batch", 1)

    chunks: list[np.ndarray] = []
    n, count = 0, min_reps
    while True:
        got = _sample(run_batch(n, count), f"run_batch({n}, {count})")
        if got.size != count:
            raise ValueError(f"run_batch({n}, {count}) returned {got.size} values")
        chunks.append(got)
        n += count
        values = np.concatenate(chunks)
        estimate = mean_ci(values, confidence)
        h = estimate.relative_half_width if relative else estimate.half_width
        if h <= target or n >= max_reps:
            return Sequential(estimate, values, bool(h <= target), n)
        goal = target * abs(estimate.mean) if relative else target
        wanted = _replications_for(estimate, goal, max_reps) - n if goal > 0 else batch
        count = min(max(wanted, batch), max_reps - n)


def _replications_for(estimate: Estimate, goal: float, max_reps: int) -> int:
    """The least ``i`` in ``(n, max_reps]`` whose projected half-width
    ``t(i-1) · s / sqrt(i)`` is <= ``goal`` (``max_reps`` if none); it falls with ``i``,
    so bisection finds it in a few quantile evaluations."""
    q = 0.5 + estimate.confidence / 2

    def fits(i: int) -> bool:
        return float(stats.t.ppf(q, i - 1)) * estimate.std / math.sqrt(i) <= goal

    low, high = estimate.n, max_reps  # fits(low) is False; the answer is in (low, high]
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


# ----------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """Layout ``a`` against layout ``b`` on one KPI.

    ``difference`` estimates ``mean(a) - mean(b)``; ``ratio`` is ``mean(a) / mean(b)``
    (NaN when ``mean(b)`` is 0). ``better`` names the significantly better layout, or is
    None when the interval contains 0: no significant difference at this confidence.
    """

    difference: Estimate
    ratio: float
    better: Literal["a", "b"] | None
    confidence: float
    higher_is_better: bool
    paired: bool
    n_a: int
    n_b: int

    def sentence(
        self,
        name_a: str,
        name_b: str,
        kpi: str = "throughput",
        higher_is_better: bool | None = None,
        unit: str = "",
    ) -> str:
        """One plain sentence, e.g. ``"A is better: throughput +4.2% (3.1 ± 0.8 jobs/h,
        95% CI, 20 paired replications)"``; figures are the winner minus the other.
        ``higher_is_better`` defaults to the direction the comparison was made with."""
        if higher_is_better is None:
            higher_is_better = self.higher_is_better
        better = _winner(self.difference, higher_is_better)
        d = self.difference
        sign, ratio = 1.0, self.ratio
        if better == "b":  # speak from the winner's side: b - a, mean(b) / mean(a)
            sign, ratio = -1.0, (1 / ratio if ratio else math.nan)
        change = f" {(ratio - 1) * 100:+.1f}%" if math.isfinite(ratio) else ""
        figure = _pm(sign * d.mean, d.half_width) + (f" {unit}" if unit else "")
        runs = (
            f"{self.n_a} paired replications"
            if self.paired
            else f"{self.n_a} + {self.n_b} independent replications"
        )
        detail = f"({figure}, {_percent(self.confidence)} CI, {runs})"
        if better is None:
            between = f"No significant difference in {kpi} between {name_a} and {name_b}"
            return f"{between}:{change} {detail}"
        winner = name_a if better == "a" else name_b
        return f"{winner} is better: {kpi}{change} {detail}"


def _winner(difference: Estimate, higher_is_better: bool) -> Literal["a", "b"] | None:
    if difference.low > 0:
        return "a" if higher_is_better else "b"
    if difference.high < 0:
        return "b" if higher_is_better else "a"
    return None


def _ratio(a: np.ndarray, b: np.ndarray) -> float:
    mb = float(b.mean())
    return float(a.mean()) / mb if mb != 0 else math.nan


def paired_difference(
    a: ArrayLike, b: ArrayLike, confidence: float = 0.95, *, higher_is_better: bool = True
) -> Comparison:
    """Compare two layouts run with common random numbers (replication ``i`` of both used
    the same streams): the paired-t interval on ``d_i = a_i - b_i``. The shared noise
    cancels in each ``d_i``, so the interval is far narrower than treating the runs as
    independent."""
    confidence = _check_confidence(confidence)
    x = _sample(a, "a", min_n=2)
    y = _sample(b, "b", min_n=2)
    if x.size != y.size:
        raise ValueError(f"paired samples differ in length: {x.size} != {y.size}")
    difference = mean_ci(x - y, confidence)
    return Comparison(
        difference=difference,
        ratio=_ratio(x, y),
        better=_winner(difference, higher_is_better),
        confidence=confidence,
        higher_is_better=higher_is_better,
        paired=True,
        n_a=x.size,
        n_b=y.size,
    )


def welch_difference(
    a: ArrayLike, b: ArrayLike, confidence: float = 0.95, *, higher_is_better: bool = True
) -> Comparison:
    """Compare two layouts run with independent streams: Welch's t interval on
    ``mean(a) - mean(b)``, which allows unequal variances and sample sizes, with the
    Welch-Satterthwaite degrees of freedom."""
    confidence = _check_confidence(confidence)
    x = _sample(a, "a", min_n=2)
    y = _sample(b, "b", min_n=2)
    va, vb = float(np.var(x, ddof=1)), float(np.var(y, ddof=1))
    qa, qb = va / x.size, vb / y.size
    stderr = math.sqrt(qa + qb)
    df = (qa + qb) ** 2 / (qa**2 / (x.size - 1) + qb**2 / (y.size - 1)) if stderr > 0 else 1.0
    difference = _estimate(
        x.mean() - y.mean(), math.sqrt(va + vb), stderr, df, x.size + y.size, confidence
    )
    return Comparison(
        difference=difference,
        ratio=_ratio(x, y),
        better=_winner(difference, higher_is_better),
        confidence=confidence,
        higher_is_better=higher_is_better,
        paired=False,
        n_a=x.size,
        n_b=y.size,
    )


# -------------------------------------------------------------------------- ranking


def rank(estimates: Mapping[str, Estimate], higher_is_better: bool = True) -> list[str]:
    """Names ordered best first by their means (ties by name, so the order is stable)."""
    if not estimates:
        raise ValueError("estimates is empty")
    sign = -1.0 if higher_is_better else 1.0
    return sorted(estimates, key=lambda name: (sign * estimates[name].mean, name))


@dataclass(frozen=True)
class Best:
    """The best-ranked name and whether its interval overlaps the runner-up's.

    Separate intervals mean the lead is significant; overlapping ones only mean this
    test cannot tell (it is conservative: for layouts run with common random numbers,
    ``paired_difference`` of the two is sharper).
    """

    name: str
    runner_up: str | None
    overlaps: bool

    def __str__(self) -> str:
        if self.runner_up is None:
            return f"{self.name} is the only candidate"
        if self.overlaps:
            return (
                f"{self.name} ranks first, but its confidence interval overlaps "
                f"{self.runner_up}'s: the data cannot separate them"
            )
        return f"{self.name} is best: its confidence interval is clear of {self.runner_up}'s"


def best_with_confidence(estimates: Mapping[str, Estimate], higher_is_better: bool = True) -> Best:
    """The best name by mean, and whether its interval overlaps the second best's.

    No multiple-comparison correction is applied: each interval keeps the confidence it
    was built with. To make a statement about all ``k`` candidates at once with
    confidence ``1 - alpha``, build each estimate at ``1 - alpha / k`` (Bonferroni).
    """
    order = rank(estimates, higher_is_better)
    if len(order) == 1:
        return Best(order[0], None, False)
    first, second = estimates[order[0]], estimates[order[1]]
    overlaps = first.low <= second.high and second.low <= first.high
    return Best(order[0], order[1], bool(overlaps))
