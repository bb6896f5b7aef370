"""The cost model: what a personalized unit costs against a standard one on the
programmable line, what a changeover costs, and the cost per unit against volume.

What is fixed and what is marginal, so nothing is counted twice:

- **Fixed** costs do not depend on what is built. The product's ``fixed_costs``
  (engineering, tooling, a line set-up share…) are paid once and amortized over the
  volume. The line's own hourly cost (``line_cost_per_hour``: capital, floor space,
  energy, supervision; *not* the stations' ``cost_per_hour``) is paid per hour the line
  runs whatever it builds, and is shared by the units built in that hour: it comes to
  ``line_cost_per_hour / throughput`` per unit, the same for a standard and a
  personalized unit. Throughput is per working hour: the simulation's measured one
  (divided by the calendar's working share) when a report is given, else the
  bottleneck's capacity for the layout's mix.
- **Marginal** cost is what one more unit adds: its purchased parts (the exploded BOM),
  its station time at each station's hourly cost (the product's routing: this is the
  labour, priced per operation, so the stations' rates never enter the fixed costs), and
  the expected changeover per unit: the setup seconds of the layout's from→to matrix
  between consecutive different variants at each station, times that station's hourly
  cost. A layout station is priced at the product station it takes its routing times
  from (or the product station with its id); a station with a setup but no rate in the
  product is reported in the notes and counted at zero.

A standard unit is built in batches of identical units, so it changes over only between
batches: counted as no changeover per unit. Personalized units are built lot size one:
given configurations one after another in the given order (the sequence repeating, so
``n`` units make ``n`` transitions), or, when none are given, a random stream drawn from
the layout's mix (as the simulation draws it), whose expected setup per unit at a
station is ``shares @ setup @ shares`` seconds. A configuration is placed in the mix
variant whose choices it agrees with most (the first such one on a tie).

Amounts are exact fractions until reported, then rounded to six decimals like the
product's own figures (``money``); every total is the sum of its rounded parts, so a
split adds up exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from liquidfab.errors import ProductError
from liquidfab.factory.model import Layout, Variant, visit_ratios
from liquidfab.product.definition import Product
from liquidfab.product.resolved import Resolved, coerce_choices, money, money_text, resolve

__all__ = [
    "COMPONENTS",
    "CostReport",
    "CostSplit",
    "StationChangeover",
    "VolumeCost",
    "cost_model",
    "write_cost_chart",
]

#: The parts of a unit's marginal cost, in the order they are reported and stacked.
COMPONENTS: tuple[str, ...] = ("parts", "labour", "changeover")
DEFAULT_VOLUMES: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
_SETUP = 1  # index of "setup" in the simulation's station states
_FORMATS = {".png": "png", ".svg": "svg"}


@dataclass(frozen=True)
class CostSplit:
    """One unit's marginal cost: parts + labour + changeover (each rounded; exact sum)."""

    parts: Decimal
    labour: Decimal
    changeover: Decimal

    @property
    def total(self) -> Decimal:
        return self.parts + self.labour + self.changeover

    def minus(self, other: CostSplit) -> CostSplit:
        return CostSplit(
            self.parts - other.parts,
            self.labour - other.labour,
            self.changeover - other.changeover,
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "parts": money_text(self.parts),
            "labour": money_text(self.labour),
            "changeover": money_text(self.changeover),
            "total": money_text(self.total),
        }


@dataclass(frozen=True)
class StationChangeover:
    """A station's changeovers: what one costs, and what a personalized unit carries.

    ``seconds`` is the mean length of one changeover (over the variant changes the
    personalized stream makes, or over all pairs of different variants when it makes
    none); ``changes_per_unit`` the share of personalized units that bring one;
    ``measured_seconds_per_unit`` the simulation's setup time per unit processed there.
    """

    id: str
    name: str
    cost_per_hour: Decimal
    seconds: float
    cost: Decimal
    changes_per_unit: float
    seconds_per_unit: float
    cost_per_unit: Decimal
    measured_seconds_per_unit: float | None = None
    measured_setup_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "cost_per_hour": money_text(self.cost_per_hour),
            "changeover_seconds": self.seconds,
            "changeover_cost": money_text(self.cost),
            "changes_per_unit": self.changes_per_unit,
            "setup_seconds_per_unit": self.seconds_per_unit,
            "changeover_cost_per_unit": money_text(self.cost_per_unit),
            "measured_setup_seconds_per_unit": self.measured_seconds_per_unit,
            "measured_setup_share": self.measured_setup_share,
        }


@dataclass(frozen=True)
class VolumeCost:
    """Full cost per unit when ``volume`` units share the fixed costs."""

    volume: int
    fixed_per_unit: Decimal
    line_per_unit: Decimal
    standard: Decimal
    personalized: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "volume": self.volume,
            "fixed_per_unit": money_text(self.fixed_per_unit),
            "line_per_unit": money_text(self.line_per_unit),
            "standard": money_text(self.standard),
            "personalized": money_text(self.personalized),
        }


@dataclass(frozen=True)
class CostReport:
    """Standard against personalized units on one line, fixed against marginal."""

    product_id: str
    version: str
    name: str
    layout_id: str
    currency: str
    standard_choices: dict[str, Any]
    personalized_units: int
    personalized_source: str
    fixed_costs: dict[str, Decimal]
    line_cost_per_hour: Decimal
    throughput: float
    throughput_source: str
    line_per_unit: Decimal
    standard: CostSplit
    personalized: CostSplit
    stations: list[StationChangeover]
    volumes: list[VolumeCost]
    measured_changeover_per_unit: Decimal | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def fixed_total(self) -> Decimal:
        """One-off fixed costs, amortized over the volume."""
        return sum(self.fixed_costs.values(), Decimal(0))

    @property
    def standard_fixed(self) -> Decimal:
        """The fixed costs a standard product line carries."""
        return self.fixed_total

    @property
    def personalized_fixed(self) -> Decimal:
        """The fixed costs personalization carries: the same, on the same line and tools."""
        return self.fixed_total

    @property
    def difference(self) -> CostSplit:
        """Personalized less standard, per unit, component by component."""
        return self.personalized.minus(self.standard)

    @property
    def changeover_cost(self) -> Decimal:
        """One changeover through the whole line: the sum over the stations."""
        return sum((s.cost for s in self.stations), Decimal(0))

    @property
    def marginal_standard(self) -> Decimal:
        return self.standard.total

    @property
    def marginal_personalized(self) -> Decimal:
        return self.personalized.total

    def break_even_volume(self) -> int | None:
        """The volume from which fixed cost per unit falls below the personalization
        premium (None when there is no premium or no fixed cost)."""
        premium = self.difference.total
        if premium <= 0 or self.fixed_total <= 0:
            return None
        return int(-(-Fraction(self.fixed_total) // Fraction(premium)))

    def conclusion(self) -> str:
        """The claim, in one sentence: personalization adds no fixed cost."""
        d = self.difference.total
        c = self.currency
        if d > 0:
            gap = f"costs {_show(d)} {c} more per unit at every volume"
        elif d < 0:
            gap = f"costs {_show(-d)} {c} less per unit at every volume"
        else:
            gap = "costs the same per unit at every volume"
        return (
            "A personalized unit adds no fixed cost: both carry the same fixed costs "
            f"({_show(self.fixed_total)} {c}), so the curves never cross; the personalized "
            f"unit {gap} (its marginal difference)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data: amounts as exact decimal strings in ``currency``."""
        return {
            "product": self.product_id,
            "version": self.version,
            "name": self.name,
            "layout": self.layout_id,
            "currency": self.currency,
            "standard_choices": dict(self.standard_choices),
            "personalized_units": self.personalized_units,
            "personalized_source": self.personalized_source,
            "fixed": {
                "costs": {k: money_text(v) for k, v in self.fixed_costs.items()},
                "total": money_text(self.fixed_total),
                "standard": money_text(self.standard_fixed),
                "personalized": money_text(self.personalized_fixed),
                "line_cost_per_hour": money_text(self.line_cost_per_hour),
                "line_per_unit": money_text(self.line_per_unit),
            },
            "throughput_per_hour": self.throughput,
            "throughput_source": self.throughput_source,
            "marginal": {
                "standard": self.standard.to_dict(),
                "personalized": self.personalized.to_dict(),
                "difference": self.difference.to_dict(),
            },
            "changeover": {
                "cost": money_text(self.changeover_cost),
                "stations": [s.to_dict() for s in self.stations],
                "estimated_per_unit": money_text(self.personalized.changeover),
                "measured_per_unit": (
                    None
                    if self.measured_changeover_per_unit is None
                    else money_text(self.measured_changeover_per_unit)
                ),
            },
            "volumes": [v.to_dict() for v in self.volumes],
            "break_even_volume": self.break_even_volume(),
            "conclusion": self.conclusion(),
            "notes": list(self.notes),
        }

    def text(self) -> list[str]:
        """The report as lines for a terminal."""
        c = self.currency
        out = [
            f"Cost model: {self.name} ({self.product_id} {self.version}) on {self.layout_id}, "
            f"per unit, in {c}",
            f"Personalized: {self.personalized_source}",
            "",
            f"Fixed costs {_show(self.fixed_total):>14} (the same for standard and personalized)",
        ]
        for key, amount in self.fixed_costs.items():
            out.append(f"  {key:<24}{_show(amount):>14}")
        out.append(
            f"  line {_show(self.line_cost_per_hour)}/h at {self.throughput:,.2f} units/h "
            f"({self.throughput_source}): {_show(self.line_per_unit)} per unit"
        )
        out += ["", "Marginal cost per unit"]
        rows = [("", "standard", "personalized", "difference")]
        diff = self.difference
        for name in (*COMPONENTS, "total"):
            rows.append(
                (
                    name,
                    _show(getattr(self.standard, name)),
                    _show(getattr(self.personalized, name)),
                    _show(getattr(diff, name)),
                )
            )
        out += _table(rows, right=(1, 2, 3))
        out += ["", f"One changeover costs {_show(self.changeover_cost)} {c}"]
        rows = [("station", "rate/h", "seconds", "cost", "changes/unit", "per unit", "measured")]
        for s in self.stations:
            measured = (
                "-"
                if s.measured_seconds_per_unit is None
                else f"{s.measured_seconds_per_unit:,.1f} s"
            )
            rows.append(
                (
                    s.id,
                    _show(s.cost_per_hour),
                    f"{s.seconds:,.0f}",
                    _show(s.cost),
                    f"{s.changes_per_unit:.3f}",
                    f"{s.seconds_per_unit:,.1f} s",
                    measured,
                )
            )
        out += _table(rows, right=(1, 2, 3, 4, 5, 6))
        if self.measured_changeover_per_unit is not None:
            out.append(
                f"  simulated: {_show(self.measured_changeover_per_unit)} per unit against "
                f"{_show(self.personalized.changeover)} estimated"
            )
        out += ["", "Cost per unit against volume"]
        rows = [("units", "fixed/unit", "standard", "personalized")]
        for v in self.volumes:
            rows.append(
                (f"{v.volume:,}", _show(v.fixed_per_unit), _show(v.standard), _show(v.personalized))
            )
        rows.append(
            ("∞", _show(Decimal(0)), _show(self.marginal_standard + self.line_per_unit),
             _show(self.marginal_personalized + self.line_per_unit))
        )  # fmt: skip
        out += _table(rows, right=(0, 1, 2, 3))
        out += ["", self.conclusion() + "."]
        volume = self.break_even_volume()
        if volume is not None:
            out.append(
                f"From {volume:,} units the fixed cost per unit is below the personalization "
                "premium."
            )
        for note in self.notes:
            out.append(f"  - {note}")
        return out


def cost_model(
    product: Product,
    layout: Layout,
    *,
    standard: Mapping[str, Any] | None = None,
    personalized: Sequence[Mapping[str, Any]] | None = None,
    volumes: Sequence[int] = DEFAULT_VOLUMES,
    line_cost_per_hour: Decimal | int | str | None = None,
    report: Any = None,
    simulate_jobs: int | None = None,
) -> CostReport:
    """Price a standard and a personalized unit of ``product`` on ``layout``.

    ``standard`` (choices; completed at the lowest price when partial) defaults to the
    product's value-model reference unit, else the layout's first variant.
    ``personalized`` (a list of configurations) defaults to the layout's mix. ``report``
    (a simulation ``Report`` of this layout) gives the measured throughput and setup
    time to check the changeover estimate against; without one, ``simulate_jobs`` runs a
    small simulation (two replications of that many jobs) to get one. Invalid
    configurations raise the product's ProductError; bad volumes or a negative line cost
    raise ValueError.
    """
    points = _volumes(volumes)
    if report is None and simulate_jobs is not None:
        from liquidfab.factory.simulation import simulate

        report = simulate(layout, jobs=simulate_jobs, replications=2)
    line_rate = _line_rate(line_cost_per_hour)
    notes: list[str] = []
    completer = _Completer(product)
    names = [v.name for v in layout.variants]

    # the standard unit
    if standard is not None:
        std = completer(standard)
        std_choices = dict(standard)
    elif product.spec.value_model.reference:
        ref = {
            k: (v if isinstance(v, bool | str) else str(v))
            for k, v in product.spec.value_model.reference.items()
        }
        std = completer(ref)
        std_choices = ref
        notes.append("standard unit: the product's reference unit (value_model.reference)")
    else:
        std = completer(layout.variants[0].choices)
        std_choices = dict(layout.variants[0].choices)
        notes.append(f"standard unit: the layout's first variant, {names[0]}")

    # the personalized units and the variant each one is built as
    rates = _station_rates(product, layout)
    if personalized is not None:
        units = list(personalized)
        if not units:
            raise ValueError("give at least one personalized configuration, or None for the mix")
        resolved = [completer(c) for c in units]
        weights = [Fraction(1, len(units))] * len(units)
        sequence = [_variant_of(r, layout.variants, product) for r in resolved]
        transitions = _sequence_transitions(sequence, len(names))
        source = (
            f"{len(units)} given configuration{'s' if len(units) != 1 else ''}, "
            "built one after another"
        )
    else:
        resolved = [completer(v.choices) for v in layout.variants]
        weights = _mix_shares(layout)
        shares = np.array([float(w) for w in weights])
        transitions = np.outer(shares, shares)
        source = (
            "a lot-size-one stream drawn from the layout's mix ("
            + ", ".join(
                f"{v.name} {float(w):.0%}" for v, w in zip(layout.variants, weights, strict=True)
            )
            + ")"
        )
    parts = sum(
        (w * Fraction(r.material_cost) for w, r in zip(weights, resolved, strict=True)), Fraction(0)
    )
    labour = sum(
        (w * Fraction(r.labour_cost) for w, r in zip(weights, resolved, strict=True)), Fraction(0)
    )

    measured = _measured_setups(report, layout)
    stations: list[StationChangeover] = []
    changeover = Fraction(0)
    for st in layout.stations:
        if st.setup is None:
            continue
        rate = rates.get(st.id)
        if rate is None:
            notes.append(f"{st.id} has setups but no hourly cost in the product: counted at 0")
            rate = Decimal(0)
        off = ~np.eye(len(names), dtype=bool)
        changes = transitions * off * (st.setup > 0)
        per_unit = float((transitions * st.setup).sum())
        p_change = float(changes.sum())
        if p_change > 0:
            seconds = float((changes * st.setup).sum()) / p_change
        else:  # the stream never changes here: show what a change would cost
            pairs = off * (st.setup > 0)
            seconds = float(st.setup[pairs].mean()) if pairs.any() else 0.0
        unit_cost = Fraction(rate) * Fraction(per_unit) / 3600
        changeover += unit_cost
        got = measured.get(st.index) if measured else None
        stations.append(
            StationChangeover(
                id=st.id,
                name=st.name,
                cost_per_hour=rate,
                seconds=seconds,
                cost=money(Fraction(rate) * Fraction(seconds) / 3600),
                changes_per_unit=p_change,
                seconds_per_unit=per_unit,
                cost_per_unit=money(unit_cost),
                measured_seconds_per_unit=None if got is None else got[0],
                measured_setup_share=None if got is None else got[1],
            )
        )
    measured_cost = None
    if measured:
        total = Fraction(0)
        for s in stations:
            if s.measured_seconds_per_unit is not None:
                total += Fraction(s.cost_per_hour) * Fraction(s.measured_seconds_per_unit) / 3600
        measured_cost = money(total)
        if personalized is not None:
            notes.append(
                "the simulation draws its own stream from the layout's mix: its measured "
                "setup checks the mix estimate, not the given sequence"
            )

    if report is not None:
        share = layout.calendar.share if layout.calendar else 1.0
        throughput = float(report.throughput.mean) / share
        t_source = f"simulated, {len(report.replications)} replication(s), per working hour"
    else:
        throughput = _capacity(layout)
        t_source = "bottleneck capacity of the mix, per working hour"
    line_per_unit = (
        money(Fraction(line_rate) / Fraction(throughput)) if throughput > 0 else Decimal(0)
    )
    if line_rate == 0:
        notes.append(
            "no line cost per hour given: the stations' hourly costs are in the labour of "
            "each operation and are not counted again as a fixed cost"
        )

    std_split = CostSplit(std.material_cost, std.labour_cost, Decimal(0))
    pers_split = CostSplit(money(parts), money(labour), money(changeover))
    fixed = {c.id: c.amount for c in product.fixed_costs}
    fixed_total = sum(fixed.values(), Decimal(0))
    curve = []
    for v in points:
        per_unit = money(Fraction(fixed_total) / v)
        curve.append(
            VolumeCost(
                v,
                per_unit,
                line_per_unit,
                per_unit + line_per_unit + std_split.total,
                per_unit + line_per_unit + pers_split.total,
            )
        )
    return CostReport(
        product_id=product.id,
        version=product.version,
        name=product.name,
        layout_id=layout.id,
        currency=product.currency,
        standard_choices={k: _plain(v) for k, v in std_choices.items()},
        personalized_units=len(resolved) if personalized is not None else 0,
        personalized_source=source,
        fixed_costs=fixed,
        line_cost_per_hour=line_rate,
        throughput=throughput,
        throughput_source=t_source,
        line_per_unit=line_per_unit,
        standard=std_split,
        personalized=pers_split,
        stations=stations,
        volumes=curve,
        measured_changeover_per_unit=measured_cost,
        notes=notes,
    )


class _Completer:
    """Resolve choices: coerced (unknown options refused), completed when partial."""

    def __init__(self, product: Product) -> None:
        self.product = product
        self._configurator: Any = None

    def __call__(self, raw: Mapping[str, Any]) -> Resolved:
        choices = coerce_choices(self.product, raw)
        if len(choices) == len(self.product.options):
            return resolve(self.product, choices)
        if self._configurator is None:
            from liquidfab.product import Configurator

            self._configurator = Configurator(self.product)
        done = self._configurator.complete(choices, "price")
        if done.resolved is None:
            sentences = done.conflict.sentences if done.conflict else ["no valid variant"]
            raise ProductError([("", None, "; ".join(sentences))], "<configuration>")
        return done.resolved


def _volumes(volumes: Sequence[int]) -> list[int]:
    points = list(volumes)
    if not points:
        raise ValueError("give at least one volume, e.g. 1000")
    bad = [v for v in points if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise ValueError(f"a volume is a whole number of units, 1 or more; got {bad}")
    return sorted(set(points))


def _line_rate(value: Decimal | int | str | None) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        rate = Decimal(str(value))
    except ArithmeticError as e:
        raise ValueError(f"line cost per hour {value!r} is not a number") from e
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"line cost per hour must be 0 or more, got {value!r}")
    return money(rate)


def _station_rates(product: Product, layout: Layout) -> dict[str, Decimal]:
    """Each layout station's hourly cost: the product station it takes its times from."""
    out: dict[str, Decimal] = {}
    specs = {s.id: s for s in layout.spec.stations}
    for st in layout.stations:
        spec = specs[st.id]
        target = st.id
        if spec.process.kind == "routing":
            target = spec.process.station or st.id
        if target in product.stations:
            out[st.id] = product.stations[target].cost_per_hour
    return out


def _mix_shares(layout: Layout) -> list[Fraction]:
    weights = [Fraction(v.weight) for v in layout.spec.mix]
    total = sum(weights, Fraction(0))
    return [w / total for w in weights]


def _variant_of(unit: Resolved, variants: Sequence[Variant], product: Product) -> int:
    """The mix variant whose choices this configuration agrees with most."""
    best, score = 0, -1
    for i, v in enumerate(variants):
        try:
            wanted = coerce_choices(product, v.choices)
        except ProductError:
            continue
        agree = sum(1 for k, x in wanted.items() if unit.choices.get(k) == x)
        if agree > score:
            best, score = i, agree
    return best


def _sequence_transitions(sequence: list[int], k: int) -> np.ndarray:
    """Share of from→to transitions in a repeating sequence (n units, n transitions)."""
    m = np.zeros((k, k))
    n = len(sequence)
    for a, b in zip(sequence, sequence[1:] + sequence[:1], strict=True):
        m[a, b] += 1.0 / n
    return m


def _capacity(layout: Layout) -> float:
    """Units per working hour the bottleneck allows for the layout's mix."""
    visits = visit_ratios(layout)
    worst = 0.0
    for st, v in zip(layout.stations, visits, strict=True):
        load = v * st.mean_time(layout.shares) / (st.servers * st.availability())
        worst = max(worst, load)
    return 3600.0 / worst if worst > 0 else 0.0


def _measured_setups(report: Any, layout: Layout) -> dict[int, tuple[float, float]] | None:
    """Setup seconds per unit processed and setup share of the time, by station index."""
    if report is None:
        return None
    totals = np.sum([r.totals for r in report.replications], axis=0)
    processed = np.sum([r.processed for r in report.replications], axis=0)
    out = {}
    for st in layout.stations:
        t = totals[st.index]
        whole = float(t.sum())
        done = float(processed[st.index])
        per_unit = float(t[_SETUP]) / done if done else 0.0
        out[st.index] = (per_unit, float(t[_SETUP]) / whole if whole else 0.0)
    return out


# --- the chart ----------------------------------------------------------------------------


def write_cost_chart(report: CostReport, path: Path | str) -> Path:
    """Cost per unit against volume, and the marginal split: SVG for .svg, PNG for .png."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"a chart is written as .png or .svg, not {path.suffix or 'no suffix'!r}")
    fig = Figure(figsize=(12, 4.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    _curve_panel(left, report)
    _split_panel(right, report)
    fig.suptitle(
        f"{report.name} {report.version}: standard vs personalized cost per unit "
        f"({report.currency})",
        fontsize=12,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt)
    return path


def _curve_panel(ax: Axes, report: CostReport) -> None:
    volumes = np.array([v.volume for v in report.volumes], dtype=float)
    lo, hi = volumes.min(), volumes.max()
    xs = np.geomspace(lo, hi, 200) if hi > lo else np.array([lo])
    fixed = float(report.fixed_total)
    line = float(report.line_per_unit)
    for label, marginal, colour in (
        ("standard", float(report.marginal_standard), "tab:blue"),
        ("personalized", float(report.marginal_personalized), "tab:orange"),
    ):
        ax.plot(xs, fixed / xs + line + marginal, color=colour, lw=2, label=label)
        ax.plot(
            volumes,
            [float(getattr(v, label)) for v in report.volumes],
            "o",
            color=colour,
            ms=4,
        )
        ax.axhline(
            marginal + line, color=colour, lw=1, ls="--", label=f"{label} marginal (no fixed)"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("units built (volume)")
    ax.set_ylabel(f"cost per unit ({report.currency})")
    ax.set_title("Cost per unit against volume: the same fixed costs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _split_panel(ax: Axes, report: CostReport) -> None:
    names = ["standard", "personalized"]
    splits = [report.standard, report.personalized]
    colours = {"parts": "tab:blue", "labour": "tab:green", "changeover": "tab:red"}
    bottom = np.zeros(2)
    for comp in COMPONENTS:
        heights = np.array([float(getattr(s, comp)) for s in splits])
        ax.bar(names, heights, bottom=bottom, color=colours[comp], label=comp, width=0.55)
        bottom += heights
    if report.line_per_unit:
        heights = np.full(2, float(report.line_per_unit))
        ax.bar(names, heights, bottom=bottom, color="tab:grey", label="line (fixed/hour)")
        bottom += heights
    for x, total in enumerate(bottom):
        ax.annotate(f"{total:,.2f}", (x, total), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(f"marginal cost per unit ({report.currency})")
    ax.set_title(f"Marginal split; one changeover {_show(report.changeover_cost)}")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_ylim(0, float(bottom.max()) * 1.1 if bottom.max() > 0 else 1)


# --- text helpers ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, Decimal):
        return money_text(value)
    return value


def _show(value: Decimal) -> str:
    if value and abs(value) < Decimal("0.01"):
        return money_text(money(value))
    return f"{value:,.2f}"


def _table(rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        out.append(("  " + "  ".join(cells)).rstrip())
    return out
