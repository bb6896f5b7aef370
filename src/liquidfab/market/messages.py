"""The market's messages: territories (claim, transfer, accept, publishers) and the fee
schedule (see ``fees``).

``org.liquidfab.market.claim`` (any registered participant) claims ``@name``; the first
claim wins, and a name confusable with a claimed one (``names.skeleton``) is refused.
A territory changes hands only with both parties' signatures: its owner signs
``org.liquidfab.market.transfer`` naming the new owner (or none, to withdraw the offer),
and the new owner signs ``org.liquidfab.market.accept``. The owner names co-publishers
with ``org.liquidfab.market.publishers``; a transfer clears them, as the new owner
chooses their own.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from liquidfab.db import participants as directory
from liquidfab.errors import Refused
from liquidfab.market import fees, territories
from liquidfab.market import listing_messages as lm
from liquidfab.market import purchase_messages as pm
from liquidfab.market import usage_messages as um
from liquidfab.market.names import name_problem, skeleton
from liquidfab.protocol.registry import Context, MessageType, Registry

__all__ = [
    "ACCEPT",
    "BILL",
    "BUY",
    "CANCEL",
    "CLAIM",
    "FEE_SCHEDULE",
    "LISTING",
    "PUBLISH",
    "PUBLISHERS",
    "SETTLE_USAGE",
    "SUBSCRIBE",
    "TRANSFER",
    "USAGE",
    "Accept",
    "Claim",
    "FeeScheduleChange",
    "Publishers",
    "Transfer",
    "add_market_types",
]

CLAIM = "org.liquidfab.market.claim"
TRANSFER = "org.liquidfab.market.transfer"
ACCEPT = "org.liquidfab.market.accept"
PUBLISHERS = "org.liquidfab.market.publishers"
FEE_SCHEDULE = "org.liquidfab.market.fee-schedule"
MAX_PUBLISHERS = 20


class Claim(BaseModel):
    """Payload of claim."""

    model_config = ConfigDict(extra="forbid")

    territory: str = Field(min_length=1, max_length=40, description="@name")


class Transfer(BaseModel):
    """Payload of transfer: the owner offers the territory (to: null withdraws)."""

    model_config = ConfigDict(extra="forbid")

    territory: str = Field(min_length=1, max_length=40)
    to: str | None = Field(max_length=200, description="The new owner's did, or null.")


class Accept(BaseModel):
    """Payload of accept: the one offered the territory takes it."""

    model_config = ConfigDict(extra="forbid")

    territory: str = Field(min_length=1, max_length=40)


class Publishers(BaseModel):
    """Payload of publishers: co-publishers added and removed by the owner."""

    model_config = ConfigDict(extra="forbid")

    territory: str = Field(min_length=1, max_length=40)
    add: list[str] = Field(default_factory=list, max_length=MAX_PUBLISHERS)
    remove: list[str] = Field(default_factory=list, max_length=MAX_PUBLISHERS)


class FeeScheduleChange(BaseModel):
    """Payload of fee-schedule: the next version of the split, and when it takes effect."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="One above the last published.")
    creator_bp: int = Field(ge=0, le=fees.BASIS, description="Basis points (1/100 of a %).")
    manufacturer_bp: int = Field(ge=0, le=fees.BASIS)
    platform_bp: int = Field(ge=0, le=fees.BASIS)
    effective_us: int = Field(ge=0, description=f"At least {fees.NOTICE_DAYS} days ahead.")


def _owned(ctx: Context, name: str) -> dict[str, Any]:
    row = territories.get_territory(ctx.conn, name)
    if row is None:
        raise Refused("not-found", f"no territory {name}.", 404)
    if ctx.signer != row["owner"]:
        raise Refused("unauthorized", f"only the owner of {name} does that.", 403)
    return row


def _registered(ctx: Context, did: str) -> None:
    if directory.get_participant(ctx.conn, did) is None:
        raise Refused("not-found", f"{did} is not registered here.", 404)


def _claim(ctx: Context) -> dict[str, Any]:
    p: Claim = ctx.payload
    problem = name_problem(p.territory)
    if problem is not None:
        raise Refused("malformed", f"{problem}.", 400)
    taken = territories.get_territory(ctx.conn, p.territory)
    if taken is not None:
        raise Refused("conflict", f"{p.territory} belongs to {taken['owner']}.", 409)
    shape = skeleton(p.territory)
    alike = territories.with_skeleton(ctx.conn, shape)
    if alike is not None:
        raise Refused(
            "confusable", f"{p.territory} could be mistaken for {alike['name']}, which is taken.",
            409, extra={"existing": alike["name"]},
        )  # fmt: skip
    territories.insert_territory(
        ctx.conn,
        {"name": p.territory, "skeleton": shape, "owner": ctx.signer, "publishers": [],
         "offered_to": None, "claimed_by": f"{ctx.envelope.source} {ctx.envelope.id}",
         "claimed_us": ctx.now_us, "updated_us": ctx.now_us},
    )  # fmt: skip
    ctx.notices.append(("market", p.territory))  # the market role delegates anew
    return {"territory": p.territory, "owner": ctx.signer}


def _transfer(ctx: Context) -> dict[str, Any]:
    p: Transfer = ctx.payload
    row = _owned(ctx, p.territory)
    if p.to is not None:
        _registered(ctx, p.to)
        if p.to == row["owner"]:
            raise Refused("malformed", "a territory is offered to someone else.", 400)
    territories.set_territory(ctx.conn, p.territory, ctx.now_us, offered_to=p.to)
    return {"territory": p.territory, "offered_to": p.to}


def _accept(ctx: Context) -> dict[str, Any]:
    p: Accept = ctx.payload
    row = territories.get_territory(ctx.conn, p.territory)
    if row is None:
        raise Refused("not-found", f"no territory {p.territory}.", 404)
    if row["offered_to"] != ctx.signer:
        raise Refused("unauthorized", f"{p.territory} was not offered to you.", 403)
    territories.set_territory(
        ctx.conn, p.territory, ctx.now_us, owner=ctx.signer, offered_to=None, publishers=[]
    )
    ctx.notices.append(("market", p.territory))  # the market role delegates anew
    return {"territory": p.territory, "owner": ctx.signer, "previous": row["owner"]}


def _publishers(ctx: Context) -> dict[str, Any]:
    p: Publishers = ctx.payload
    row = _owned(ctx, p.territory)
    for did in p.add:
        _registered(ctx, did)
    current = [d for d in row["publishers"] if d not in p.remove]
    current += [d for d in dict.fromkeys(p.add) if d not in current and d != row["owner"]]
    if len(current) > MAX_PUBLISHERS:
        raise Refused("too-large", f"a territory has at most {MAX_PUBLISHERS} co-publishers.", 413)
    territories.set_territory(ctx.conn, p.territory, ctx.now_us, publishers=current)
    ctx.notices.append(("market", p.territory))  # the market role delegates anew
    return {"territory": p.territory, "publishers": current}


def _fee_schedule(ctx: Context) -> dict[str, Any]:
    p: FeeScheduleChange = ctx.payload
    if not directory.is_authority(ctx.conn, ctx.signer):
        raise Refused("unauthorized", "an operator publishes the fee schedule.", 403)
    if p.creator_bp + p.manufacturer_bp + p.platform_bp != fees.BASIS:
        raise Refused("malformed", f"the shares add up to {fees.BASIS} basis points.", 400)
    last = fees.latest(ctx.conn)
    if p.version != last.version + 1:
        raise Refused(
            "stale-version", f"the next fee schedule is version {last.version + 1}.", 409,
            extra={"current": last.version},
        )  # fmt: skip
    earliest = max(ctx.now_us + fees.NOTICE_DAYS * 86_400_000_000, last.effective_us)
    if p.effective_us < earliest:
        raise Refused(
            "notice-too-short",
            f"a fee change takes effect {fees.NOTICE_DAYS} days after it is published at the "
            f"earliest (and not before the last change): from {earliest} µs.",
            422, extra={"earliest_us": earliest},
        )  # fmt: skip
    fees.insert_schedule(
        ctx.conn,
        {**p.model_dump(), "published_by": f"{ctx.envelope.source} {ctx.envelope.id}",
         "published_us": ctx.now_us},
    )  # fmt: skip
    return {**p.model_dump(), "in_force_now": fees.in_force(ctx.conn, ctx.now_us).version}


LISTING = "org.liquidfab.market.listing"
PUBLISH = "org.liquidfab.market.publish"
BUY = "org.liquidfab.market.buy"
SUBSCRIBE = "org.liquidfab.market.subscribe"
CANCEL = "org.liquidfab.market.cancel"
BILL = "org.liquidfab.market.bill"
USAGE = "org.liquidfab.market.usage"
SETTLE_USAGE = "org.liquidfab.market.settle-usage"


def add_market_types(registry_: Registry) -> None:
    """Register the market's message types in ``registry_``."""
    registry_.add(
        MessageType(
            type=BUY, payload=pm.Buy, handler=pm.buy, settlement="allowed",
            summary="An owner buys an app for a device: a one-time price paid as linked legs, "
            "one per share of the split; a free app or a trial without.",
        )
    )  # fmt: skip
    for type_, payload, handler, summary in (
        (LISTING, lm.Listing, lm.listing, "List an app in your territory (or update it): "
         "kind, product versions, what the unit must have, price."),
        (PUBLISH, lm.Publish, lm.publish, "Release a version of a listed app: the uploaded "
         "bytes and the territory's TUF role metadata, signed by the publisher."),
        (SUBSCRIBE, pm.Subscribe, pm.subscribe, "Subscribe a device to an app through a "
         "mandate for the node: subscription, trial then paid, or per use."),
        (CANCEL, pm.Cancel, pm.cancel, "End a subscription when the period paid ends."),
        (BILL, pm.Bill, pm.bill, "The node charges a subscription's next period; a failed "
         "charge starts the grace period, and after it the entitlement lapses."),
        (USAGE, um.Usage, um.usage, "A device's signed usage records of a per-use app."),
        (SETTLE_USAGE, um.SettleUsage, um.settle, "The node settles a device's open usage "
         "records of a per-use app in one batch."),
        (CLAIM, Claim, _claim, "Claim a territory, @name: the first claim wins, and a name "
         "confusable with a claimed one is refused."),
        (TRANSFER, Transfer, _transfer, "The owner offers a territory to another "
         "participant (or withdraws the offer)."),
        (ACCEPT, Accept, _accept, "Take a territory offered to you: with the owner's offer, "
         "both parties have signed."),
        (PUBLISHERS, Publishers, _publishers, "The owner adds and removes a territory's "
         "co-publishers."),
        (FEE_SCHEDULE, FeeScheduleChange, _fee_schedule, "An operator publishes the next "
         "version of the market's fee split; it takes effect after the notice period."),
    ):  # fmt: skip
        registry_.add(
            MessageType(
                type=type_, payload=payload, handler=handler, summary=summary,
                settlement="forbidden",
                # a device signs its usage with its own key; it is no participant
                signer_must_be_registered=type_ != USAGE,
            )
        )  # fmt: skip
