"""Per-use apps: devices sign usage records, meters add them up, the node settles them in
batches through the buyer's mandate.

``org.liquidfab.market.usage`` is signed by the device itself (its own key, so no one
else can bill its owner for use it did not make): up to ``MAX_RECORDS`` records, each
with an id unique within the app, a quantity, and the moment of use. As with Stripe's
meters, a record's time falls between ``PAST_DAYS`` days ago and ``FUTURE_SECONDS``
ahead, and an id already recorded is refused (the whole message then changes nothing).

``org.liquidfab.market.settle-usage`` (the node) settles a device's open records of an
app: the meter's aggregate (quantities summed, or records counted) times the unit price,
split like any sale and charged through the mandate in one linked chain. Each record
lands in exactly one batch. A failed charge leaves the records open and starts the
subscription's grace period.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select, update

from liquidfab.db import participants as directory
from liquidfab.db.database import DuplicateKey
from liquidfab.db.tables import market_subscriptions as subs
from liquidfab.db.tables import market_usage, market_usage_batches
from liquidfab.errors import Refused
from liquidfab.market import fees, listings
from liquidfab.market.listing_messages import APP_PATTERN
from liquidfab.market.purchase_messages import charge_amount, missed, set_expiry
from liquidfab.protocol.registry import Context

__all__ = ["FUTURE_SECONDS", "MAX_RECORDS", "PAST_DAYS", "SettleUsage", "Usage", "UsageRecord"]

MAX_RECORDS = 1000
PAST_DAYS = 35
FUTURE_SECONDS = 300
MAX_AMOUNT = 2**62  # the most one settlement charges, far inside the ledger's 64 bits
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


class UsageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID, description="Unique within the app.")
    quantity: int = Field(1, ge=1, le=1_000_000_000)
    at_us: int = Field(ge=0, description="When the use happened, µs since the epoch.")


class Usage(BaseModel):
    """Payload of usage: the signing device's records for one app."""

    model_config = ConfigDict(extra="forbid")

    app: str = Field(pattern=APP_PATTERN)
    records: list[UsageRecord] = Field(min_length=1, max_length=MAX_RECORDS)


class SettleUsage(BaseModel):
    """Payload of settle-usage: a batch of a per-use subscription's open records."""

    model_config = ConfigDict(extra="forbid")

    batch: str = Field(pattern=_ID)
    subscription: str = Field(pattern=_ID)


def _live(ctx: Context, device: str, app: str) -> dict[str, Any]:
    row = ctx.conn.execute(
        select(subs).where(
            subs.c.device == device, subs.c.app == app, subs.c.status.in_(("active", "grace"))
        )
    ).first()
    if row is None:
        raise Refused(
            "not-entitled", f"this device holds no live per-use subscription to {app}.", 403
        )
    return dict(row._mapping)


def usage(ctx: Context) -> dict[str, Any]:
    p: Usage = ctx.payload
    listing = listings.get_listing(ctx.conn, p.app)
    if listing is None or listing["pricing"]["model"] != "per-use":
        raise Refused("not-found", f"{p.app} is not a per-use app.", 404)
    sub = _live(ctx, ctx.signer, p.app)
    low = ctx.now_us - PAST_DAYS * 86_400_000_000
    high = ctx.now_us + FUTURE_SECONDS * 1_000_000
    late = [r.id for r in p.records if not low <= r.at_us <= high]
    if late:
        raise Refused(
            "out-of-window",
            f"a record's time falls within the last {PAST_DAYS} days and at most "
            f"{FUTURE_SECONDS} s ahead: {late[:5]}.",
            422,
            extra={"records": late[:100]},
        )
    ids = [r.id for r in p.records]
    if len(set(ids)) != len(ids):
        raise Refused("duplicate-record", "a record id appears twice in the message.", 409)
    seen = [
        r[0]
        for r in ctx.conn.execute(
            select(market_usage.c.record).where(
                market_usage.c.app == p.app, market_usage.c.record.in_(ids)
            )
        )
    ]
    if seen:
        raise Refused(
            "duplicate-record",
            f"record ids already recorded for {p.app}: {sorted(seen)[:5]}.",
            409,
            extra={"records": sorted(seen)[:100]},
        )
    count, total = open_usage(ctx, p.app, ctx.signer)
    count += len(p.records)
    total += sum(r.quantity for r in p.records)
    if (count if sub["meter"] == "count" else total) * sub["price"] > MAX_AMOUNT:
        raise Refused(
            "too-large",
            "these records would make the open usage cost more than one charge can carry; "
            "send them after the next settlement.",
            413,
        )
    try:
        ctx.conn.execute(
            insert(market_usage),
            [{"app": p.app, "record": r.id, "device": ctx.signer, "quantity": r.quantity,
              "at_us": r.at_us, "received_us": ctx.now_us, "batch": None}
             for r in p.records],
        )  # fmt: skip
    except DuplicateKey as e:  # pragma: no cover - a concurrent message took an id
        raise Refused("duplicate-record", str(e), 409) from e
    return {"app": p.app, "recorded": len(p.records)}


def open_usage(ctx: Context, app: str, device: str) -> tuple[int, int]:
    """A device's open records of ``app``: (count, summed quantity)."""
    u = market_usage.c
    count, total = ctx.conn.execute(
        select(func.count(), func.coalesce(func.sum(u.quantity), 0)).where(
            u.app == app, u.device == device, u.batch.is_(None)
        )
    ).one()
    return int(count), int(total)


def settle(ctx: Context) -> dict[str, Any]:
    p: SettleUsage = ctx.payload
    if not directory.is_authority(ctx.conn, ctx.signer):
        raise Refused("unauthorized", "the node (or an operator) settles usage.", 403)
    row = ctx.conn.execute(select(subs).where(subs.c.id == p.subscription)).first()
    if row is None:
        raise Refused("not-found", f"no subscription {p.subscription}.", 404)
    sub = dict(row._mapping)
    if sub["model"] != "per-use":  # the terms it started under, not today's listing
        raise Refused("conflict", f"subscription {sub['id']} is not per use.", 409)
    if ctx.conn.execute(
        select(market_usage_batches.c.id).where(market_usage_batches.c.id == p.batch)
    ).first():
        raise Refused("conflict", f"batch id {p.batch} is taken.", 409)
    count, total = open_usage(ctx, sub["app"], sub["device"])
    quantity = count if sub["meter"] == "count" else total
    amount = quantity * sub["price"]
    if count == 0:
        return {"batch": None, "records": 0, "amount": "0"}
    schedule = fees.version(ctx.conn, sub["fee_version"])
    why = charge_amount(ctx, sub, schedule, amount, p.batch, "usage")
    batch = {"id": p.batch, "app": sub["app"], "device": sub["device"], "records": count,
             "quantity": quantity, "amount": amount, "status": "settled" if why is None
             else "failed", "error": why, "at_us": ctx.now_us}  # fmt: skip
    ctx.conn.execute(insert(market_usage_batches), batch)
    if why is not None and sub["status"] == "cancelled":  # ended: nothing left to lapse
        return {"status": "cancelled", "error": why, "batch": p.batch, "records": count}
    if why is not None:
        return {**missed(ctx, sub, why), "batch": p.batch, "records": count}
    ctx.conn.execute(
        update(market_usage)
        .where(
            market_usage.c.app == sub["app"],
            market_usage.c.device == sub["device"],
            market_usage.c.batch.is_(None),
        )
        .values(batch=p.batch)
    )
    if sub["status"] == "grace":
        ctx.conn.execute(
            update(subs)
            .where(subs.c.id == sub["id"])
            .values(status="active", grace_until_us=None, last_error=None, updated_us=ctx.now_us)
        )
        set_expiry(ctx, sub["entitlement"], None)
        ctx.notices.append(("device", sub["device"]))
    return {"batch": p.batch, "records": count, "quantity": quantity, "amount": str(amount)}
