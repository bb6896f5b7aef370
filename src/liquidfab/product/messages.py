"""The product message types: org.liquidfab.product.publish and .retire.

A manufacturer publishes a version of a product definition by signing it. The node
checks it exactly as ``liquidfab product validate`` does (schema, expressions,
references, acyclic BOM, at least one valid variant), then keeps it forever: a
version, once published, is immutable.

Retiring a version stops new orders for it and nothing else: its definition stays
served, because the orders and units that name it must still be read and moved on.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from liquidfab.errors import ProductError, Refused
from liquidfab.product import catalog
from liquidfab.product.definition import Product, product_from_data
from liquidfab.product.format import ProductFile
from liquidfab.protocol.registry import Context, MessageType, Registry

__all__ = ["PUBLISH", "RETIRE", "Publish", "Retire", "add_product_types", "check_publishable"]

PUBLISH = "org.liquidfab.product.publish"
RETIRE = "org.liquidfab.product.retire"


class Publish(BaseModel):
    """Payload of product.publish: the whole definition, as the product file holds it."""

    model_config = ConfigDict(extra="forbid")

    definition: ProductFile


class Retire(BaseModel):
    """Payload of product.retire: the version that takes no new orders from now on."""

    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    note: str | None = Field(
        None, max_length=500, description="Why, for people; kept with the message."
    )


def check_publishable(product: Product) -> None:
    """Refuse a definition no one could order: its constraints leave no valid variant."""
    from liquidfab.product.configurator import Configurator

    conflict = Configurator(product, time_limit=5.0).contradictions()
    if conflict is not None:
        raise ProductError(
            [(f"constraints.{c.id}", None, c.message) for c in conflict.constraints]
            + [("", None, "together these constraints leave no valid variant")],
            f"{product.id}@{product.version}",
        )


def _problems(e: ProductError) -> list[dict[str, Any]]:
    return [{"path": path, "message": message} for path, _line, message in e.problems]


def _publish(ctx: Context) -> dict[str, Any]:
    spec: ProductFile = ctx.payload.definition
    where = f"{spec.id}@{spec.version}"
    manufacturer = spec.manufacturer or ctx.signer
    if manufacturer != ctx.signer:
        raise Refused(
            "unauthorized", f"{where} names {manufacturer} as its manufacturer; sign with it.", 403
        )
    owner = catalog.get_product(ctx.conn, spec.id)
    if owner is not None and owner["manufacturer"] != ctx.signer:
        raise Refused(
            "unauthorized", f"{spec.id} belongs to {owner['manufacturer']}; choose another id.", 403
        )
    try:
        product = product_from_data(
            spec.model_dump(mode="json", by_alias=True, exclude_none=True), file=where
        )
        document = product.document()
        digest = product.digest()
        found = catalog.get_version(ctx.conn, spec.id, spec.version)
        if found is None:
            check_publishable(product)
    except ProductError as e:
        first = e.problems[0]
        raise Refused(
            "schema-invalid",
            f"{where}: {first[0] + ': ' if first[0] else ''}{first[2]}"
            + (f" (and {len(e.problems) - 1} more)" if len(e.problems) > 1 else ""),
            422,
            extra={"problems": _problems(e)},
        ) from e
    result = {
        "product": spec.id,
        "version": spec.version,
        "digest": digest,
        "manufacturer": ctx.signer,
    }
    if found is not None:
        if found["digest"] != digest:
            raise Refused(
                "conflict",
                f"{where} is published with other content (digest {found['digest'][:12]}…); "
                "a published version never changes: publish a new version.",
                409,
                extra={"digest": found["digest"]},
            )
        return {**result, "latest": catalog.latest(ctx.conn, spec.id), "result": "exists"}
    catalog.insert_version(
        ctx.conn,
        {
            "product_id": spec.id,
            "version": spec.version,
            "digest": digest,
            "definition": document,
            "published_us": ctx.now_us,
            "published_by": f"{ctx.envelope.source} {ctx.envelope.id}",
        },
    )
    catalog.upsert_product(ctx.conn, spec.id, ctx.signer, spec.name, spec.version, ctx.now_us)
    return {**result, "latest": catalog.latest(ctx.conn, spec.id), "result": "published"}


def _retire(ctx: Context) -> dict[str, Any]:
    p: Retire = ctx.payload
    where = f"{p.product}@{p.version}"
    owner = catalog.get_product(ctx.conn, p.product)
    found = catalog.get_version(ctx.conn, p.product, p.version)
    if owner is None or found is None:
        raise Refused(
            "not-found",
            f"this node holds no product {where}; GET /v1/products lists what is published.",
            404,
        )
    if owner["manufacturer"] != ctx.signer:
        raise Refused(
            "unauthorized",
            f"{p.product} belongs to {owner['manufacturer']}; only its manufacturer retires it.",
            403,
        )
    by = f"{ctx.envelope.source} {ctx.envelope.id}"
    if not catalog.retire_version(ctx.conn, p.product, p.version, ctx.now_us, by):
        again = catalog.get_version(ctx.conn, p.product, p.version) or found
        raise Refused(
            "conflict",
            f"{where} is already retired (by {again['retired_by']}).",
            409,
            extra={"retired_by": again["retired_by"]},
        )
    return {"product": p.product, "version": p.version, "retired": True}


def add_product_types(registry: Registry) -> None:
    registry.add(
        MessageType(
            type=PUBLISH,
            payload=Publish,
            handler=_publish,
            summary="Publish a version of a product definition (immutable once published).",
            settlement="forbidden",
        )
    )
    registry.add(
        MessageType(
            type=RETIRE,
            payload=Retire,
            handler=_retire,
            summary="Retire a published product version: it takes no new orders; its "
            "definition and the orders that name it stay.",
            settlement="forbidden",
        )
    )
