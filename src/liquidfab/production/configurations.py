"""Random personal configurations, the way generated customers choose: some options
picked at random, the rest completed by the configurator at the lowest price."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from liquidfab.errors import LiquidfabError
from liquidfab.product import Configurator, Product
from liquidfab.product.resolved import Resolved

__all__ = ["Configurations"]


class Configurations:
    """Random personal configurations: a random part of the options picked at random,
    the rest completed by the configurator at the lowest price."""

    def __init__(self, product: Product, rng: np.random.Generator) -> None:
        self.product = product
        self.rng = rng
        self.configurator = Configurator(product, time_limit=5.0)

    def _value(self, option: Any) -> Any:
        domain = option.domain()
        value = domain[int(self.rng.integers(len(domain)))]
        return int(value) if isinstance(value, Fraction) and value.denominator == 1 else value

    def draw(self) -> Resolved:
        options = list(self.product.options.values())
        picked = {o.id: self._value(o) for o in options if self.rng.random() < 0.5}
        for _ in range(8):
            done = self.configurator.complete(picked, "price")
            if done.resolved is not None:
                return done.resolved
            conflict = done.conflict
            culprits = set(conflict.choices) if conflict is not None else set(picked)
            for name in culprits or set(picked):
                picked.pop(name, None)
        done = self.configurator.complete({}, "price")
        if done.resolved is None:
            raise LiquidfabError(f"{self.product.id} has no valid variant")
        return done.resolved
