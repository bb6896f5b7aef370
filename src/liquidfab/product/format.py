"""The product definition file format, as Pydantic models (the one source of truth).

A product file is YAML that these models validate; ``product_json_schema()`` gives the
JSON Schema editors use for completion and checking as you type. Expressions stay text
here; ``liquidfab.product.definition`` parses and cross-checks them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

__all__ = [
    "BomLine",
    "ConstraintSpec",
    "DerivedSpec",
    "EnumValue",
    "FeatureSpec",
    "FixedCost",
    "NameplateSpec",
    "OperationSpec",
    "OptionSpec",
    "PartSpec",
    "PriceModel",
    "PriceRule",
    "PricingSpec",
    "ProductFile",
    "StationSpec",
    "SupplierSpec",
    "TableSpec",
    "ValueModelSpec",
    "product_json_schema",
]

Ident = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="A name usable in expressions: lowercase letters, digits, underscores.",
    ),
]
Slug = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="Lowercase letters, digits, '.', '_' and '-'.",
    ),
]
ProductId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}(\.[a-z0-9][a-z0-9-]{0,62}){1,7}$",
        description="A dotted lowercase id owned by the manufacturer, e.g. com.velo.trail.",
    ),
]
SemVer = Annotated[
    str,
    Field(
        pattern=r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
        r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$",
        description="Semantic version, e.g. 1.4.0 or 2.0.0-rc.1.",
    ),
]
Did = Annotated[str, Field(pattern=r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,190}$")]
Expression = Annotated[
    str | int | float | bool,
    Field(description="An expression over option values (see docs/products.md)."),
]
Condition = Annotated[
    str | bool,
    Field(description="A true/false expression over option values (a selection condition)."),
]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EnumValue(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]
    label: str | None = None
    when: Condition | None = Field(
        None, description="Precondition: this value may be chosen only when it holds."
    )


class OptionSpec(_Strict):
    """A characteristic the customer chooses: enumeration, boolean, integer or decimal."""

    id: Ident
    label: str | None = None
    type: Literal["enum", "bool", "int", "decimal"]
    values: list[EnumValue | str] | None = Field(None, description="For enum: the values.")
    min: Decimal | None = Field(None, description="For int and decimal: the lowest value.")
    max: Decimal | None = Field(None, description="For int and decimal: the highest value.")
    step: Decimal | None = Field(None, gt=0, description="For int and decimal: the increment.")
    unit: str | None = None
    default: str | StrictBool | Decimal | None = None
    group: str | None = Field(None, description="A heading for forms, e.g. 'Drive'.")

    @model_validator(mode="after")
    def _shape(self) -> OptionSpec:
        if self.type == "enum":
            if not self.values:
                raise ValueError("an enum option lists its values")
            if self.min is not None or self.max is not None:
                raise ValueError("an enum option has values, not min/max")
        else:
            if self.values:
                raise ValueError(
                    f"a{'n' if self.type == 'int' else ''} {self.type} option has no 'values'"
                )
            if self.type in ("int", "decimal"):
                if self.min is None or self.max is None:
                    raise ValueError(f"an {self.type} option needs min and max")
                if self.min > self.max:
                    raise ValueError("min is above max")
                if self.type == "int" and any(
                    v is not None and v != v.to_integral_value()
                    for v in (self.min, self.max, self.step)
                ):
                    raise ValueError("an int option has whole-number min, max and step")
                if self.type == "decimal" and self.step is None:
                    raise ValueError("a decimal option needs a step (e.g. 0.5)")
        return self

    def enum_values(self) -> list[EnumValue]:
        return [v if isinstance(v, EnumValue) else EnumValue(id=v) for v in self.values or []]


class DerivedSpec(_Strict):
    """A value computed from the options (SAP's procedures), usable in any expression."""

    id: Ident
    label: str | None = None
    value: Expression
    unit: str | None = None


class TableSpec(_Strict):
    """A variant table: the combinations of ``columns`` that are allowed (or forbidden)."""

    columns: list[Ident] = Field(min_length=1)
    rows: list[list[str | int | float | bool]] = Field(min_length=1)
    allow: bool = Field(True, description="True: only these rows; false: never these rows.")


class Implication(_Strict):
    if_: Condition = Field(alias="if")
    then: Condition


class ConstraintSpec(_Strict):
    """One rule a valid configuration keeps; ``message`` says it in words for people."""

    id: Slug
    message: str = Field(min_length=1, max_length=300)
    when: Condition | None = Field(None, description="The rule applies only when this holds.")
    rule: Condition | None = Field(None, description="Must hold, e.g. battery_wh * motor_w <= 6e4")
    requires: Implication | None = None
    excludes: list[Condition] | None = Field(
        None, min_length=2, description="These conditions never hold together."
    )
    table: TableSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> ConstraintSpec:
        given = [k for k in ("rule", "requires", "excludes", "table") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a constraint has exactly one of rule, requires, excludes, table")
        return self


class SupplierSpec(_Strict):
    id: Slug
    name: str
    did: Did


class Component(_Strict):
    part: Slug
    quantity: Expression = 1
    when: Condition | None = None


class PartSpec(_Strict):
    """A part from a supplier, or an assembly made in house from components."""

    id: Slug
    name: str
    supplier: Slug | None = Field(None, description="A supplier id; none for an assembly.")
    unit_cost: Money = Decimal(0)
    lead_time_days: int = Field(0, ge=0, le=3650)
    unit: str = "pc"
    components: list[Component] = Field(default_factory=list)
    mass_kg: Decimal | None = Field(None, ge=0)


class BomLine(_Strict):
    part: Slug
    quantity: Expression = 1
    when: Condition | None = None


class StationSpec(_Strict):
    id: Slug
    name: str
    cost_per_hour: Money = Decimal(0)


class OperationSpec(_Strict):
    """One operation at a station; ``time`` in seconds may depend on the options."""

    id: Slug
    station: Slug
    name: str | None = None
    time: Expression
    when: Condition | None = None
    parameters: dict[str, Expression] = Field(
        default_factory=dict, description="Values for the station's program, as expressions."
    )


class PriceModel(_Strict):
    model: Literal["included", "one-time", "subscription", "trial-then-paid", "per-use"]
    amount: Money = Decimal(0)
    period: Literal["month", "year"] | None = None
    trial_days: int | None = Field(None, ge=1, le=365)
    unit: str | None = Field(None, description="For per-use: what one use is.")

    @model_validator(mode="after")
    def _shape(self) -> PriceModel:
        if self.model in ("subscription", "trial-then-paid") and self.period is None:
            raise ValueError(f"a {self.model} price has a period (month or year)")
        if self.model == "trial-then-paid" and self.trial_days is None:
            raise ValueError("a trial-then-paid price has trial_days")
        if self.model == "per-use" and not self.unit:
            raise ValueError("a per-use price names its unit")
        if self.model == "included" and self.amount:
            raise ValueError("an included feature has no amount")
        return self


class FeatureSpec(_Strict):
    """Software on the unit: firmware, an app or an AI model; included or sold after sale."""

    id: Slug
    name: str
    kind: Literal["firmware", "app", "ai-model"]
    included: bool = False
    available_when: Condition | None = None
    price: PriceModel = PriceModel(model="included")
    marginal_cost: Money = Field(
        Decimal(0), description="Running cost per unit and period (or per use), e.g. cloud."
    )
    description: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> FeatureSpec:
        if self.included and self.price.model != "included":
            raise ValueError("an included feature has the 'included' price model")
        if not self.included and self.price.model == "included":
            raise ValueError("an optional feature has a price model other than 'included'")
        return self


class PriceRule(_Strict):
    id: Slug
    label: str
    when: Condition | None = None
    amount: Expression


class PricingSpec(_Strict):
    base: Money
    rules: list[PriceRule] = Field(default_factory=list)


class FixedCost(_Strict):
    id: Slug
    label: str
    amount: Money


class ValueModelSpec(_Strict):
    """Assumptions for the value model; every one can be overridden on the command line."""

    life_months: int = Field(60, ge=1, le=600)
    units_per_month: int = Field(100, ge=1)
    attach_rates: dict[str, Annotated[Decimal, Field(ge=0, le=1)]] = Field(default_factory=dict)
    uses_per_month: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(default_factory=dict)
    monthly_churn: Decimal = Field(Decimal("0.02"), ge=0, le=1)
    trial_conversion: Decimal = Field(Decimal("0.4"), ge=0, le=1)
    reference: dict[str, str | StrictBool | Decimal] = Field(
        default_factory=dict, description="Choices of the reference unit (the rest completed)."
    )


class NameplateSpec(_Strict):
    manufacturer_name: str
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    product_family: str | None = None
    year_of_construction: int | None = Field(None, ge=1900, le=2200)
    address: str | None = None


class ProductFile(_Strict):
    """A product, as one versioned text file."""

    id: ProductId
    version: SemVer
    name: str = Field(min_length=1, max_length=200)
    manufacturer: Did | None = Field(None, description="The did that publishes the product.")
    description: str | None = None
    currency: str = Field("LQD", pattern=r"^[A-Z][A-Z0-9]{2,11}$")
    nameplate: NameplateSpec | None = None
    technical_data: dict[str, str | int | float | bool] = Field(default_factory=dict)
    options: list[OptionSpec] = Field(min_length=1)
    derived: list[DerivedSpec] = Field(default_factory=list)
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    suppliers: list[SupplierSpec] = Field(default_factory=list)
    parts: list[PartSpec] = Field(default_factory=list)
    bom: list[BomLine] = Field(default_factory=list, description="The top level of the BOM.")
    stations: list[StationSpec] = Field(default_factory=list)
    routing: list[OperationSpec] = Field(default_factory=list)
    features: list[FeatureSpec] = Field(default_factory=list)
    pricing: PricingSpec
    fixed_costs: list[FixedCost] = Field(default_factory=list)
    value_model: ValueModelSpec = ValueModelSpec()


def product_json_schema() -> dict[str, Any]:
    """The JSON Schema of a product file, for editors (yaml-language-server and others)."""
    schema = ProductFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://liquidfab.org/schemas/product.schema.json"
    return schema
