"""A large product made up on demand, for tests and benchmarks of the configurator.

Real products have tens of options; the configurator must still answer within its time
limit, and say when it could not, on products ten times larger. This builds one,
deterministically from a seed: options of every kind, and rules of every kind (requires,
excludes, variant tables, arithmetic with products of options, ``min``/``max``/``abs`` and
``if … else``), plus pricing, a BOM with an assembly and a routing so that every objective
has something to optimise.

Satisfiable by construction: a hidden assignment is drawn first and every rule is written
so that it holds there. That assignment is kept as the value model's reference unit
(``product.spec.value_model.reference``), so a caller always has one valid configuration.
"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

from liquidfab.product.definition import Product, product_from_data
from liquidfab.product.resolved import violated

__all__ = ["synthetic_document", "synthetic_product"]

_DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def _dec(value: Fraction | int) -> str:
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    return str(Decimal(value.numerator) / Decimal(value.denominator))


class _Builder:
    def __init__(self, options: int, constraints: int, seed: int, window: int) -> None:
        self.rng = random.Random(seed)
        self.n_options = options
        self.n_constraints = constraints
        self.window = window
        self.options: list[dict[str, Any]] = []
        self.hidden: dict[str, Any] = {}  # option id -> value (str, bool or Fraction)

    # --- options ----------------------------------------------------------------------

    def make_options(self) -> None:
        rng = self.rng
        for i in range(self.n_options):
            oid = f"o{i:03d}"
            kind = rng.choices(["enum", "bool", "int", "decimal"], weights=[5, 2, 2, 1])[0]
            spec: dict[str, Any] = {"id": oid, "type": kind}
            if kind == "enum":
                values = [f"v{j}" for j in range(rng.randint(3, 6))]
                spec["values"] = values
                self.hidden[oid] = rng.choice(values)
            elif kind == "bool":
                self.hidden[oid] = rng.random() < 0.5
            elif kind == "int":
                lo = rng.randint(-5, 5)
                hi = lo + rng.randint(3, 30)
                spec.update(min=lo, max=hi, step=1)
                self.hidden[oid] = Fraction(rng.randint(lo, hi))
            else:
                steps = rng.randint(4, 20)
                spec.update(min=0, max=_dec(Fraction(steps, 2)), step="0.5")
                self.hidden[oid] = Fraction(rng.randint(0, steps), 2)
            self.options.append(spec)

    def kind(self, oid: str) -> str:
        return self.options[int(oid[1:])]["type"]

    def domain(self, oid: str) -> list[Any]:
        spec = self.options[int(oid[1:])]
        if spec["type"] == "enum":
            return list(spec["values"])
        if spec["type"] == "bool":
            return [False, True]
        lo, hi = Fraction(str(spec["min"])), Fraction(str(spec["max"]))
        step = Fraction(str(spec["step"]))
        return [lo + k * step for k in range(int((hi - lo) / step) + 1)]

    def near(self, count: int, numeric: bool = False) -> list[str]:
        """``count`` distinct options close to each other (rules are local, like a real
        product's: frame with fork, battery with charger), optionally numeric ones only."""
        rng = self.rng
        pool = [
            o["id"] for o in self.options if not numeric or o["type"] in ("int", "decimal", "bool")
        ]
        start = rng.randrange(len(pool))
        window = [pool[(start + k) % len(pool)] for k in range(min(self.window, len(pool)))]
        return rng.sample(window, count)

    # --- conditions true or false at the hidden assignment ---------------------------------

    def condition(self, oid: str, holds: bool) -> str:
        rng = self.rng
        kind, h = self.kind(oid), self.hidden[oid]
        if kind == "enum":
            others = [v for v in self.domain(oid) if v != h]
            if holds:
                picked = [h, *rng.sample(others, rng.randint(0, len(others) - 1))]
                rng.shuffle(picked)
                if len(picked) == 1:
                    return f"{oid} == '{h}'"
                return f"{oid} in [{', '.join(repr(v) for v in picked)}]"
            picked = rng.sample(others, rng.randint(1, max(1, len(others) - 1)))
            if len(picked) == 1:
                return f"{oid} == '{picked[0]}'"
            return f"{oid} in [{', '.join(repr(v) for v in picked)}]"
        if kind == "bool":
            return oid if h == holds else f"not {oid}"
        dom = self.domain(oid)
        if holds:
            if rng.random() < 0.5:
                return f"{oid} >= {_dec(rng.choice([v for v in dom if v <= h]))}"
            return f"{oid} <= {_dec(rng.choice([v for v in dom if v >= h]))}"
        below = [v for v in dom if v < h]
        above = [v for v in dom if v > h]
        if below and (not above or rng.random() < 0.5):
            return f"{oid} < {_dec(rng.choice(below))}"
        if above:
            return f"{oid} > {_dec(rng.choice(above))}"
        return f"{oid} != {_dec(h)}"

    # --- rules -----------------------------------------------------------------------------

    def requires(self) -> dict[str, Any]:
        a, b = self.near(2)
        cause = self.rng.random() < 0.6
        return {
            "requires": {
                "if": self.condition(a, cause),
                "then": self.condition(b, True if cause else self.rng.random() < 0.5),
            }
        }

    def excludes(self) -> dict[str, Any]:
        a, b = self.near(2)
        first = self.rng.random() < 0.5
        return {"excludes": [self.condition(a, first), self.condition(b, not first)]}

    def table(self) -> dict[str, Any]:
        rng = self.rng
        cols = self.near(2)
        doms = [self.domain(c)[:6] for c in cols]
        for c, dom in zip(cols, doms, strict=True):
            if self.hidden[c] not in dom:
                dom[-1] = self.hidden[c]
        combos = [(x, y) for x in doms[0] for y in doms[1]]
        planted = (self.hidden[cols[0]], self.hidden[cols[1]])
        allow = rng.random() < 0.7
        if allow:
            rows = [planted, *rng.sample(combos, max(1, len(combos) // 2))]
        else:
            rows = rng.sample([c for c in combos if c != planted], max(1, len(combos) // 4))
        cells = [[_cell(v) for v in row] for row in dict.fromkeys(rows)]
        return {"table": {"columns": cols, "rows": cells, "allow": allow}}

    def rule(self) -> dict[str, Any]:
        rng = self.rng
        h = self.hidden
        x, y, z = self.near(3, numeric=True)

        def val(o: str) -> Fraction:
            return Fraction(int(h[o])) if isinstance(h[o], bool) else h[o]

        shape = rng.randrange(5)
        a, b = rng.randint(1, 4), rng.randint(-3, 3) or 1
        if shape == 0:
            text, at = f"{a} * {x} + {b} * {y} - {z}", a * val(x) + b * val(y) - val(z)
        elif shape == 1:
            text, at = f"{x} * {y} + {z}", val(x) * val(y) + val(z)
        elif shape == 2:
            text, at = f"abs({x} - {y}) + min({y}, {z})", abs(val(x) - val(y)) + min(val(y), val(z))
        elif shape == 3:
            holds = rng.random() < 0.5
            cond = self.condition(z, holds)
            text = f"({x} * 2 if {cond} else {y} - 1) + max({x}, {z})"
            at = (val(x) * 2 if holds else val(y) - 1) + max(val(x), val(z))
        else:
            text, at = f"{x} * {y} - {z} * {x} / 2", val(x) * val(y) - val(z) * val(x) / 2
        slack = Fraction(rng.randint(0, 4), 2)
        if rng.random() < 0.5:
            return {"rule": f"{text} <= {_dec(at + slack)}"}
        return {"rule": f"{text} >= {_dec(at - slack)}"}

    # --- the document ------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        rng = self.rng
        self.make_options()
        constraints = []
        makers = [self.requires, self.excludes, self.table, self.rule]
        for i in range(self.n_constraints):
            maker = rng.choices(makers, weights=[35, 25, 20, 20])[0]
            body = maker()
            constraints.append({"id": f"c{i:04d}", "message": f"Synthetic rule {i}.", **body})
        numeric = [o["id"] for o in self.options if o["type"] in ("int", "decimal")]
        flags = [o["id"] for o in self.options if o["type"] in ("enum", "bool")]
        derived = [
            {"id": f"d{k}", "value": f"{numeric[k]} * 2 + {numeric[k + 1]}"}
            for k in range(min(5, len(numeric) - 1))
        ]
        rules = []
        for k, oid in enumerate(rng.sample(flags, min(40, len(flags)))):
            when = self.condition(oid, rng.random() < 0.5)
            rules.append(
                {
                    "id": f"r{k}",
                    "label": f"Surcharge {k}",
                    "when": when,
                    "amount": rng.randint(5, 90),
                }
            )
        for k, oid in enumerate(rng.sample(numeric, min(10, len(numeric)))):
            lo = self.options[int(oid[1:])]["min"]
            rules.append(
                {"id": f"n{k}", "label": f"Size {k}", "amount": f"({oid} - {lo}) * {k + 1}"}
            )
        parts = [
            {
                "id": f"p{k}",
                "name": f"Part {k}",
                "supplier": "acme",
                "unit_cost": rng.randint(1, 50),
            }
            for k in range(20)
        ]
        parts.append(
            {
                "id": "module",
                "name": "Module assembly",
                "components": [
                    {"part": "p0", "quantity": 2},
                    {"part": "p1", "when": self.condition(flags[0], True)},
                ],
            }
        )
        bom = [{"part": "module"}]
        for k in range(2, 20):
            oid = rng.choice(flags)
            bom.append({"part": f"p{k}", "when": self.condition(oid, rng.random() < 0.5)})
        qty_opt = numeric[0]
        lo = self.options[int(qty_opt[1:])]["min"]
        bom.append({"part": "p19", "quantity": f"{qty_opt} - {lo} + 1"})
        routing = []
        for k in range(8):
            oid = rng.choice(flags)
            extra = f"{rng.randint(5, 60)} * ({self.condition(oid, True)})"
            routing.append(
                {
                    "id": f"op{k}",
                    "station": f"s{k % 4}",
                    "time": f"{rng.randint(30, 300)} + {extra}",
                }
            )
        return {
            "id": "org.example.synthetic",
            "version": "1.0.0",
            "name": f"Synthetic product ({self.n_options} options, {self.n_constraints} rules)",
            "options": self.options,
            "derived": derived,
            "constraints": constraints,
            "suppliers": [{"id": "acme", "name": "Acme", "did": _DID}],
            "parts": parts,
            "bom": bom,
            "stations": [
                {"id": f"s{k}", "name": f"Station {k}", "cost_per_hour": 30 + 10 * k}
                for k in range(4)
            ],
            "routing": routing,
            "pricing": {"base": 1000, "rules": rules},
            # numbers as text: the reference field reads a bare 0 or 1 as a boolean
            "value_model": {
                "reference": {
                    k: v if isinstance(v, bool | str) else _dec(v) for k, v in self.hidden.items()
                }
            },
        }


def _cell(value: Any) -> Any:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value


def synthetic_document(
    options: int = 300, constraints: int = 1000, *, seed: int = 1, window: int = 12
) -> dict[str, Any]:
    """The product file (as data) of a synthetic product; the same arguments, the same file.

    ``window`` is how many neighbouring options a rule picks from: small windows give
    long chains of local rules, large ones a densely connected product.
    """
    if options < 3 or constraints < 0:
        raise ValueError("a synthetic product has three options or more")
    return _Builder(options, constraints, seed, max(3, window)).document()


def synthetic_product(
    options: int = 300, constraints: int = 1000, *, seed: int = 1, window: int = 12
) -> Product:
    """A compiled synthetic product; its reference unit is a valid configuration."""
    product = product_from_data(
        synthetic_document(options, constraints, seed=seed, window=window),
        file="<synthetic>",
    )
    reference = {
        name: product.options[name].coerce(raw)
        for name, raw in product.spec.value_model.reference.items()
    }
    broken = violated(product, reference)
    if broken:  # pragma: no cover - a generator bug, never a user error
        raise AssertionError(f"the planted configuration breaks {broken[0].id}")
    return product
