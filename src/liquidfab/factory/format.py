"""The factory layout file format, as Pydantic models (the one source of truth).

A layout is YAML: the stations of a line in flow order (one server or k parallel), the
buffer in front of each, how long each takes (from the product's routing per variant,
or a distribution), setups from a from→to matrix, breakdowns, inspection with rework,
a shift calendar, how work arrives, and the default run (job count or horizon,
replications, seed). ``layout_json_schema()`` is what editors check against.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from liquidfab.factory.distributions import MAX_SECONDS, Distribution, as_distribution
from liquidfab.product.format import ProductId, SemVer, Slug

__all__ = [
    "ArrivalsSpec",
    "BreakdownSpec",
    "CalendarSpec",
    "InspectionSpec",
    "LayoutFile",
    "LayoutInfo",
    "RoutingTime",
    "RunSpec",
    "SetupSpec",
    "ShiftSpec",
    "StationSpec",
    "VariantSpec",
    "VariantTimes",
    "layout_json_schema",
]

MAX_STATIONS = 200
MAX_SERVERS = 256
MAX_BUFFER = 100_000
MAX_JOBS = 10_000_000
MAX_REPLICATIONS = 100_000

Dist = Annotated[Distribution, Field(description="A time in seconds: a number or a distribution.")]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Buffer = Annotated[
    int | Literal["unbounded"],
    Field(description="Places in front of the station (0 = none); 'unbounded' for no limit."),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _dist_fields(*names: str):
    """Let a bare number stand for a fixed time in the named fields."""

    def before(cls: type, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for name in names:
                if name in data:
                    data[name] = as_distribution(data[name])
        return data

    return model_validator(mode="before")(before)


class LayoutInfo(_Model):
    id: ProductId
    version: SemVer
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    product: str | None = Field(
        None,
        max_length=500,
        description="The product built here: a file path relative to the layout (for "
        "routing times per variant), or a published product id.",
    )


class RoutingTime(_Model):
    """Times from the product's routing: the sum of the operations the job's variant
    runs at ``station`` (this station's id by default), spread by ``cv``."""

    kind: Literal["routing"] = "routing"
    station: Slug | None = None
    cv: float = Field(0.0, ge=0, le=10, allow_inf_nan=False)


class VariantTimes(_Model):
    """A time per variant of the mix, for lines modelled without a product file."""

    kind: Literal["by-variant"] = "by-variant"
    times: dict[Slug, Dist] = Field(min_length=1)

    @field_validator("times", mode="before")
    @classmethod
    def _numbers(cls, v: Any) -> Any:
        return {k: as_distribution(x) for k, x in v.items()} if isinstance(v, dict) else v


Process = Annotated[
    Distribution | RoutingTime | VariantTimes,
    Field(discriminator="kind"),
]


class SetupSpec(_Model):
    """Changeover time when the variant changes: ``matrix[from][to]`` seconds, and
    ``default`` for a change the matrix does not name. The same variant needs none."""

    default: Seconds = 0.0
    matrix: dict[Slug, dict[Slug, Seconds]] = Field(default_factory=dict)


class BreakdownSpec(_Model):
    """Failures: time between failures and time to repair. ``clock: operating`` counts
    the time between failures only while the station works (wear); ``calendar``
    counts all time (power cuts, utilities)."""

    mtbf: Dist
    mttr: Dist
    clock: Literal["operating", "calendar"] = "operating"

    _numbers = _dist_fields("mtbf", "mttr")


class InspectionSpec(_Model):
    """A test after service: a share ``yield`` passes; the rest go to ``failed``:
    ``scrap``, or the id of a rework station."""

    yield_: float = Field(alias="yield", gt=0, le=1, allow_inf_nan=False)
    failed: Slug = "scrap"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StationSpec(_Model):
    id: Slug
    name: str = Field("", max_length=200)
    servers: int = Field(1, ge=1, le=MAX_SERVERS, description="Identical parallel machines.")
    buffer: Buffer = 5
    process: Process
    setup: SetupSpec | None = None
    breakdowns: BreakdownSpec | None = None
    inspection: InspectionSpec | None = None
    role: Literal["line", "rework"] = Field(
        "line", description="'rework' stations sit off the line and return work to it."
    )
    returns_to: Slug | None = Field(None, description="For a rework station: where work goes next.")

    @field_validator("buffer")
    @classmethod
    def _buffer(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 0 <= v <= MAX_BUFFER:
            raise ValueError(f"a buffer holds 0 to {MAX_BUFFER} jobs, or is 'unbounded'")
        return v

    _numbers = _dist_fields("process")

    @model_validator(mode="after")
    def _role(self) -> StationSpec:
        if self.role == "rework" and self.returns_to is None:
            raise ValueError("a rework station needs returns_to: the station work goes back to")
        if self.role == "line" and self.returns_to is not None:
            raise ValueError("returns_to is only for rework stations (role: rework)")
        return self


class ArrivalsSpec(_Model):
    """``saturated``: the first station never waits for work (line capacity studies).
    ``orders``: orders arrive with the given inter-arrival time and queue for the
    first station without limit."""

    kind: Literal["saturated", "orders"] = "saturated"
    interarrival: Dist | None = None

    _numbers = _dist_fields("interarrival")

    @model_validator(mode="after")
    def _needs(self) -> ArrivalsSpec:
        if self.kind == "orders" and self.interarrival is None:
            raise ValueError("an order stream needs interarrival: the time between orders")
        if self.kind == "saturated" and self.interarrival is not None:
            raise ValueError("interarrival is only for kind: orders")
        return self


class VariantSpec(_Model):
    name: Slug
    weight: float = Field(1.0, gt=0, le=1e9, allow_inf_nan=False)
    choices: dict[str, Any] = Field(
        default_factory=dict, description="The product options of this variant."
    )


_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ShiftSpec(_Model):
    start: str = Field(description="HH:MM")
    end: str = Field(description="HH:MM, after start (24:00 for midnight)")

    @model_validator(mode="after")
    def _times(self) -> ShiftSpec:
        for v in (self.start, self.end):
            if not _CLOCK.match(v):
                raise ValueError(f"{v!r} is not a time of day as HH:MM")
        if self.seconds(self.end) <= self.seconds(self.start):
            raise ValueError("a shift ends after it starts (use 24:00 for midnight)")
        return self

    @staticmethod
    def seconds(text: str) -> int:
        h, m = text.split(":")
        return int(h) * 3600 + int(m) * 60


class CalendarSpec(_Model):
    """Working time: the shifts of each working day. Outside them stations pause and
    resume where they stopped; orders keep arriving."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    shifts: list[ShiftSpec] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarSpec:
        spans = sorted((ShiftSpec.seconds(s.start), ShiftSpec.seconds(s.end)) for s in self.shifts)
        for (_, end), (start, _) in pairwise(spans):
            if start < end:
                raise ValueError("shifts overlap")
        if len(set(self.days)) != len(self.days):
            raise ValueError("a day is listed twice")
        return self


class RunSpec(_Model):
    """How long and how often: every run has a job count or a horizon."""

    jobs: int | None = Field(None, ge=1, le=MAX_JOBS, description="Jobs released per replication.")
    horizon: Seconds | None = Field(None, gt=0, description="Simulated seconds per replication.")
    replications: int = Field(10, ge=1, le=MAX_REPLICATIONS)
    seed: int = Field(20261124, ge=0, lt=2**63)
    warmup: int | Literal["auto"] = Field(
        "auto", description="Jobs deleted from the start; 'auto' finds it with MSER-5."
    )
    confidence: float = Field(0.95, gt=0.5, lt=1)
    target_half_width: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Add replications until the throughput CI is this tight "
        "(relative to the mean).",
    )
    max_replications: int = Field(200, ge=1, le=MAX_REPLICATIONS)

    @model_validator(mode="after")
    def _bounded(self) -> RunSpec:
        if self.jobs is None and self.horizon is None:
            raise ValueError("give jobs or horizon: every run needs an end")
        if self.jobs is not None and self.horizon is not None:
            raise ValueError("give jobs or horizon, not both")
        if isinstance(self.warmup, int) and self.warmup < 0:
            raise ValueError("warmup is a number of jobs, 0 or more")
        return self


class LayoutFile(_Model):
    """A factory layout: what is built where, in what order, and how the run is done."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$id": "https://liquidfab.org/schemas/layout.schema.json"},
    )

    layout: LayoutInfo
    blocking: Literal["after-service", "before-service"] = Field(
        "after-service",
        description="after-service: a finished job waits on its machine for room downstream; "
        "before-service: a job starts only when there is room for it downstream.",
    )
    arrivals: ArrivalsSpec = Field(default_factory=ArrivalsSpec)
    mix: list[VariantSpec] = Field(
        default_factory=lambda: [VariantSpec(name="standard")], min_length=1, max_length=1000
    )
    calendar: CalendarSpec | None = None
    stations: list[StationSpec] = Field(min_length=1, max_length=MAX_STATIONS)
    run: RunSpec = Field(default_factory=lambda: RunSpec(jobs=1000))


def layout_json_schema() -> dict[str, Any]:
    """The JSON Schema of a layout file (draft 2020-12), for editors and peers."""
    schema = LayoutFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
