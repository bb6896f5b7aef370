"""Products the node holds: definitions, the configurator, the value model, and the AAS
at paths shaped like AAS Part 2 (identifiers base64url-encoded, without padding)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from liquidfab.errors import ProductError, ProtocolError
from liquidfab.node.models import Problem
from liquidfab.node.problems import PROBLEM_JSON
from liquidfab.node.products import ShelfItem
from liquidfab.product import catalog
from liquidfab.product.expressions import ExpressionError
from liquidfab.product.resolved import coerce_choices, resolve

__all__ = ["router"]

router = APIRouter(tags=["products"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
_INVALID = {422: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
_MALFORMED = {400: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
ProductIdPath = Annotated[str, Path(max_length=200, pattern=r"^[a-z0-9][a-z0-9.-]{0,199}$")]
VersionPath = Annotated[str, Path(max_length=100, pattern=r"^[0-9A-Za-z.+-]{1,100}$")]
AasIdPath = Annotated[str, Path(max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")]


class VersionOut(BaseModel):
    version: str
    digest: str
    published_us: int
    retired: bool = Field(description="Retired: it takes no new orders.")
    retired_us: int | None = None


class ProductOut(BaseModel):
    id: str
    name: str
    manufacturer: str
    latest: str = Field(description="The newest version not retired (the newest if all are).")
    versions: list[VersionOut]


class ProductVersionOut(BaseModel):
    id: str
    version: str
    digest: str
    published_us: int
    published_by: str
    retired: bool
    retired_us: int | None = None
    retired_by: str | None = None
    definition: dict[str, Any]


Choice = str | int | float | bool


class ConfigureIn(BaseModel):
    """Choices so far; ``complete`` asks for the best full configuration that keeps them."""

    model_config = ConfigDict(extra="forbid")

    choices: dict[str, Choice] = Field(default_factory=dict, max_length=2000)
    complete: bool = False
    objective: str = Field(
        "price", min_length=1, max_length=500, description="price, cost, time or an expression"
    )
    maximize: bool = False


class ConfigureOut(BaseModel):
    product: str
    version: str
    check: dict[str, Any]
    domains: dict[str, Any]
    completion: dict[str, Any] | None = None
    resolved: dict[str, Any] | None = None
    price: dict[str, Any] | None = None


def _not_found(what: str) -> ProtocolError:
    return ProtocolError("not-found", f"this node holds no {what}.", 404)


def _item(request: Request, product_id: str, version: str | None) -> ShelfItem:
    item = request.app.state.node.products.get(product_id, version)
    if item is None:
        raise _not_found(f"product {product_id}" + (f" version {version}" if version else ""))
    return item


def _product_out(conn: Any, row: dict[str, Any]) -> dict[str, Any]:
    versions = catalog.versions_of(conn, row["id"])
    return {
        **row,
        "latest": catalog.latest_of(versions) or row["latest"],
        "versions": [{**v, "retired": v["retired_us"] is not None} for v in versions],
    }


@router.get("/v1/products", response_model=list[ProductOut], summary="Published products")
def list_products(request: Request) -> list[dict[str, Any]]:
    def load(conn: Any) -> list[dict[str, Any]]:
        return [_product_out(conn, row) for row in catalog.list_products(conn)]

    return request.app.state.node.database.read(load)


@router.get(
    "/v1/products/{product_id}",
    response_model=ProductOut,
    responses=_NOT_FOUND,
    summary="A product and its versions",
)
def get_product(request: Request, product_id: ProductIdPath) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any] | None:
        row = catalog.get_product(conn, product_id)
        return _product_out(conn, row) if row else None

    found = request.app.state.node.database.read(load)
    if found is None:
        raise _not_found(f"product {product_id}")
    return found


@router.get(
    "/v1/products/{product_id}/{version}",
    response_model=ProductVersionOut,
    responses=_NOT_FOUND,
    summary="One published version: the signed definition and its digest",
)
def get_version(request: Request, product_id: ProductIdPath, version: VersionPath) -> dict:
    row = request.app.state.node.database.read(
        lambda c: catalog.get_version(c, product_id, version)
    )
    if row is None:
        raise _not_found(f"product {product_id} version {version}")
    return {"id": row.pop("product_id"), "retired": row["retired_us"] is not None, **row}


def _bad_choices(e: Exception) -> ProtocolError:
    if isinstance(e, ProductError):
        problems = [{"path": p, "message": m} for p, _line, m in e.problems]
        first = e.problems[0]
        detail = f"{first[0]}: {first[2]}" if first[0] else first[2]
    else:
        problems = [{"path": "objective", "message": str(e)}]
        detail = f"objective: {e}"
    return ProtocolError("schema-invalid", detail, 422, extra={"problems": problems})


@router.post(
    "/v1/products/{product_id}/{version}/configure",
    response_model=ConfigureOut,
    responses={**_MALFORMED, **_NOT_FOUND, **_INVALID},
    summary="Check choices, narrow the options, complete and price a configuration",
)
def configure(
    request: Request,
    product_id: ProductIdPath,
    version: VersionPath,
    body: Annotated[ConfigureIn, Body()],
) -> dict[str, Any]:
    item = _item(request, product_id, version)

    def run(cfg: Any) -> dict[str, Any]:
        check = cfg.check(body.choices)
        out: dict[str, Any] = {
            "product": product_id,
            "version": version,
            "check": check.to_dict(),
            "domains": cfg.domains(body.choices).to_dict(),
        }
        if body.complete:
            completion = cfg.complete(body.choices, body.objective, maximize=body.maximize)
            out["completion"] = completion.to_dict()
            if completion.resolved is not None:
                out["resolved"] = completion.resolved.to_dict()
        elif check.valid and len(body.choices) == len(item.product.options):
            resolved = resolve(item.product, coerce_choices(item.product, body.choices))
            out["resolved"] = resolved.to_dict()
            out["price"] = cfg.explain_price(body.choices).to_dict()
        return out

    try:
        return item.solve(run)
    except (ProductError, ExpressionError, ValueError) as e:
        raise _bad_choices(e) from e


@router.get(
    "/v1/products/{product_id}/{version}/value",
    responses=_NOT_FOUND,
    summary="The value model: hardware margin against software revenue over the life",
)
def value(request: Request, product_id: ProductIdPath, version: VersionPath) -> dict[str, Any]:
    item = _item(request, product_id, version)
    return item.solve(lambda cfg: item_value(item).to_dict())


def item_value(item: ShelfItem) -> Any:
    """The value report of a product's reference unit (its value_model.reference choices,
    completed at the lowest price)."""
    from liquidfab.product.value import value_model

    reference = item.product.spec.value_model.reference
    completion = item.configurator.complete(
        {k: (v if isinstance(v, bool | str) else str(v)) for k, v in reference.items()}, "price"
    )
    if completion.resolved is None:
        raise ProtocolError(
            "not-found", "the product's reference unit has no valid completion.", 404
        )
    return value_model(item.product, completion.resolved)


@router.get(
    "/v1/products/{product_id}/{version}/value.png",
    responses={**_NOT_FOUND, 200: {"content": {"image/png": {}}}},
    response_class=Response,
    summary="The value chart (PNG)",
)
def value_chart(request: Request, product_id: ProductIdPath, version: VersionPath) -> Response:
    item = _item(request, product_id, version)
    return Response(
        item.chart_png(lambda: item.solve(lambda cfg: item_value(item))), media_type="image/png"
    )


# --- AAS Part 2 shaped reads -------------------------------------------------------------


@router.get("/aas/shells", tags=["aas"], summary="Every Asset Administration Shell held")
def aas_shells(request: Request) -> dict[str, Any]:
    shells = request.app.state.node.products.shells()
    result = [item.aas.shell_jsonable() for item, sm in shells.values() if sm is None]
    return {"paging_metadata": {}, "result": result}


@router.get(
    "/aas/shells/{aas_identifier}",
    tags=["aas"],
    responses=_NOT_FOUND,
    summary="One shell, by its id in base64url",
)
def aas_shell(request: Request, aas_identifier: AasIdPath) -> dict[str, Any]:
    found = request.app.state.node.products.shells().get(aas_identifier)
    if found is None or found[1] is not None:
        raise _not_found(f"shell {aas_identifier}")
    return found[0].aas.shell_jsonable()


@router.get("/aas/submodels", tags=["aas"], summary="Every submodel held")
def aas_submodels(request: Request) -> dict[str, Any]:
    shells = request.app.state.node.products.shells()
    result = [item.aas.submodel_jsonable(sm) for item, sm in shells.values() if sm is not None]
    return {"paging_metadata": {}, "result": result}


@router.get(
    "/aas/submodels/{submodel_identifier}",
    tags=["aas"],
    responses=_NOT_FOUND,
    summary="One submodel, by its id in base64url",
)
def aas_submodel(request: Request, submodel_identifier: AasIdPath) -> dict[str, Any]:
    found = request.app.state.node.products.shells().get(submodel_identifier)
    if found is None or found[1] is None:
        raise _not_found(f"submodel {submodel_identifier}")
    return found[0].aas.submodel_jsonable(found[1])
