"""A product definition, checked and compiled: every expression parsed, every reference
resolved, the BOM proven acyclic.

``load_product`` is the one way in. It gathers every fault it can find before it
raises, each with its file, line and path, so a definition is fixed in one pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import rfc8785
from pydantic import ValidationError

from liquidfab.errors import ProductError
from liquidfab.product.expressions import (
    Cmp,
    Const,
    Expr,
    ExpressionError,
    Logic,
    NameType,
    Not,
    Value,
    Var,
    exact_number,
    names,
    parse,
)
from liquidfab.product.format import (
    FeatureSpec,
    FixedCost,
    PriceModel,
    ProductFile,
    StationSpec,
    SupplierSpec,
)
from liquidfab.product.source import Located, dotted_path, read_source, validation_problems

__all__ = [
    "MAX_INT_DOMAIN",
    "Constraint",
    "Feature",
    "Line",
    "Operation",
    "Option",
    "Part",
    "PriceRule",
    "Product",
    "load_product",
    "product_from_data",
]

#: An int or decimal option may take at most this many values.
MAX_INT_DOMAIN = 1_000_000

Kind = Literal["enum", "bool", "int", "decimal"]


@dataclass(frozen=True)
class Option:
    """A characteristic the customer chooses, with its domain of values."""

    id: str
    label: str
    kind: Kind
    values: tuple[str, ...] = ()
    value_labels: tuple[str, ...] = ()
    min: Fraction = Fraction(0)
    max: Fraction = Fraction(0)
    step: Fraction = Fraction(1)
    unit: str | None = None
    default: Value | None = None
    group: str | None = None

    @property
    def size(self) -> int:
        """How many values the option may take."""
        if self.kind == "enum":
            return len(self.values)
        if self.kind == "bool":
            return 2
        return int((self.max - self.min) / self.step) + 1

    def domain(self) -> list[Value]:
        """Every value, in order (for int and decimal: min, min + step, …, max)."""
        if self.kind == "enum":
            return list(self.values)
        if self.kind == "bool":
            return [False, True]
        return [self.min + i * self.step for i in range(self.size)]

    def name_type(self) -> NameType:
        if self.kind == "enum":
            return NameType("str", self.values)
        return NameType("bool" if self.kind == "bool" else "num")

    def coerce(self, raw: Any) -> Value:
        """The option's value for ``raw`` (from YAML, JSON or a command line), or ValueError."""
        if self.kind == "enum":
            text = str(raw)
            if text not in self.values:
                raise ValueError(f"{text!r} is not a value of {self.id} ({', '.join(self.values)})")
            return text
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "yes", "on", "1"):
                return True
            if text in ("false", "no", "off", "0"):
                return False
            raise ValueError(f"{self.id} is true or false, not {raw!r}")
        try:
            value = raw if isinstance(raw, Fraction) else exact_number(raw)
        except ValueError:
            raise ValueError(f"{self.id} is a number, not {raw!r}") from None
        if not self.min <= value <= self.max:
            raise ValueError(f"{self.id} is between {_num(self.min)} and {_num(self.max)}")
        if (value - self.min) % self.step:
            raise ValueError(f"{self.id} moves in steps of {_num(self.step)} from {_num(self.min)}")
        return value

    def show(self, value: Value) -> str:
        """A value as people read it, with its unit."""
        if self.kind == "enum":
            i = self.values.index(str(value))
            label = self.value_labels[i]
            return label if label == value else f"{label} ({value})"
        if self.kind == "bool":
            return "yes" if value else "no"
        return f"{_num(value)}{' ' + self.unit if self.unit else ''}"  # type: ignore[arg-type]


def _num(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return str(Decimal(value.numerator) / Decimal(value.denominator))


@dataclass(frozen=True)
class Constraint:
    """A rule compiled to one true/false expression; ``text`` is the rule as written."""

    id: str
    message: str
    kind: Literal["rule", "requires", "excludes", "table", "precondition"]
    expr: Expr
    text: str
    options: frozenset[str]


@dataclass(frozen=True)
class Line:
    """One use of a part: in the top level of the BOM or inside an assembly."""

    part: str
    quantity: Expr
    when: Expr | None


@dataclass(frozen=True)
class Part:
    """A purchased part (with its supplier) or an assembly made in house."""

    id: str
    name: str
    supplier: SupplierSpec | None
    unit_cost: Decimal
    lead_time_days: int
    unit: str
    components: tuple[Line, ...]
    mass_kg: Decimal | None


@dataclass(frozen=True)
class Operation:
    """One step of the routing: station, time in seconds, program parameters."""

    id: str
    station: str
    name: str
    time: Expr
    when: Expr | None
    parameters: Mapping[str, Expr]


@dataclass(frozen=True)
class Feature:
    """A piece of software on the unit and how it is sold."""

    id: str
    name: str
    kind: str
    included: bool
    available_when: Expr | None
    price: PriceModel
    marginal_cost: Decimal
    description: str | None


@dataclass(frozen=True)
class PriceRule:
    """A line of the price: an amount that applies when its condition holds."""

    id: str
    label: str
    when: Expr | None
    amount: Expr


@dataclass
class Product:
    """A checked product definition: what the configurator, AAS export and value model read."""

    spec: ProductFile
    options: dict[str, Option]
    derived: dict[str, Expr]
    constraints: list[Constraint]
    parts: dict[str, Part]
    bom: list[Line]
    stations: dict[str, StationSpec]
    routing: list[Operation]
    features: dict[str, Feature]
    price_rules: list[PriceRule]
    base_price: Decimal
    fixed_costs: list[FixedCost]
    scope: dict[str, NameType] = field(default_factory=dict)
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def currency(self) -> str:
        return self.spec.currency

    def document(self) -> dict[str, Any]:
        """The definition as JSON data: what is signed, published and hashed."""
        return self.spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON (RFC 8785) of the definition, as hex.

        Kept once computed: a definition is not changed after it is compiled, and every
        build program names it, so placing an order would otherwise hash it again."""
        if self._digest is None:
            self._digest = hashlib.sha256(rfc8785.dumps(self.document())).hexdigest()
        return self._digest

    def variant_space(self) -> int:
        """The number of combinations before any constraint: the product of domain sizes."""
        total = 1
        for option in self.options.values():
            total *= option.size
        return total


def load_product(source: str | Path, *, file: str | None = None) -> Product:
    """Read, validate and compile a product file (a path, or the YAML/JSON text itself)."""
    located = read_source(source, file=file)
    return _compile(located)


def product_from_data(data: Mapping[str, Any], *, file: str = "<document>") -> Product:
    """Compile a definition already held as data (for example a published message's)."""
    return _compile(Located(dict(data), {}, file))


def _compile(located: Located) -> Product:
    if not isinstance(located.data, dict):
        raise ProductError([("", 1, "a product file is a mapping of fields")], located.file)
    try:
        spec = ProductFile.model_validate(located.data)
    except ValidationError as e:
        raise ProductError(validation_problems(e, located), located.file) from None
    return _Compiler(spec, located).run()


class _Compiler:
    def __init__(self, spec: ProductFile, located: Located) -> None:
        self.spec = spec
        self.located = located
        self.problems: list[tuple[str, int | None, str]] = []
        self.scope: dict[str, NameType] = {}
        self.macros: dict[str, Expr] = {}

    def fault(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append((dotted_path(path), self.located.line_of(path), message))

    def expr(self, text: Any, path: tuple[str | int, ...], want: str | None) -> Expr | None:
        try:
            return parse(text, self.scope, want=want, macros=self.macros)  # type: ignore[arg-type]
        except ExpressionError as e:
            self.fault(path, f"{e}: {text!r}")
            return None

    def unique(self, items: list[Any], where: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                self.fault((where, i, "id"), f"the id {item.id!r} is used twice in {where}")
            seen.add(item.id)

    def run(self) -> Product:
        s = self.spec
        for where in ("options", "derived", "constraints", "suppliers", "parts", "stations"):
            self.unique(getattr(s, where), where)
        self.unique(s.routing, "routing")
        self.unique(s.features, "features")
        self.unique(s.pricing.rules, "pricing.rules")
        options = self.options()
        self.scope.update({o.id: o.name_type() for o in options.values()})
        derived = self.derived(options)
        constraints = self.constraints(options)
        parts = self.parts()
        bom = [
            self.line(line.part, line.quantity, line.when, ("bom", i), parts)
            for i, line in enumerate(s.bom)
        ]
        self.acyclic(parts)
        stations = {st.id: st for st in s.stations}
        routing = self.routing(stations)
        features = self.features()
        rules = []
        for i, rule in enumerate(s.pricing.rules):
            when = None
            if rule.when is not None:
                when = self.expr(rule.when, ("pricing", "rules", i, "when"), "bool")
            amount = self.expr(rule.amount, ("pricing", "rules", i, "amount"), "num")
            rules.append(PriceRule(rule.id, rule.label, when, amount or Const(Fraction(0))))
        self.value_model(options, features)
        if self.problems:
            raise ProductError(self.problems, self.located.file)
        return Product(
            spec=s,
            options=options,
            derived=derived,
            constraints=constraints,
            parts=parts,
            bom=[b for b in bom if b is not None],
            stations=stations,
            routing=routing,
            features=features,
            price_rules=rules,
            base_price=s.pricing.base,
            fixed_costs=list(s.fixed_costs),
            scope=dict(self.scope),
        )

    def options(self) -> dict[str, Option]:
        out: dict[str, Option] = {}
        for i, spec in enumerate(self.spec.options):
            label = spec.label or spec.id.replace("_", " ").capitalize()
            if spec.type == "enum":
                values = spec.enum_values()
                ids = tuple(v.id for v in values)
                if len(set(ids)) != len(ids):
                    self.fault(("options", i, "values"), "a value is listed twice")
                option = Option(
                    spec.id,
                    label,
                    "enum",
                    ids,
                    tuple(v.label or v.id for v in values),
                    unit=spec.unit,
                    group=spec.group,
                )
            elif spec.type == "bool":
                option = Option(spec.id, label, "bool", unit=spec.unit, group=spec.group)
            else:
                try:
                    step = exact_number(spec.step) if spec.step is not None else Fraction(1)
                    lo, hi = exact_number(spec.min), exact_number(spec.max)  # type: ignore[arg-type]
                except ValueError as e:
                    self.fault(("options", i), str(e))
                    continue
                option = Option(
                    spec.id,
                    label,
                    spec.type,
                    min=lo,
                    max=hi,
                    step=step,
                    unit=spec.unit,
                    group=spec.group,
                )
                if (hi - lo) % step:
                    self.fault(("options", i, "max"), "max is not reached from min in whole steps")
                elif option.size > MAX_INT_DOMAIN:
                    self.fault(
                        ("options", i), f"more than {MAX_INT_DOMAIN:,} values; widen the step"
                    )
            if spec.default is not None:
                try:
                    option = _with_default(option, option.coerce(spec.default))
                except ValueError as e:
                    self.fault(("options", i, "default"), str(e))
            out[spec.id] = option
        return out

    def derived(self, options: dict[str, Option]) -> dict[str, Expr]:
        out: dict[str, Expr] = {}
        for i, spec in enumerate(self.spec.derived):
            if spec.id in options:
                self.fault(("derived", i, "id"), f"{spec.id!r} is already an option")
                continue
            expr = self.expr(spec.value, ("derived", i, "value"), None)
            if expr is not None:
                out[spec.id] = expr
                self.macros[spec.id] = expr
        return out

    def constraints(self, options: dict[str, Option]) -> list[Constraint]:
        out: list[Constraint] = []
        for i, spec in enumerate(self.spec.constraints):
            at = ("constraints", i)
            when = self.expr(spec.when, (*at, "when"), "bool") if spec.when is not None else None
            body: Expr | None = None
            text = ""
            kind: Any = "rule"
            if spec.rule is not None:
                body, text = self.expr(spec.rule, (*at, "rule"), "bool"), str(spec.rule)
            elif spec.requires is not None:
                kind = "requires"
                cond = self.expr(spec.requires.if_, (*at, "requires", "if"), "bool")
                then = self.expr(spec.requires.then, (*at, "requires", "then"), "bool")
                text = f"if {spec.requires.if_} then {spec.requires.then}"
                if cond is not None and then is not None:
                    body = Logic("or", (Not(cond), then))
            elif spec.excludes is not None:
                kind = "excludes"
                parts = [
                    self.expr(c, (*at, "excludes", j), "bool") for j, c in enumerate(spec.excludes)
                ]
                text = "not all of: " + "; ".join(str(c) for c in spec.excludes)
                if all(p is not None for p in parts):
                    body = Not(Logic("and", tuple(parts)))  # type: ignore[arg-type]
            elif spec.table is not None:
                kind = "table"
                body = self.table(spec.table, (*at, "table"), options)
                text = f"table over {', '.join(spec.table.columns)}"
            if body is None:
                continue
            if spec.when is not None:
                if when is None:
                    continue
                body = Logic("or", (Not(when), body))
                text = f"when {spec.when}: {text}"
            out.append(Constraint(spec.id, spec.message, kind, body, text, frozenset(names(body))))
        for i, spec in enumerate(self.spec.options):
            if spec.type != "enum":
                continue
            for j, value in enumerate(spec.enum_values()):
                if value.when is None:
                    continue
                cond = self.expr(value.when, ("options", i, "values", j, "when"), "bool")
                if cond is None:
                    continue
                chosen = Cmp("==", Var(spec.id), Const(value.id))
                body = Logic("or", (Not(chosen), cond))
                label = value.label or value.id
                out.append(
                    Constraint(
                        f"{spec.id}.{value.id}.when".lower(),
                        f"{options[spec.id].label} {label} is available only when {value.when}",
                        "precondition",
                        body,
                        f"if {spec.id} == {value.id!r} then {value.when}",
                        frozenset(names(body)),
                    )
                )
        return out

    def table(
        self, table: Any, at: tuple[str | int, ...], options: dict[str, Option]
    ) -> Expr | None:
        cols = []
        for j, col in enumerate(table.columns):
            if col not in options:
                self.fault((*at, "columns", j), f"unknown option {col!r}")
                return None
            cols.append(options[col])
        rows: list[Expr] = []
        for r, row in enumerate(table.rows):
            if len(row) != len(cols):
                self.fault((*at, "rows", r), f"a row has {len(cols)} cells, one per column")
                return None
            cells: list[Expr] = []
            for c, (option, raw) in enumerate(zip(cols, row, strict=True)):
                try:
                    value = option.coerce(raw)
                except ValueError as e:
                    self.fault((*at, "rows", r, c), str(e))
                    return None
                cells.append(Cmp("==", Var(option.id), Const(value)))
            rows.append(cells[0] if len(cells) == 1 else Logic("and", tuple(cells)))
        if table.allow:
            return rows[0] if len(rows) == 1 else Logic("or", tuple(rows))
        return Logic("and", tuple(Not(r) for r in rows)) if len(rows) > 1 else Not(rows[0])

    def parts(self) -> dict[str, Part]:
        suppliers = {sup.id: sup for sup in self.spec.suppliers}
        ids = {p.id for p in self.spec.parts}
        out: dict[str, Part] = {}
        for i, spec in enumerate(self.spec.parts):
            supplier = None
            if spec.supplier is not None:
                supplier = suppliers.get(spec.supplier)
                if supplier is None:
                    self.fault(("parts", i, "supplier"), f"unknown supplier {spec.supplier!r}")
            lines = []
            for j, comp in enumerate(spec.components):
                if comp.part not in ids:
                    self.fault(("parts", i, "components", j, "part"), f"unknown part {comp.part!r}")
                    continue
                line = self.line(
                    comp.part, comp.quantity, comp.when, ("parts", i, "components", j), None
                )
                if line is not None:
                    lines.append(line)
            out[spec.id] = Part(
                spec.id,
                spec.name,
                supplier,
                spec.unit_cost,
                spec.lead_time_days,
                spec.unit,
                tuple(lines),
                spec.mass_kg,
            )
        return out

    def line(
        self,
        part: str,
        quantity: Any,
        when: Any,
        at: tuple[str | int, ...],
        parts: dict[str, Part] | None,
    ) -> Line | None:
        if parts is not None and part not in parts:
            self.fault((*at, "part"), f"unknown part {part!r}")
            return None
        qty = self.expr(quantity, (*at, "quantity"), "num")
        cond = self.expr(when, (*at, "when"), "bool") if when is not None else None
        if qty is None or (when is not None and cond is None):
            return None
        return Line(part, qty, cond)

    def acyclic(self, parts: dict[str, Part]) -> None:
        state: dict[str, int] = {}
        index = {p.id: i for i, p in enumerate(self.spec.parts)}

        def visit(pid: str, trail: list[str]) -> None:
            state[pid] = 1
            for line in parts[pid].components:
                if line.part not in parts:
                    continue
                if state.get(line.part) == 1:
                    cycle = (
                        [*trail[trail.index(line.part) :], line.part]
                        if line.part in trail
                        else [pid, line.part]
                    )
                    self.fault(
                        ("parts", index[pid], "components"),
                        f"the BOM is cyclic: {' → '.join(cycle)}",
                    )
                elif state.get(line.part) is None:
                    visit(line.part, [*trail, line.part])
            state[pid] = 2

        for pid in parts:
            if pid not in state:
                visit(pid, [pid])

    def routing(self, stations: dict[str, StationSpec]) -> list[Operation]:
        out = []
        for i, spec in enumerate(self.spec.routing):
            at = ("routing", i)
            if spec.station not in stations:
                self.fault((*at, "station"), f"unknown station {spec.station!r}")
            time = self.expr(spec.time, (*at, "time"), "num")
            when = self.expr(spec.when, (*at, "when"), "bool") if spec.when is not None else None
            params = {}
            for key, raw in spec.parameters.items():
                param = self.expr(raw, (*at, "parameters", key), None)
                if param is not None:
                    params[key] = param
            if time is not None:
                out.append(
                    Operation(spec.id, spec.station, spec.name or spec.id, time, when, params)
                )
        return out

    def features(self) -> dict[str, Feature]:
        out = {}
        for i, spec in enumerate(self.spec.features):
            when = None
            if spec.available_when is not None:
                when = self.expr(spec.available_when, ("features", i, "available_when"), "bool")
            out[spec.id] = _feature(spec, when)
        return out

    def value_model(self, options: dict[str, Option], features: dict[str, Feature]) -> None:
        vm = self.spec.value_model
        for where in ("attach_rates", "uses_per_month"):
            for key in getattr(vm, where):
                if key not in features:
                    self.fault(("value_model", where, key), f"unknown feature {key!r}")
        for key, raw in vm.reference.items():
            if key not in options:
                self.fault(("value_model", "reference", key), f"unknown option {key!r}")
                continue
            try:
                options[key].coerce(raw)
            except ValueError as e:
                self.fault(("value_model", "reference", key), str(e))


def _feature(spec: FeatureSpec, when: Expr | None) -> Feature:
    return Feature(
        spec.id,
        spec.name,
        spec.kind,
        spec.included,
        when,
        spec.price,
        spec.marginal_cost,
        spec.description,
    )


def _with_default(option: Option, value: Value) -> Option:
    return replace(option, default=value)
