"""Factory layouts the node holds: the signed documents, the KPIs of a bounded simulation
run, the layout diagram and the charts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from liquidfab.errors import ProtocolError
from liquidfab.factory import catalog
from liquidfab.node.factories import CHART_FORMATS, CHARTS, MAX_JOBS, MAX_REPLICATIONS, FactoryItem
from liquidfab.node.models import Problem
from liquidfab.node.problems import PROBLEM_JSON

__all__ = ["router"]

router = APIRouter(tags=["factories"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
_UNSIMULATED = {422: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
_MALFORMED = {400: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
LayoutIdPath = Annotated[str, Path(max_length=200, pattern=r"^[a-z0-9][a-z0-9.-]{0,199}$")]
VersionPath = Annotated[str, Path(max_length=100, pattern=r"^[0-9A-Za-z.+-]{1,100}$")]
ChartPath = Annotated[str, Path(max_length=40, description=f"The chart: {' or '.join(CHARTS)}.")]
FormatPath = Annotated[
    str, Path(max_length=40, description=f"The format: {' or '.join(CHART_FORMATS)}.")
]


class LayoutVersionRef(BaseModel):
    version: str
    digest: str
    product: str | None = Field(description="The product built, as id@version.")
    published_us: int


class FactoryOut(BaseModel):
    id: str
    name: str
    owner: str = Field(description="The did that first published the layout id.")
    latest: str
    versions: list[LayoutVersionRef]


class FactoryVersionOut(BaseModel):
    id: str
    version: str
    digest: str
    owner: str
    product: str | None
    published_us: int
    published_by: str
    document: dict[str, Any] = Field(description="The layout as it was signed.")


class EstimateOut(BaseModel):
    """A mean and its confidence interval; null where a number is not finite (one
    replication has no interval)."""

    model_config = ConfigDict(extra="allow")

    mean: float | None
    half_width: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float


class StationKpiOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    servers: int
    shares: dict[str, float | None] = Field(
        description="Share of time working, in setup, failed, blocked, starved, off shift."
    )
    active: float | None
    oee: float | None
    availability: float | None
    performance: float | None
    quality: float | None


class KpisOut(BaseModel):
    """What the node's simulation run of a layout version found (``liquidfab factory
    simulate`` prints the same report)."""

    model_config = ConfigDict(extra="allow")

    layout: dict[str, Any]
    engine: str
    jobs: int | None
    horizon: float | None
    replications: int
    throughput_per_hour: EstimateOut
    lead_time_seconds: EstimateOut
    wip: EstimateOut
    lead_time_quantiles: dict[str, float | None]
    stations: list[StationKpiOut]
    bottleneck: str
    bottleneck_ranking: list[str]
    notes: list[str]


def _not_found(what: str) -> ProtocolError:
    return ProtocolError("not-found", f"this node holds no {what}.", 404)


def _item(request: Request, layout_id: str, version: str) -> FactoryItem:
    item = request.app.state.node.factories.get(layout_id, version)
    if item is None:
        raise _not_found(f"factory layout {layout_id} version {version}")
    return item


def _factory_out(conn: Any, row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "versions": catalog.versions_of(conn, row["id"])}


@router.get("/v1/factories", response_model=list[FactoryOut], summary="Published factory layouts")
def list_factories(request: Request) -> list[dict[str, Any]]:
    def load(conn: Any) -> list[dict[str, Any]]:
        return [_factory_out(conn, row) for row in catalog.list_layouts(conn)]

    return request.app.state.node.database.read(load)


@router.get(
    "/v1/factories/{layout_id}",
    response_model=FactoryOut,
    responses=_NOT_FOUND,
    summary="A factory layout and its versions",
)
def get_factory(request: Request, layout_id: LayoutIdPath) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any] | None:
        row = catalog.get_layout(conn, layout_id)
        return _factory_out(conn, row) if row else None

    found = request.app.state.node.database.read(load)
    if found is None:
        raise _not_found(f"factory layout {layout_id}")
    return found


@router.get(
    "/v1/factories/{layout_id}/{version}",
    response_model=FactoryVersionOut,
    responses=_NOT_FOUND,
    summary="One published layout version: the signed document, its digest and owner",
)
def get_factory_version(
    request: Request, layout_id: LayoutIdPath, version: VersionPath
) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any] | None:
        row = catalog.get_version(conn, layout_id, version)
        owner = catalog.get_layout(conn, layout_id)
        return {**row, "owner": owner["owner"]} if row and owner else None

    row = request.app.state.node.database.read(load)
    if row is None:
        raise _not_found(f"factory layout {layout_id} version {version}")
    return {"id": row.pop("layout_id"), **row}


@router.get(
    "/v1/factories/{layout_id}/{version}/kpis",
    response_model=KpisOut,
    responses={**_NOT_FOUND, **_UNSIMULATED},
    summary="The KPIs of the node's simulation run of a layout version",
    description=f"Throughput, lead time and WIP with confidence intervals, per-station "
    f"state shares, OEE and the bottleneck ranking. The node runs each version once, on "
    f"first request, bounded to {MAX_JOBS} jobs (or the horizon they would take) and "
    f"{MAX_REPLICATIONS} replications; `notes` says when that is less than the layout asks. "
    "A layout that cannot be simulated is refused with `simulation-failed` (422).",
)
def get_kpis(request: Request, layout_id: LayoutIdPath, version: VersionPath) -> dict[str, Any]:
    return _item(request, layout_id, version).kpis()


@router.get(
    "/v1/factories/{layout_id}/{version}/diagram.svg",
    responses={**_NOT_FOUND, 200: {"content": {"image/svg+xml": {}}}},
    response_class=Response,
    summary="The layout drawn as a diagram (SVG), shaded by the KPIs",
)
def get_diagram(request: Request, layout_id: LayoutIdPath, version: VersionPath) -> Response:
    item = _item(request, layout_id, version)
    return Response(item.diagram(), media_type="image/svg+xml")


@router.get(
    "/v1/factories/{layout_id}/{version}/charts/{name}.{fmt}",
    responses={
        **_MALFORMED,
        **_NOT_FOUND,
        **_UNSIMULATED,
        200: {"content": {media: {} for media in CHART_FORMATS.values()}},
    },
    response_class=Response,
    summary="A chart of the KPIs: states (state shares per station) or gantt (the first "
    "jobs), as png or svg",
)
def get_chart(
    request: Request,
    layout_id: LayoutIdPath,
    version: VersionPath,
    name: ChartPath,
    fmt: FormatPath,
) -> Response:
    if name not in CHARTS:
        raise _not_found(f"chart {name!r}; the charts are {' and '.join(CHARTS)}")
    if fmt not in CHART_FORMATS:
        raise ProtocolError(
            "malformed", f"a chart is {' or '.join(CHART_FORMATS)}, not {fmt!r}.", 400
        )
    item = _item(request, layout_id, version)
    return Response(item.chart(name, fmt), media_type=CHART_FORMATS[fmt])
