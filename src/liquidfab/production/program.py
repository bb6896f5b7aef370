"""Build programs: one order's configuration compiled into what each station does.

A ``BuildProgram`` is data: the product version it was compiled from (with the
definition's digest), the customer's choices, the software features to enable, and the
steps in routing order, each with its station, operation, parameters (jig size, colour
code, torque values…) and expected time. The Pydantic model is the one definition of
the format; ``program_json_schema()`` is generated from it.

``compile_program`` evaluates the product's routing for a configuration with the
product's own ``resolve``, so a program says exactly what the routing says. Numbers in
the routing are exact fractions; in a program they become an ``int`` when whole and
otherwise the nearest ``float`` (a finite decimal such as 0.45 or 3.5 keeps its decimal
text in JSON). A program's ``digest()`` is the SHA-256 of its RFC 8785 canonical JSON,
the way product definitions are hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Annotated, Any, Literal, Self

import rfc8785
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from liquidfab.errors import ProductError
from liquidfab.product.definition import Product
from liquidfab.product.resolved import Resolved, coerce_choices, resolve

__all__ = [
    "PROGRAM_SCHEMA_VERSION",
    "BuildProgram",
    "ParameterValue",
    "ProgramStep",
    "compile_program",
    "compile_resolved",
    "json_choices",
    "program_json_schema",
]

#: The version of the program format this module writes and reads.
PROGRAM_SCHEMA_VERSION = 1

#: A parameter or a choice as JSON carries it. Strict types keep ``True`` a boolean and
#: ``1`` an integer through a JSON round trip.
ParameterValue = StrictBool | StrictInt | StrictFloat | StrictStr

_Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, hex.")]
_Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgramStep(_Frozen):
    """One operation of the routing, as the station that performs it receives it."""

    index: int = Field(ge=0, description="Position in the program, from 0.")
    station: str = Field(min_length=1, description="The station that performs the step.")
    operation: str = Field(min_length=1, description="The routing operation's id.")
    name: str = Field(description="What the operation does, for people.")
    parameters: dict[str, ParameterValue] = Field(
        default_factory=dict, description="The operation's parameters for this configuration."
    )
    expected_seconds: _Seconds = Field(description="The routing's time for this configuration.")


class BuildProgram(_Frozen):
    """The program that builds one unit: every step of the routing, in order.

    Programs are immutable; to change one, compile a new one (``model_copy(update=...)``
    would skip validation and is not a way to edit a program).
    """

    schema_version: Literal[1] = Field(
        PROGRAM_SCHEMA_VERSION, description="Version of the program format."
    )
    product: str = Field(min_length=1, description="The product's id.")
    product_version: str = Field(min_length=1, description="The product definition's version.")
    product_digest: _Digest = Field(description="Digest of the product definition compiled.")
    order_id: str | None = Field(None, description="The order this program builds, if any.")
    choices: dict[str, ParameterValue] = Field(description="The configuration, as JSON values.")
    features: list[str] = Field(
        default_factory=list, description="Software features enabled at the flashing station."
    )
    steps: list[ProgramStep] = Field(description="The operations, in routing order.")

    @model_validator(mode="after")
    def _ordered(self) -> BuildProgram:
        for position, step in enumerate(self.steps):
            if step.index != position:
                raise ValueError(
                    f"step {position} carries index {step.index}: steps are numbered 0, 1, 2… "
                    "in routing order"
                )
        if len(set(self.features)) != len(self.features):
            raise ValueError("a feature is listed twice")
        return self

    def document(self) -> dict[str, Any]:
        """The program as JSON data (what is hashed, sent to stations and stored)."""
        return self.model_dump(mode="json", exclude_none=True)

    @cached_property
    def _digest(self) -> str:
        return hashlib.sha256(rfc8785.dumps(self.document())).hexdigest()

    def digest(self) -> str:
        """SHA-256 of the RFC 8785 canonical JSON of the program, as hex."""
        return self._digest

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; the cached digest is dropped so a copy never reports a stale one."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("_digest", None)
        return copy

    def steps_for(self, station: str) -> list[ProgramStep]:
        """The steps a station performs, in program order."""
        return [step for step in self.steps if step.station == station]

    @property
    def stations(self) -> list[str]:
        """The stations the unit visits, in order of first visit."""
        return list(dict.fromkeys(step.station for step in self.steps))

    @property
    def expected_seconds(self) -> float:
        """Total expected process time over all steps."""
        return sum(step.expected_seconds for step in self.steps)


def _json_value(value: Any) -> bool | int | float | str:
    """An exact routing value as JSON carries it: whole numbers as int, others as float."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        value = Fraction(value)
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else float(value)
    raise TypeError(f"not a parameter value: {value!r}")  # pragma: no cover - ruled out upstream


def json_choices(choices: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Option values as JSON values, the way programs and orders carry them."""
    return {k: _json_value(v) for k, v in choices.items()}


def compile_resolved(
    resolved: Resolved, *, order_id: str | None = None, features: Iterable[str] = ()
) -> BuildProgram:
    """The program for a configuration already worked out by ``resolve``.

    ``features`` are the software features bought with the order; the product's
    included features are always enabled. A feature that is unknown, or not available
    for this configuration, raises ProductError.
    """
    product = resolved.product
    available = {f.id: f for f in resolved.features}
    wanted = list(dict.fromkeys(features))
    problems: list[tuple[str, int | None, str]] = []
    for feature in wanted:
        if feature not in product.features:
            problems.append((f"features.{feature}", None, f"{product.id} has no such feature"))
        elif feature not in available:
            problems.append((f"features.{feature}", None, "not available for this configuration"))
    if problems:
        raise ProductError(problems, "<configuration>")
    enabled = [f.id for f in resolved.features if f.included or f.id in wanted]
    steps = [
        ProgramStep(
            index=i,
            station=op.station,
            operation=op.id,
            name=op.name,
            parameters={k: _json_value(v) for k, v in op.parameters.items()},
            expected_seconds=float(op.seconds),
        )
        for i, op in enumerate(resolved.operations)
    ]
    return BuildProgram(
        product=product.id,
        product_version=product.version,
        product_digest=product.digest(),
        order_id=order_id,
        choices=json_choices(resolved.choices),
        features=enabled,
        steps=steps,
    )


def compile_program(
    product: Product,
    choices: Mapping[str, Any],
    *,
    order_id: str | None = None,
    features: Iterable[str] = (),
) -> BuildProgram:
    """Compile one configuration of ``product`` into its build program.

    ``choices`` may hold raw values (from JSON, YAML or a form); they are checked the
    way the configurator checks them. Raises ``ProductError`` (from the product
    capability) when a choice is unknown or out of its domain, an option is left
    unchosen, a constraint is broken, or a requested feature is not available.
    """
    values = coerce_choices(product, choices, complete=True)
    return compile_resolved(resolve(product, values), order_id=order_id, features=features)


def program_json_schema() -> dict[str, Any]:
    """The JSON Schema of a build program, generated from ``BuildProgram``."""
    schema = BuildProgram.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://liquidfab.org/schemas/build-program.schema.json"
    return schema
