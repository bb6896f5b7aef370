"""The factory message type: org.liquidfab.factory.publish.

A manufacturer publishes a version of a factory layout by signing it. The node checks
it exactly as ``load_layout`` does (schema, references, the rework loops that could
deadlock, an order stream the line cannot carry), with routing times from the product
the layout names, which must be published on the node as ``id@version``. Then it keeps
the layout forever: a version, once published, is immutable, and the first did to
publish a layout id owns it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from sqlalchemy import Connection

from liquidfab.errors import LayoutError, ProductError, Refused
from liquidfab.factory import catalog
from liquidfab.factory.format import LayoutFile
from liquidfab.factory.model import Layout, layout_from_data
from liquidfab.product import catalog as product_catalog
from liquidfab.product.definition import Product, product_from_data
from liquidfab.product.format import ProductId, SemVer
from liquidfab.protocol.registry import Context, MessageType, Registry

__all__ = [
    "PUBLISH",
    "Publish",
    "add_factory_types",
    "parse_product_ref",
    "publishable_document",
]

PUBLISH = "org.liquidfab.factory.publish"

# A published product, named as the node knows it: ``com.voltwerk.trail@1.0.0``.
_PRODUCT_ID = TypeAdapter(ProductId)
_VERSION = TypeAdapter(SemVer)


class Publish(BaseModel):
    """Payload of factory.publish: the whole layout, as the layout file holds it, with
    ``layout.product`` (when given) naming a published product as ``id@version``."""

    model_config = ConfigDict(extra="forbid")

    layout: LayoutFile


def parse_product_ref(ref: str) -> tuple[str, str] | None:
    """``("com.voltwerk.trail", "1.0.0")`` for ``"com.voltwerk.trail@1.0.0"``; None when
    ``ref`` is not of that shape (a file path, say)."""
    product_id, at, version = ref.rpartition("@")
    if not at:
        return None
    try:
        return _PRODUCT_ID.validate_python(product_id), _VERSION.validate_python(version)
    except ValidationError:
        return None


def publishable_document(layout: Layout) -> dict[str, Any]:
    """The layout as a publish message carries it.

    A product named by a file path means something only on the disk it was read from;
    when the layout was compiled with its product, ``layout.product`` becomes the
    product's published name, ``id@version``.
    """
    document = layout.document()
    product = layout.product
    if product is not None:
        document["layout"]["product"] = f"{product.id}@{product.version}"
    return document


def _product(conn: Connection, ref: str | None, where: str) -> Product | None:
    """The published product a layout names, compiled; LayoutError when there is none."""
    if ref is None:
        return None
    parsed = parse_product_ref(ref)
    if parsed is None:
        raise LayoutError(
            [
                (
                    "layout.product",
                    None,
                    f"{ref!r} is not a published product: name it as id@version "
                    "(e.g. com.voltwerk.trail@1.0.0); a file path means nothing to the node",
                )
            ],
            where,
        )
    product_id, version = parsed
    row = product_catalog.get_version(conn, product_id, version)
    if row is None:
        known = product_catalog.get_product(conn, product_id)
        hint = (
            f" (its latest version here is {known['latest']})"
            if known
            else "; publish the product first (org.liquidfab.product.publish)"
        )
        raise LayoutError(
            [
                (
                    "layout.product",
                    None,
                    f"this node holds no product {product_id} version {version}{hint}",
                )
            ],
            where,
        )
    try:
        return product_from_data(row["definition"], file=ref)
    except ProductError as e:  # pragma: no cover - a published definition compiles
        raise LayoutError(
            [("layout.product", None, f"the product does not load: {p[2]}") for p in e.problems],
            where,
        ) from e


def _problems(e: LayoutError) -> list[dict[str, Any]]:
    return [{"path": path, "message": message} for path, _line, message in e.problems]


def _publish(ctx: Context) -> dict[str, Any]:
    spec: LayoutFile = ctx.payload.layout
    info = spec.layout
    where = f"{info.id}@{info.version}"
    owner = catalog.get_layout(ctx.conn, info.id)
    if owner is not None and owner["owner"] != ctx.signer:
        raise Refused(
            "unauthorized", f"layout {info.id} belongs to {owner['owner']}; choose another id.", 403
        )
    try:
        product = _product(ctx.conn, info.product, where)
        layout = layout_from_data(
            spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            product=product,
            file=where,
        )
    except LayoutError as e:
        first = e.problems[0]
        raise Refused(
            "schema-invalid",
            f"{where}: {first[0] + ': ' if first[0] else ''}{first[2]}"
            + (f" (and {len(e.problems) - 1} more)" if len(e.problems) > 1 else ""),
            422,
            extra={"problems": _problems(e)},
        ) from e
    document = layout.document()
    digest = layout.digest()
    result = {
        "layout": info.id,
        "version": info.version,
        "digest": digest,
        "owner": ctx.signer,
        "product": info.product,
    }
    found = catalog.get_version(ctx.conn, info.id, info.version)
    if found is not None:
        if found["digest"] != digest:
            raise Refused(
                "conflict",
                f"layout {where} is published with other content (digest "
                f"{found['digest'][:19]}…); a published version never changes: "
                "publish a new version.",
                409,
                extra={"digest": found["digest"]},
            )
        latest = catalog.get_layout(ctx.conn, info.id)
        return {
            **result,
            "latest": latest["latest"] if latest else info.version,
            "result": "exists",
        }
    catalog.insert_version(
        ctx.conn,
        {
            "layout_id": info.id,
            "version": info.version,
            "digest": digest,
            "document": document,
            "product": info.product,
            "published_us": ctx.now_us,
            "published_by": f"{ctx.envelope.source} {ctx.envelope.id}",
        },
    )
    row = catalog.upsert_layout(ctx.conn, info.id, ctx.signer, info.name, info.version, ctx.now_us)
    return {**result, "latest": row["latest"], "result": "published"}


def add_factory_types(registry: Registry) -> None:
    registry.add(
        MessageType(
            type=PUBLISH,
            payload=Publish,
            handler=_publish,
            summary="Publish a version of a factory layout (immutable once published).",
            settlement="forbidden",
        )
    )
