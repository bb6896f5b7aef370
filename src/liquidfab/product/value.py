"""The value model: what one unit earns from its hardware and from its software over its life.

Hardware earns its margin once, at sale; software features keep earning after it. The
model follows one reference unit month by month and says when the cumulative software
contribution passes the hardware margin, and how the cost of a unit falls with volume
while the marginal cost stays flat. All arithmetic is exact (``Fraction``); amounts are
rounded to six decimals only when reported.

Conventions, so every figure can be checked by hand:

- Amounts are expected values per unit sold: price * attach rate (the share of units that
  take the feature) * survival, where survival in month ``m`` of a paid relationship that
  began in month ``s`` is ``(1 - monthly_churn) ** (m - s)``.
- ``one-time``: paid once, in month 1. ``subscription``: billed at the start of each period
  (months 1, 2, 3, … or 1, 13, 25, …). ``trial-then-paid``: free for ``ceil(trial_days /
  30)`` months, then ``trial_conversion`` of the attached units pay like a subscription
  starting the next month. ``per-use``: amount * uses_per_month for the survivors.
  ``included``: no revenue.
- ``marginal_cost`` is charged with each payment (per period, or per use). Features with no
  recurring payment still run: included features cost it every month on every unit,
  one-time features every month on the units that bought them (churn does not apply to
  what is owned), and a trial costs it monthly (a yearly cost / 12) for every unit on trial.
- Attach rates are product-wide: one for a feature the reference unit lacks is reported
  in the notes and earns nothing for this unit. Unknown features, attach rates on included
  features and uses for features not sold per use are refused.
- Hardware margin = price - unit cost (material + labour), before fixed costs. The
  crossover month is the first month ``1..life`` whose cumulative software contribution
  is at least the hardware margin. A margin of zero or less is already matched at sale,
  so the crossover is then month 0.
- Software marginal cost per unit is the lifetime running cost of its features: what one
  more unit adds in software, next to its hardware unit cost.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import ValidationError

from liquidfab.errors import ProductError
from liquidfab.product.definition import Feature, Product
from liquidfab.product.format import ValueModelSpec
from liquidfab.product.resolved import Resolved, money, money_text

__all__ = [
    "DEFAULT_VOLUMES",
    "FeatureValue",
    "MonthValue",
    "ValueReport",
    "VolumePoint",
    "value_model",
]

#: Volumes the cost curve is shown at when none are given: one per decade.
DEFAULT_VOLUMES: tuple[int, ...] = (100, 1_000, 10_000, 100_000, 1_000_000)

_WHERE = "<value model>"


@dataclass(frozen=True)
class FeatureValue:
    """One available feature's lifetime revenue and running cost, per unit sold."""

    id: str
    name: str
    model: str
    price: str
    attach_rate: Decimal
    revenue: Decimal
    cost: Decimal
    first_month_contribution: Decimal

    @property
    def contribution(self) -> Decimal:
        return self.revenue - self.cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "model": self.model,
            "price": self.price,
            "attach_rate": _rate(self.attach_rate),
            "revenue": money_text(self.revenue),
            "cost": money_text(self.cost),
            "contribution": money_text(self.contribution),
            "first_month_contribution": money_text(self.first_month_contribution),
        }


@dataclass(frozen=True)
class MonthValue:
    """Software revenue, cost and contribution per unit in one month of its life."""

    month: int
    revenue: Decimal
    cost: Decimal
    contribution: Decimal
    cumulative: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "revenue": money_text(self.revenue),
            "cost": money_text(self.cost),
            "contribution": money_text(self.contribution),
            "cumulative": money_text(self.cumulative),
        }


@dataclass(frozen=True)
class VolumePoint:
    """Cost per unit when ``volume`` units share the fixed costs.

    ``software_share`` is software's part of the lifetime value per unit (hardware
    contribution after fixed costs plus software contribution); above 1 the hardware
    loses money at this volume and software makes up for it; None when the total is not
    positive.
    """

    volume: int
    fixed_per_unit: Decimal
    hardware_full_cost: Decimal
    hardware_marginal_cost: Decimal
    software_marginal_cost: Decimal
    hardware_contribution: Decimal
    software_contribution: Decimal
    software_share: Decimal | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "volume": self.volume,
            "fixed_per_unit": money_text(self.fixed_per_unit),
            "hardware_full_cost": money_text(self.hardware_full_cost),
            "hardware_marginal_cost": money_text(self.hardware_marginal_cost),
            "software_marginal_cost": money_text(self.software_marginal_cost),
            "hardware_contribution": money_text(self.hardware_contribution),
            "software_contribution": money_text(self.software_contribution),
            "software_share": None if self.software_share is None else _rate(self.software_share),
        }


@dataclass(frozen=True)
class ValueReport:
    """Hardware margin against software contribution over one reference unit's life."""

    product_id: str
    version: str
    name: str
    currency: str
    reference: dict[str, Any]
    reference_text: str
    assumptions: ValueModelSpec
    price: Decimal
    unit_cost: Decimal
    material_cost: Decimal
    labour_cost: Decimal
    features: list[FeatureValue]
    software_revenue: Decimal
    software_cost: Decimal
    months: list[MonthValue]
    crossover_month: int | None
    fixed_costs: dict[str, Decimal]
    volumes: list[VolumePoint]
    planned: VolumePoint
    unavailable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def life_months(self) -> int:
        return self.assumptions.life_months

    @property
    def hardware_margin(self) -> Decimal:
        """Price less unit cost, before fixed costs; may be negative."""
        return self.price - self.unit_cost

    @property
    def software_contribution(self) -> Decimal:
        return self.months[-1].cumulative if self.months else Decimal(0)

    @property
    def fixed_cost_total(self) -> Decimal:
        return sum(self.fixed_costs.values(), Decimal(0))

    def crossover_text(self) -> str:
        """One sentence: when (or whether) software passes the hardware margin."""
        if self.crossover_month == 0:
            return (
                "Software passes hardware margin at sale (month 0): the hardware margin is "
                f"{_show(self.hardware_margin)} {self.currency}, not above zero"
            )
        if self.crossover_month is None:
            return (
                f"Software does not pass hardware margin within the {self.life_months}-month "
                f"life: {_show(self.software_contribution)} against "
                f"{_show(self.hardware_margin)} {self.currency}"
            )
        return f"Software passes hardware margin in month {self.crossover_month}"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data: amounts as exact decimal strings in ``currency``."""
        return {
            "product": self.product_id,
            "version": self.version,
            "name": self.name,
            "currency": self.currency,
            "reference": dict(self.reference),
            "assumptions": self.assumptions.model_dump(mode="json"),
            "hardware": {
                "price": money_text(self.price),
                "unit_cost": money_text(self.unit_cost),
                "material_cost": money_text(self.material_cost),
                "labour_cost": money_text(self.labour_cost),
                "margin": money_text(self.hardware_margin),
            },
            "software": {
                "revenue": money_text(self.software_revenue),
                "cost": money_text(self.software_cost),
                "contribution": money_text(self.software_contribution),
            },
            "crossover_month": self.crossover_month,
            "crossover": self.crossover_text(),
            "features": [f.to_dict() for f in self.features],
            "unavailable_features": list(self.unavailable),
            "months": [m.to_dict() for m in self.months],
            "fixed_costs": {k: money_text(v) for k, v in self.fixed_costs.items()},
            "volumes": [v.to_dict() for v in self.volumes],
            "planned": self.planned.to_dict(),
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """A plain-text report for a terminal: margin, features, crossover, cost curve."""
        c = self.currency
        a = self.assumptions
        out = [
            f"Value model: {self.name} ({self.product_id} {self.version}), per unit, in {c}",
            *textwrap.wrap(f"Reference unit: {self.reference_text}", 100, subsequent_indent="  "),
            f"Assumptions: {a.life_months}-month life, {a.units_per_month} units a month, "
            f"monthly churn {_pct(a.monthly_churn)}, trial conversion {_pct(a.trial_conversion)}",
            "",
            "Hardware",
            f"  price      {_show(self.price):>14}",
            f"  unit cost  {_show(self.unit_cost):>14}  (material {_show(self.material_cost)}, "
            f"labour {_show(self.labour_cost)})",
            f"  margin     {_show(self.hardware_margin):>14}",
            "",
        ]
        if self.features:
            out.append(f"Software over the life ({a.life_months} months)")
            rows = [("feature", "price", "attach", "revenue", "cost", "contribution")]
            for f in self.features:
                rows.append(
                    (
                        f.id,
                        f.price,
                        _pct(f.attach_rate),
                        _show(f.revenue),
                        _show(f.cost),
                        _show(f.contribution),
                    )
                )
            rows.append(
                (
                    "total",
                    "",
                    "",
                    _show(self.software_revenue),
                    _show(self.software_cost),
                    _show(self.software_contribution),
                )
            )
            out += _table(rows, right=(2, 3, 4, 5))
        else:
            out.append("Software: the reference unit has no features")
        out += ["", self.crossover_text() + "."]
        total = self.hardware_margin + self.software_contribution
        if total > 0:
            out.append(
                f"Lifetime value per unit before fixed costs: {_show(total)} {c}, "
                f"of which software {_pct(self.software_contribution / total)}"
            )
        out += ["", "Cumulative software contribution per unit"]
        rows = [("month", "contribution", "cumulative", "vs hardware margin", "")]
        for m in self._sampled_months():
            gap = m.cumulative - self.hardware_margin
            mark = "<- passes" if m.month == self.crossover_month else ""
            rows.append(
                (str(m.month), _show(m.contribution), _show(m.cumulative), _show(gap), mark)
            )
        out += _table(rows, right=(0, 1, 2, 3))
        out += ["", f"Cost per unit as volume grows (fixed costs {_show(self.fixed_cost_total)})"]
        rows = [
            (
                "units",
                "fixed/unit",
                "hardware full",
                "hardware marginal",
                "software marginal",
                "software share",
            )
        ]
        for v in [*self.volumes, self.planned]:
            label = f"{v.volume:,}" + (" (planned)" if v is self.planned else "")
            share = "-" if v.software_share is None else _pct(v.software_share)
            rows.append(
                (
                    label,
                    _show(v.fixed_per_unit),
                    _show(v.hardware_full_cost),
                    _show(v.hardware_marginal_cost),
                    _show(v.software_marginal_cost),
                    share,
                )
            )
        out += _table(rows, right=(0, 1, 2, 3, 4, 5))
        out += [
            f"  planned: {a.units_per_month} units a month for {a.life_months} months.",
            "  Fixed cost per unit falls as 1/volume; the marginal cost of one more unit stays",
            "  flat. Software share: software's part of lifetime value per unit after fixed",
            "  costs ('-' where that value is not positive).",
        ]
        if self.notes:
            out += ["", "Notes"]
            for note in self.notes:
                out += textwrap.wrap(note, 100, initial_indent="  - ", subsequent_indent="    ")
        return "\n".join(out) + "\n"

    def _sampled_months(self) -> list[MonthValue]:
        stride = max(1, math.ceil(len(self.months) / 12))
        keep = {1, len(self.months)}
        keep.update(m for m in range(stride, len(self.months) + 1, stride))
        if self.crossover_month:
            keep.add(self.crossover_month)
        return [m for m in self.months if m.month in keep]


def value_model(
    product: Product,
    reference: Resolved,
    assumptions: ValueModelSpec | None = None,
    *,
    volumes: Sequence[int] | None = None,
) -> ValueReport:
    """Follow one reference unit through its life: hardware margin against software.

    ``assumptions`` default to the product's ``value_model`` section; they are validated
    again here (a ``model_copy(update=...)`` skips validation) and every fault in them is
    reported at once as a ProductError.
    """
    spec = _validated(product.spec.value_model if assumptions is None else assumptions)
    points = _volumes(volumes)
    _check(product, reference, spec)
    life = spec.life_months
    available = {f.id for f in reference.features}
    notes: list[str] = []
    revenue = [Fraction(0)] * life
    cost = [Fraction(0)] * life
    features: list[FeatureValue] = []
    for feature in reference.features:
        if feature.included:
            attach = Decimal(1)
        elif feature.id in spec.attach_rates:
            attach = spec.attach_rates[feature.id]
        else:
            attach = Decimal(0)
            notes.append(
                f"{feature.id} has no attach rate: counted as taken by no unit "
                f"(set value_model.attach_rates.{feature.id})"
            )
        uses = Fraction(spec.uses_per_month.get(feature.id, 0))
        rev, cst = _feature_months(feature, Fraction(attach), uses, spec)
        for i in range(life):
            revenue[i] += rev[i]
            cost[i] += cst[i]
        features.append(
            FeatureValue(
                feature.id,
                feature.name,
                feature.price.model,
                _price_text(feature),
                attach,
                money(sum(rev, Fraction(0))),
                money(sum(cst, Fraction(0))),
                money(rev[0] - cst[0]),
            )
        )
    unavailable = [f for f in product.features if f not in available]
    conditions = {f.id: f.available_when for f in product.spec.features}
    for fid in unavailable:
        if fid in spec.attach_rates:
            notes.append(
                f"{fid} has an attach rate ({_pct(spec.attach_rates[fid])}) but is not available "
                f"on this unit (available when {conditions.get(fid)}): it earns nothing here; "
                "choose a reference unit that has it to count it"
            )
    unpriced = [f for f in unavailable if f not in spec.attach_rates]
    if unpriced:
        notes.append(f"not available on this unit: {', '.join(unpriced)}")

    margin = Fraction(reference.price) - Fraction(reference.unit_cost)
    if margin < 0:
        notes.append(
            "the hardware sells below its unit cost; software starts ahead of it (month 0)"
        )
    months: list[MonthValue] = []
    running = Fraction(0)
    crossover: int | None = 0 if margin <= 0 else None
    for i in range(life):
        running += revenue[i] - cost[i]
        if crossover is None and running >= margin:
            crossover = i + 1
        months.append(
            MonthValue(
                i + 1,
                money(revenue[i]),
                money(cost[i]),
                money(revenue[i] - cost[i]),
                money(running),
            )
        )
    fixed = {c.id: c.amount for c in product.fixed_costs}
    fixed_total = sum((Fraction(v) for v in fixed.values()), Fraction(0))
    sw_cost = sum(cost, Fraction(0))

    def point(volume: int) -> VolumePoint:
        per_unit = fixed_total / volume
        hw = margin - per_unit
        total = hw + running
        share = money(running / total) if total > 0 else None
        return VolumePoint(
            volume,
            money(per_unit),
            money(Fraction(reference.unit_cost) + per_unit),
            money(Fraction(reference.unit_cost)),
            money(sw_cost),
            money(hw),
            money(running),
            share,
        )

    return ValueReport(
        product_id=product.id,
        version=product.version,
        name=product.name,
        currency=product.currency,
        reference={k: _plain(v) for k, v in reference.choices.items()},
        reference_text=", ".join(
            f"{k}={product.options[k].show(v)}" if k in product.options else f"{k}={v}"
            for k, v in reference.choices.items()
        ),
        assumptions=spec,
        price=money(reference.price),
        unit_cost=money(reference.unit_cost),
        material_cost=money(reference.material_cost),
        labour_cost=money(reference.labour_cost),
        features=features,
        software_revenue=money(sum(revenue, Fraction(0))),
        software_cost=money(sw_cost),
        months=months,
        crossover_month=crossover,
        fixed_costs=fixed,
        volumes=[point(v) for v in points],
        planned=point(spec.units_per_month * spec.life_months),
        unavailable=unavailable,
        notes=notes,
    )


def _feature_months(
    feature: Feature, attach: Fraction, uses: Fraction, spec: ValueModelSpec
) -> tuple[list[Fraction], list[Fraction]]:
    """Expected revenue and running cost per unit sold, month by month."""
    life = spec.life_months
    keep = 1 - Fraction(spec.monthly_churn)
    amount = Fraction(feature.price.amount)
    unit_cost = Fraction(feature.marginal_cost)
    period = 12 if feature.price.period == "year" else 1
    model = feature.price.model
    revenue = [Fraction(0)] * life
    cost = [Fraction(0)] * life
    trial = math.ceil((feature.price.trial_days or 0) / 30)
    paying = attach * Fraction(spec.trial_conversion)
    for i in range(life):
        month = i + 1
        if model == "included":
            cost[i] = unit_cost
        elif model == "one-time":
            revenue[i] = amount * attach if month == 1 else Fraction(0)
            cost[i] = unit_cost * attach
        elif model == "subscription":
            if i % period == 0:
                alive = attach * keep**i
                revenue[i] = amount * alive
                cost[i] = unit_cost * alive
        elif model == "trial-then-paid":
            if month <= trial:
                cost[i] = unit_cost * attach / period
            elif (month - trial - 1) % period == 0:
                alive = paying * keep ** (month - trial - 1)
                revenue[i] = amount * alive
                cost[i] = unit_cost * alive
        elif model == "per-use":
            alive = attach * uses * keep**i
            revenue[i] = amount * alive
            cost[i] = unit_cost * alive
    return revenue, cost


def _validated(source: ValueModelSpec) -> ValueModelSpec:
    raw = {name: getattr(source, name) for name in ValueModelSpec.model_fields}
    try:
        return ValueModelSpec.model_validate(raw)
    except ValidationError as e:
        problems: list[tuple[str, int | None, str]] = []
        for err in e.errors():
            path = ".".join(str(p) for p in ("value_model", *err["loc"]))
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append((path, None, f"{message} (got {err.get('input')!r})"))
        raise ProductError(problems, _WHERE) from None


def _volumes(volumes: Sequence[int] | None) -> list[int]:
    if volumes is None:
        return list(DEFAULT_VOLUMES)
    points = list(volumes)
    if not points:
        raise ProductError([("volumes", None, "give at least one volume, e.g. 1000")], _WHERE)
    bad = [v for v in points if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise ProductError(
            [("volumes", None, f"a volume is a whole number of units, 1 or more; got {bad}")],
            _WHERE,
        )
    return sorted(set(points))


def _check(product: Product, reference: Resolved, spec: ValueModelSpec) -> None:
    """Refuse assumptions that do not fit the product or the reference unit."""
    problems: list[tuple[str, int | None, str]] = []
    if (reference.product.id, reference.product.version) != (product.id, product.version):
        problems.append(
            (
                "reference",
                None,
                f"the reference unit is a {reference.product.id} {reference.product.version}, "
                f"not a {product.id} {product.version}",
            )
        )
    known = ", ".join(product.features) or "none"
    for key in spec.attach_rates:
        at = f"value_model.attach_rates.{key}"
        feature = product.features.get(key)
        if feature is None:
            problems.append((at, None, f"unknown feature {key!r}; the features are: {known}"))
        elif feature.included:
            problems.append((at, None, f"{key} is included on every unit; drop its attach rate"))
    for key in spec.uses_per_month:
        at = f"value_model.uses_per_month.{key}"
        feature = product.features.get(key)
        if feature is None:
            problems.append((at, None, f"unknown feature {key!r}; the features are: {known}"))
        elif feature.price.model != "per-use":
            problems.append(
                (
                    at,
                    None,
                    f"{key} is priced {feature.price.model}, not per use; "
                    "uses_per_month applies to per-use features only",
                )
            )
    for feature in reference.features:
        if (
            feature.price.model == "per-use"
            and spec.attach_rates.get(feature.id, 0) > 0
            and feature.id not in spec.uses_per_month
        ):
            problems.append(
                (
                    f"value_model.uses_per_month.{feature.id}",
                    None,
                    f"{feature.id} is paid per {feature.price.unit}; say how many uses a "
                    "unit makes a month",
                )
            )
    if problems:
        raise ProductError(problems, _WHERE)


def _price_text(feature: Feature) -> str:
    p = feature.price
    amount = _show(p.amount)
    if p.model == "included":
        return "included"
    if p.model == "one-time":
        return f"{amount} once"
    if p.model == "subscription":
        return f"{amount}/{p.period}"
    if p.model == "trial-then-paid":
        return f"{p.trial_days}-day trial, then {amount}/{p.period}"
    return f"{amount}/{p.unit}"


def _plain(value: Any) -> Any:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value


def _rate(value: Decimal) -> str:
    return money_text(money(value))


def _show(value: Decimal) -> str:
    """An amount for people: two decimals, more when a small cost would read as zero."""
    if value and abs(value) < Decimal("0.01"):
        return money_text(money(value))
    return f"{value:,.2f}"


def _pct(value: Decimal) -> str:
    text = f"{value * 100:.1f}".removesuffix(".0")
    return f"{text}%"


def _table(rows: Iterable[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    rows = list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        out.append(("  " + "  ".join(cells)).rstrip())
    return out
