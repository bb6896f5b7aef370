"""Listing an app and publishing its versions into a territory.

``org.liquidfab.market.listing`` (the territory's owner or a co-publisher) creates or
updates ``@territory/app``: its kind, title, the product versions it targets, what a
unit must have, and its price. A new price governs new purchases; running subscriptions
keep theirs.

``org.liquidfab.market.publish`` releases a version. The bytes were uploaded first
(``PUT /v1/market/uploads/{sha256}``); the message names them and carries the
territory's TUF role metadata with the new target added, signed by the publisher's own
key (``delegation.check_role``). The node keeps the role and the release; the repository
files follow the commit (``sync``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from liquidfab.db.tables import entitlements
from liquidfab.errors import Refused
from liquidfab.market import delegation, listings, territories
from liquidfab.market.listings import KINDS, Pricing
from liquidfab.market.names import name_problem
from liquidfab.product import catalog
from liquidfab.product.expressions import ExpressionError, parse
from liquidfab.production.published import published_product
from liquidfab.protocol.registry import Context

__all__ = ["Listing", "Publish", "check_app_name", "release_custom"]

APP_PATTERN = r"^@[a-z0-9-]{2,39}/[a-z0-9-]{2,39}$"
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


class Listing(BaseModel):
    """Payload of listing."""

    model_config = ConfigDict(extra="forbid")

    app: str = Field(pattern=APP_PATTERN, description="@territory/app")
    kind: str = Field(description=f"One of {', '.join(KINDS)}.")
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field("", max_length=2000)
    product: str = Field(min_length=1, max_length=200, description="The product it runs on.")
    versions: str = Field("*", max_length=200, description="Product versions: >=1.0,<2 or *.")
    requires: str | None = Field(
        None, max_length=2000, description="What the unit must have: an expression over its "
        "configuration, in the product's language (mid_drive and battery_wh >= 500).",
    )  # fmt: skip
    pricing: Pricing


class Publish(BaseModel):
    """Payload of publish: a version of a listed app, its uploaded bytes, the signed role."""

    model_config = ConfigDict(extra="forbid")

    app: str = Field(pattern=APP_PATTERN)
    version: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Of the uploaded bytes.")
    length: int = Field(ge=1, le=MAX_UPLOAD_BYTES)
    role: dict[str, Any] = Field(
        description="The territory's TUF targets metadata, next version, with the release "
        "added, signed by the publisher's key."
    )


def check_app_name(app: str) -> None:
    """Refused (malformed) unless ``app`` is @territory/app with two well-formed names."""
    territory, _, slug = app.partition("/")
    for part in (territory, f"@{slug}"):
        problem = name_problem(part)
        if problem is not None:
            raise Refused("malformed", f"{app}: {problem}", 400)


def _territory_for(ctx: Context, app: str) -> dict[str, Any]:
    check_app_name(app)
    name = delegation.territory_of(app)
    territory = territories.get_territory(ctx.conn, name)
    if territory is None:
        raise Refused("not-found", f"no territory {name}: claim it first.", 404)
    if not territories.may_publish(territory, ctx.signer):
        raise Refused(
            "unauthorized",
            f"only {name}'s owner and co-publishers publish in it.",
            403,
        )
    return territory


def listing(ctx: Context) -> dict[str, Any]:
    p: Listing = ctx.payload
    territory = _territory_for(ctx, p.app)
    if p.kind not in KINDS:
        raise Refused("malformed", f"kind is one of {', '.join(KINDS)}.", 400)
    problem = listings.specifier_problem(p.versions)
    if problem is not None:
        raise Refused("malformed", problem, 400)
    versions = catalog.versions_of(ctx.conn, p.product)
    targeted = [v for v in versions if listings.spec_matches(p.versions, v["version"])]
    if not targeted:
        raise Refused(
            "not-found", f"no published version of {p.product} matches {p.versions}.", 404
        )
    if p.requires is not None:
        for found in targeted:
            row = catalog.get_version(ctx.conn, p.product, found["version"])
            product, _ = published_product(row)
            try:
                parse(p.requires, product.scope, want="bool", macros=product.derived)
            except ExpressionError as e:
                raise Refused(
                    "malformed",
                    f"requires does not hold as a condition on {p.product}@{row['version']}: {e}",
                    422,
                ) from e
    row = {**p.model_dump(exclude={"pricing"}), "territory": territory["name"],
           "pricing": p.pricing.model_dump(mode="json"), "listed_by": ctx.signer}  # fmt: skip
    created = listings.put_listing(ctx.conn, row, ctx.now_us)
    return {"app": p.app, "created": created}


def release_custom(listing: dict[str, Any], version: str) -> dict[str, Any]:
    """The custom fields a release's TUF target carries (devices check app and product)."""
    return {"app": listing["app"], "kind": listing["kind"], "product": listing["product"],
            "version": version}  # fmt: skip


def _holders(ctx: Context, app: str) -> list[str]:
    """The devices entitled to ``app``, their entitlements marked changed."""
    e = entitlements.c
    live = (e.feature == app) & e.revoked_us.is_(None)
    held = [r[0] for r in ctx.conn.execute(select(e.device).where(live))]
    ctx.conn.execute(update(entitlements).where(live).values(changed_us=ctx.now_us))
    return held


def publish(ctx: Context) -> dict[str, Any]:
    p: Publish = ctx.payload
    territory = _territory_for(ctx, p.app)
    listing = listings.get_listing(ctx.conn, p.app)
    if listing is None:
        raise Refused("not-found", f"no listing {p.app}: list it first.", 404)
    problem = listings.version_problem(p.version)
    if problem is not None:
        raise Refused("malformed", problem, 400)
    if any(r["version"] == p.version for r in listings.releases_of(ctx.conn, p.app)):
        raise Refused("conflict", f"{p.app} {p.version} is released already.", 409)
    uploads = ctx.node.uploads if ctx.node else None
    if uploads is None:
        raise Refused("no-repository", "this node keeps no software repository.", 409)
    upload = uploads / p.sha256
    if not upload.is_file() or upload.stat().st_size != p.length:
        raise Refused(
            "not-uploaded",
            f"no upload of {p.length} bytes with sha256 {p.sha256}: PUT it to "
            f"/v1/market/uploads/{p.sha256} first.",
            409,
        )
    role = delegation.role_name(territory["name"])
    release = {"target": delegation.target_name(p.app, p.version), "length": p.length,
               "sha256": p.sha256, "custom": release_custom(listing, p.version)}  # fmt: skip
    md = delegation.check_role(
        p.role,
        territory,
        delegation.stored_role(ctx.conn, role),
        release,
        delegation.now_utc(ctx.now_us),
    )
    delegation.store_role(ctx.conn, role, md, ctx.now_us)
    listings.insert_release(
        ctx.conn,
        {"app": p.app, "version": p.version, "target": release["target"], "sha256": p.sha256,
         "length": p.length, "published_by": ctx.signer, "published_us": ctx.now_us},
    )  # fmt: skip
    ctx.notices.append(("market", p.app))
    for device in _holders(ctx, p.app):  # their licenses now name the new release
        ctx.notices.append(("device", device))
    return {"app": p.app, "version": p.version, "target": release["target"],
            "role_version": md.signed.version}  # fmt: skip
