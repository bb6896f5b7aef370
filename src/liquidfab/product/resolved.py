"""A complete configuration, worked out: its BOM explosion, price, cost and routing.

This is plain evaluation of the compiled expressions, with exact arithmetic: the
configurator finds choices, this module says what those choices mean for the parts
list, the price and the line. Money is rounded once, at the end, to six decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from liquidfab.errors import ProductError
from liquidfab.product.definition import Constraint, Feature, Line, Product
from liquidfab.product.expressions import Expr, ExpressionError, Value, evaluate

__all__ = [
    "BomItem",
    "PriceLine",
    "Resolved",
    "RoutedOperation",
    "coerce_choices",
    "money",
    "money_text",
    "resolve",
    "violated",
]

_CENT = Decimal("0.000001")


def money(value: Fraction | Decimal | int) -> Decimal:
    """An exact amount rounded to six decimals (banker's rounding)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return Decimal(value).quantize(_CENT, rounding=ROUND_HALF_EVEN)


def money_text(value: Decimal) -> str:
    """An amount as text without trailing zeros or exponent: '2499', '0.25'."""
    return format(value.normalize(), "f")


def _plain(value: Value) -> Any:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value


@dataclass(frozen=True)
class BomItem:
    """One line of the exploded BOM; ``level`` 1 is the top, assemblies precede their parts."""

    part: str
    name: str
    level: int
    quantity: Fraction
    unit: str
    supplier: str | None
    supplier_did: str | None
    unit_cost: Decimal
    lead_time_days: int
    path: tuple[str, ...]

    @property
    def purchased(self) -> bool:
        return self.supplier is not None

    @property
    def cost(self) -> Decimal:
        return money(Fraction(self.unit_cost) * self.quantity) if self.purchased else Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "name": self.name,
            "level": self.level,
            "quantity": _plain(self.quantity),
            "unit": self.unit,
            "supplier": self.supplier,
            "supplier_did": self.supplier_did,
            "unit_cost": money_text(self.unit_cost),
            "cost": money_text(self.cost),
            "lead_time_days": self.lead_time_days,
        }


@dataclass(frozen=True)
class PriceLine:
    id: str
    label: str
    amount: Decimal


@dataclass(frozen=True)
class RoutedOperation:
    id: str
    station: str
    name: str
    seconds: Fraction
    cost: Decimal
    parameters: dict[str, Value]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "station": self.station,
            "name": self.name,
            "seconds": _plain(self.seconds),
            "cost": money_text(self.cost),
            "parameters": {k: _plain(v) for k, v in self.parameters.items()},
        }


@dataclass(frozen=True)
class Resolved:
    """What one complete, valid configuration of a product is."""

    product: Product
    choices: dict[str, Value]
    derived: dict[str, Value]
    bom: list[BomItem]
    price_lines: list[PriceLine]
    operations: list[RoutedOperation]
    features: list[Feature] = field(default_factory=list)

    @property
    def price(self) -> Decimal:
        return money(sum((line.amount for line in self.price_lines), Decimal(0)))

    @property
    def material_cost(self) -> Decimal:
        return money(sum((item.cost for item in self.bom), Decimal(0)))

    @property
    def labour_cost(self) -> Decimal:
        return money(sum((op.cost for op in self.operations), Decimal(0)))

    @property
    def unit_cost(self) -> Decimal:
        """Hardware cost of one unit: purchased parts plus station time."""
        return self.material_cost + self.labour_cost

    @property
    def build_seconds(self) -> Fraction:
        return sum((op.seconds for op in self.operations), Fraction(0))

    @property
    def lead_time_days(self) -> int:
        return max((i.lead_time_days for i in self.bom if i.purchased), default=0)

    def purchased_parts(self) -> dict[str, Fraction]:
        """Total quantity of each purchased part, summed over the whole tree."""
        totals: dict[str, Fraction] = {}
        for item in self.bom:
            if item.purchased:
                totals[item.part] = totals.get(item.part, Fraction(0)) + item.quantity
        return totals

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product.id,
            "version": self.product.version,
            "choices": {k: _plain(v) for k, v in self.choices.items()},
            "derived": {k: _plain(v) for k, v in self.derived.items()},
            "price": money_text(self.price),
            "currency": self.product.currency,
            "price_lines": [
                {"id": p.id, "label": p.label, "amount": money_text(p.amount)}
                for p in self.price_lines
            ],
            "unit_cost": money_text(self.unit_cost),
            "material_cost": money_text(self.material_cost),
            "labour_cost": money_text(self.labour_cost),
            "build_seconds": _plain(self.build_seconds),
            "lead_time_days": self.lead_time_days,
            "bom": [item.to_dict() for item in self.bom],
            "operations": [op.to_dict() for op in self.operations],
            "features": [
                {
                    "id": f.id,
                    "name": f.name,
                    "kind": f.kind,
                    "included": f.included,
                    "price": f.price.model_dump(mode="json", exclude_none=True),
                }
                for f in self.features
            ],
        }


def coerce_choices(
    product: Product, raw: Mapping[str, Any], *, complete: bool = False
) -> dict[str, Value]:
    """Turn raw choices (from JSON, YAML or ``key=value``) into option values.

    Every fault is collected: unknown options, values outside the domain and, with
    ``complete``, options left unchosen.
    """
    problems: list[tuple[str, int | None, str]] = []
    out: dict[str, Value] = {}
    for key, value in raw.items():
        option = product.options.get(key)
        if option is None:
            problems.append((key, None, f"{product.id} has no option {key!r}"))
            continue
        try:
            out[key] = option.coerce(value)
        except ValueError as e:
            problems.append((key, None, str(e)))
    if complete:
        for key in product.options:
            if key not in out and key not in raw:
                problems.append((key, None, "not chosen"))
    if problems:
        raise ProductError(problems, "<configuration>")
    return out


def _env(product: Product, choices: Mapping[str, Value]) -> tuple[dict[str, Value], dict]:
    env: dict[str, Value] = dict(choices)
    derived: dict[str, Value] = {}
    for name, expr in product.derived.items():
        derived[name] = evaluate(expr, env)
    return env, derived


def violated(product: Product, choices: Mapping[str, Value]) -> list[Constraint]:
    """The constraints a complete configuration breaks (empty when it is valid)."""
    return [c for c in product.constraints if not evaluate(c.expr, choices)]


def _holds(expr: Expr | None, env: Mapping[str, Value]) -> bool:
    return expr is None or bool(evaluate(expr, env))


def _number(expr: Expr, env: Mapping[str, Value], what: str) -> Fraction:
    value = evaluate(expr, env)
    if isinstance(value, str):  # pragma: no cover - ruled out by type checking
        raise ExpressionError(f"{what} is text")
    return Fraction(int(value)) if isinstance(value, bool) else value


def resolve(product: Product, choices: Mapping[str, Value]) -> Resolved:
    """Work out a complete configuration; raises ProductError if it is incomplete or invalid."""
    missing = [k for k in product.options if k not in choices]
    if missing:
        raise ProductError([(k, None, "not chosen") for k in missing], "<configuration>")
    broken = violated(product, choices)
    if broken:
        raise ProductError(
            [(c.id, None, f"{c.message} ({c.text})") for c in broken], "<configuration>"
        )
    env, derived = _env(product, choices)
    problems: list[tuple[str, int | None, str]] = []
    bom: list[BomItem] = []

    def explode(
        lines: tuple[Line, ...] | list[Line], factor: Fraction, level: int, path: tuple[str, ...]
    ) -> None:
        for line in lines:
            if not _holds(line.when, env):
                continue
            qty = _number(line.quantity, env, "a quantity") * factor
            if qty < 0:
                problems.append((line.part, None, f"quantity {qty} is negative"))
                continue
            if qty == 0:
                continue
            part = product.parts[line.part]
            sup = part.supplier
            bom.append(
                BomItem(
                    part.id,
                    part.name,
                    level,
                    qty,
                    part.unit,
                    sup.id if sup else None,
                    sup.did if sup else None,
                    part.unit_cost,
                    part.lead_time_days,
                    (*path, part.id),
                )
            )
            explode(part.components, qty, level + 1, (*path, part.id))

    explode(product.bom, Fraction(1), 1, ())
    prices = [PriceLine("base", "Base price", product.base_price)]
    for rule in product.price_rules:
        if _holds(rule.when, env):
            amount = money(_number(rule.amount, env, "a price"))
            if amount:
                prices.append(PriceLine(rule.id, rule.label, amount))
    operations = []
    for op in product.routing:
        if not _holds(op.when, env):
            continue
        seconds = _number(op.time, env, "a time")
        if seconds < 0:
            problems.append((op.id, None, f"time {float(seconds)} s is negative"))
            continue
        rate = product.stations[op.station].cost_per_hour
        cost = money(Fraction(rate) * seconds / 3600)
        params = {k: evaluate(v, env) for k, v in op.parameters.items()}
        operations.append(RoutedOperation(op.id, op.station, op.name, seconds, cost, params))
    features = [f for f in product.features.values() if _holds(f.available_when, env)]
    if problems:
        raise ProductError(problems, "<configuration>")
    resolved = Resolved(product, dict(choices), derived, bom, prices, operations, features)
    if resolved.price < 0:
        raise ProductError([("pricing", None, "the price comes out below zero")], "<configuration>")
    return resolved
