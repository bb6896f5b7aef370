"""Time distributions for process times, setups, failures and repairs.

Each is a small Pydantic model so a layout file can say ``{kind: lognormal, mean: 300,
cv: 0.2}`` (or just ``300`` for a fixed time) and a wrong parameter is refused with the
field's path. Parameters are means and coefficients of variation, the way engineers
quote times, and every sample is a non-negative number of seconds.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_SECONDS",
    "Deterministic",
    "Distribution",
    "Empirical",
    "Exponential",
    "Lognormal",
    "Triangular",
    "Uniform",
    "as_distribution",
]

#: No time in a layout may exceed ten years; larger numbers are typing mistakes.
MAX_SECONDS = 10 * 365 * 86400.0

Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
Cv = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws as float64 seconds; one call with size n gives the same numbers
        as n calls with size 1, so streams stay common across engines."""
        raise NotImplementedError

    @property
    def mean(self) -> float:
        raise NotImplementedError

    @property
    def variance(self) -> float:
        raise NotImplementedError

    @property
    def scv(self) -> float:
        """Squared coefficient of variation (the variability queueing formulas use)."""
        return self.variance / self.mean**2 if self.mean > 0 else 0.0

    def text(self) -> str:
        return self.kind  # type: ignore[attr-defined]


class Deterministic(_Dist):
    """A fixed time: a machine cycle, a timed program step."""

    kind: Literal["deterministic"] = "deterministic"
    value: Seconds

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value, dtype=np.float64)

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def text(self) -> str:
        return f"{self.value:g} s"


class Exponential(_Dist):
    """Memoryless times (cv 1): arrivals of independent orders, failures of wear-free
    parts; the case queueing formulas are written for."""

    kind: Literal["exponential"] = "exponential"
    mean_: Positive = Field(alias="mean")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean_, size)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.mean_**2

    def text(self) -> str:
        return f"exp(mean {self.mean_:g} s)"


class Lognormal(_Dist):
    """Given by mean and coefficient of variation; NumPy's mu and sigma follow."""

    kind: Literal["lognormal"] = "lognormal"
    mean_: Positive = Field(alias="mean")
    cv: Cv

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def params(self) -> tuple[float, float]:
        """NumPy's (mu, sigma) of the underlying normal."""
        sigma2 = math.log1p(self.cv**2)
        return math.log(self.mean_) - sigma2 / 2, math.sqrt(sigma2)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        mu, sigma = self.params()
        return rng.lognormal(mu, sigma, size)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return (self.cv * self.mean_) ** 2

    def text(self) -> str:
        return f"lognormal(mean {self.mean_:g} s, cv {self.cv:g})"


class Triangular(_Dist):
    """Low, most likely and high: what an engineer can estimate before any data exist."""

    kind: Literal["triangular"] = "triangular"
    low: Seconds
    mode: Seconds
    high: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not self.low <= self.mode <= self.high or self.low == self.high:
            raise ValueError("needs low <= mode <= high and low < high")
        return self

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.triangular(self.low, self.mode, self.high, size)

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3

    @property
    def variance(self) -> float:
        a, c, b = self.low, self.mode, self.high
        return (a * a + b * b + c * c - a * b - a * c - b * c) / 18

    def text(self) -> str:
        return f"tri({self.low:g}, {self.mode:g}, {self.high:g} s)"


class Uniform(_Dist):
    """Any time between two bounds equally likely."""

    kind: Literal["uniform"] = "uniform"
    low: Seconds
    high: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError("needs low < high")
        return self

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12

    def text(self) -> str:
        return f"uniform({self.low:g}, {self.high:g} s)"


class Empirical(_Dist):
    """Observed times, resampled with replacement (optionally weighted)."""

    kind: Literal["empirical"] = "empirical"
    values: list[Seconds] = Field(min_length=1, max_length=100_000)
    weights: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None

    @model_validator(mode="after")
    def _weights(self) -> Empirical:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights needs one weight per value")
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be zero")
        return self

    def _p(self) -> np.ndarray | None:
        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=np.float64)
        return w / w.sum()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        values = np.asarray(self.values, dtype=np.float64)
        p = self._p()
        if p is None:
            return values[rng.integers(0, len(values), size)]
        return values[
            np.searchsorted(np.cumsum(p), rng.random(size), side="right").clip(0, len(values) - 1)
        ]

    @property
    def mean(self) -> float:
        p = self._p()
        return float(np.average(self.values, weights=p))

    @property
    def variance(self) -> float:
        p = self._p()
        m = self.mean
        return float(np.average((np.asarray(self.values) - m) ** 2, weights=p))

    def text(self) -> str:
        return f"empirical({len(self.values)} values, mean {self.mean:g} s)"


Distribution = Annotated[
    Deterministic | Exponential | Lognormal | Triangular | Uniform | Empirical,
    Field(discriminator="kind"),
]


def as_distribution(value: Any) -> Any:
    """A bare number means a fixed time: ``300`` is ``{kind: deterministic, value: 300}``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"kind": "deterministic", "value": value}
    return value
