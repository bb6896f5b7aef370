"""The market's store API: apps, quotes, a territory's signed role, uploads, earnings and
subscriptions (docs/market.md). Writes are signed messages; the one exception is the
upload of a release's bytes, which are only kept, never served, until a signed release
names them by hash."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from liquidfab.db.tables import market_subscriptions
from liquidfab.errors import ProtocolError
from liquidfab.fleet import registry
from liquidfab.market import delegation, fees, listings, purchases, territories
from liquidfab.market.listing_messages import MAX_UPLOAD_BYTES
from liquidfab.market.listings import Pricing
from liquidfab.market.purchase_messages import compatible_listing
from liquidfab.node.models import Problem
from liquidfab.node.params import Whole
from liquidfab.node.problems import PROBLEM_JSON

__all__ = ["router"]

router = APIRouter(tags=["market"])
_PROBLEMS = {s: {"model": Problem, "content": {PROBLEM_JSON: {}}} for s in (404, 409, 422)}
Territory = Annotated[str, Path(pattern=r"^@[a-z0-9-]{2,39}$")]
Slug = Annotated[str, Path(pattern=r"^[a-z0-9-]{2,39}$")]


class AppOut(BaseModel):
    app: str
    territory: str
    kind: str
    title: str
    summary: str
    product: str
    versions: str = Field(description="The product versions it runs on.")
    requires: str | None = Field(description="What the unit must have.")
    pricing: dict[str, Any]
    listed_by: str
    listed_us: int
    updated_us: int
    latest: str | None = Field(description="Its newest released version.")
    releases: list[dict[str, Any]] = Field(default_factory=list)


def _with_latest(conn: Any, row: dict[str, Any], releases: bool = False) -> dict[str, Any]:
    found = listings.releases_of(conn, row["app"])
    out = {**row, "latest": found[0]["version"] if found else None}
    if releases:
        out["releases"] = found
    return out


@router.get("/v1/market/apps", response_model=list[AppOut], summary="The store: apps listed")
def list_apps(
    request: Request,
    territory: Annotated[str | None, Query(max_length=40)] = None,
    product: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=100, description="Search words.")] = None,
    after: Annotated[str | None, Query(max_length=100, description="The last app seen.")] = None,
    limit: Annotated[int, Query(ge=1, le=500), Whole] = 100,
) -> list[dict[str, Any]]:
    def load(conn: Any) -> list[dict[str, Any]]:
        rows = listings.list_listings(
            conn, territory=territory, product=product, q=q, after=after, limit=limit
        )
        return [_with_latest(conn, r) for r in rows]

    return request.app.state.node.database.read(load)


@router.get(
    "/v1/market/apps/{territory}/{slug}",
    response_model=AppOut,
    responses=_PROBLEMS,
    summary="An app, with its releases",
)
def get_app(request: Request, territory: Territory, slug: Slug) -> dict[str, Any]:
    app = f"{territory}/{slug}"

    def load(conn: Any) -> dict[str, Any] | None:
        row = listings.get_listing(conn, app)
        return _with_latest(conn, row, releases=True) if row else None

    row = request.app.state.node.database.read(load)
    if row is None:
        raise ProtocolError("not-found", f"no app {app}.", 404)
    return row


class QuoteOut(BaseModel):
    app: str
    device: str
    model: str = Field(description="free, one-time, subscription, trial-then-paid, per-use.")
    amount: str = Field(description="Base units: per purchase, period or unit of use.")
    fee_version: int
    message: str = Field(description="The message to send: market.buy or market.subscribe.")
    legs: list[dict[str, Any]] = Field(
        description="For a one-time price: the linked legs the buy message carries, in order."
    )
    grantee: str = Field(description="Whom a subscription's mandate names: this node.")


@router.get(
    "/v1/market/apps/{territory}/{slug}/quote",
    response_model=QuoteOut,
    responses=_PROBLEMS,
    summary="What buying an app for a device costs now, and the legs that pay it",
)
def quote(
    request: Request,
    territory: Territory,
    slug: Slug,
    device: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    node = request.app.state.node
    app = f"{territory}/{slug}"
    now_us = time.time_ns() // 1000

    def load(conn: Any) -> dict[str, Any]:
        row = registry.get_device(conn, device)
        if row is None:
            raise ProtocolError("not-found", f"no device {device}.", 404)
        listing, pricing = compatible_listing(conn, app, row)
        schedule = fees.in_force(conn, now_us)
        owner = territories.get_territory(conn, delegation.territory_of(app))["owner"]
        legs = []
        if pricing.model == "one-time":
            parts = purchases.shares(schedule, pricing.units(), creator=owner,
                                     manufacturer=row["manufacturer"], node=node.did)  # fmt: skip
            legs = [{"credit_account": s.account, "amount": str(s.amount), "role": s.role,
                     "flags": ["linked"] if i < len(parts) - 1 else []}
                    for i, s in enumerate(parts)]  # fmt: skip
        sold_once = pricing.model in ("free", "one-time")
        message = "org.liquidfab.market." + ("buy" if sold_once else "subscribe")
        return {"app": app, "device": device, "model": pricing.model,
                "amount": str(Pricing.model_validate(listing["pricing"]).units()),
                "fee_version": schedule.version, "legs": legs, "grantee": node.did,
                "message": message}  # fmt: skip

    return node.database.read(load)  # a Refused answers as its problem


@router.get(
    "/v1/market/roles/{territory}",
    responses={**_PROBLEMS, 200: {"content": {"application/json": {}}}},
    response_class=Response,
    summary="A territory's latest TUF role metadata, as its publisher signed it",
)
def get_role(request: Request, territory: Territory) -> Response:
    role = delegation.role_name(territory)
    md = request.app.state.node.database.read(lambda c: delegation.stored_role(c, role))
    if md is None:
        raise ProtocolError("not-found", f"{territory} has released nothing yet.", 404)
    return Response(md.to_bytes(), media_type="application/json")


class UploadOut(BaseModel):
    sha256: str
    length: int


@router.put(
    "/v1/market/uploads/{sha256}",
    response_model=UploadOut,
    status_code=201,
    responses={**_PROBLEMS, 413: _PROBLEMS[404]},
    summary="Upload a release's bytes, named by their SHA-256, before publishing it",
)
async def upload(
    request: Request, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
) -> dict[str, Any]:
    node = request.app.state.node
    service = node.fleet_repository
    if service is None:
        raise ProtocolError("no-repository", "this node keeps no software repository.", 409)
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise ProtocolError("too-large", f"an upload has at most {MAX_UPLOAD_BYTES} bytes.",
                                413)  # fmt: skip
        digest.update(chunk)
        chunks.append(chunk)
    if size == 0 or digest.hexdigest() != sha256:
        raise ProtocolError(
            "hash-mismatch", f"the body's SHA-256 is {digest.hexdigest()}, not {sha256}.", 422
        )

    def store() -> None:
        service.uploads.mkdir(parents=True, exist_ok=True)
        tmp = service.uploads / f".{sha256}.{os.getpid()}.tmp"
        tmp.write_bytes(b"".join(chunks))
        os.replace(tmp, service.uploads / sha256)

    await run_in_threadpool(store)
    return {"sha256": sha256, "length": size}


class EarningsOut(BaseModel):
    creator: str
    earned: int = Field(description="Base units received, all time.")
    charges: int
    apps: dict[str, dict[str, int]] = Field(description="Per app: gross, earned, charges.")
    periods: list[dict[str, int]] = Field(description="Per 30 days: start_us, earned.")


@router.get(
    "/v1/market/creators/{did}/earnings",
    response_model=EarningsOut,
    summary="A creator's earnings as they arrived: per app and per period",
)
def earnings(request: Request, did: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
    return request.app.state.node.database.read(lambda c: purchases.earnings(c, did))


class StatementOut(BaseModel):
    creator: str
    from_us: int
    to_us: int
    charges: list[dict[str, Any]] = Field(
        description="Each sale, period or usage batch: app, source, device, buyer, gross, the "
        "three amounts, fee_version, at_us."
    )
    totals: dict[str, int]


@router.get(
    "/v1/market/creators/{did}/statement",
    response_model=StatementOut,
    summary="A creator's statement: every charge in a time range, split as settled",
)
def creator_statement(
    request: Request,
    did: Annotated[str, Path(max_length=200)],
    from_us: Annotated[int, Query(ge=0, le=2**62), Whole] = 0,
    to_us: Annotated[int, Query(ge=0, le=2**62), Whole] = 2**62,
) -> dict[str, Any]:
    return request.app.state.node.database.read(
        lambda c: purchases.statement(c, did, from_us, to_us)
    )


class SubscriptionOut(BaseModel):
    id: str
    app: str
    device: str
    buyer: str
    account: str
    mandate: str
    price: int
    period_seconds: int
    fee_version: int = Field(description="The fee schedule it keeps, whatever changes later.")
    status: str = Field(description="active, grace, lapsed or cancelled.")
    periods_paid: int
    period_end_us: int
    grace_until_us: int | None
    cancel_at_end: bool
    last_error: str | None


@router.get(
    "/v1/market/subscriptions",
    response_model=list[SubscriptionOut],
    summary="Subscriptions, by device or buyer",
)
def list_subscriptions(
    request: Request,
    device: Annotated[str | None, Query(max_length=200)] = None,
    buyer: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000), Whole] = 100,
) -> list[dict[str, Any]]:
    s = market_subscriptions.c
    query = select(market_subscriptions).order_by(s.created_us, s.id).limit(limit)
    if device is not None:
        query = query.where(s.device == device)
    if buyer is not None:
        query = query.where(s.buyer == buyer)
    return request.app.state.node.database.read(
        lambda c: [dict(r._mapping) for r in c.execute(query)]
    )
