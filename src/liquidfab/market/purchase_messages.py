"""Buying an app for a device, subscribing to one, cancelling, and the node's billing.

``org.liquidfab.market.buy`` (the device's owner): a free or one-time app, or the trial
of a trial-then-paid one. A one-time price travels as the message's settlement legs, one
per share, linked (``purchases.shares``; ``GET /v1/market/apps/{app}/quote`` says which),
so the split lands in the three wallets in the same transaction as the entitlement.

``org.liquidfab.market.subscribe`` (the device's owner): a subscription, a trial then
paid, or per-use. The buyer first grants the node a mandate on their account
(``org.liquidfab.ledger.mandate``) with room for a period's price; the first period is
charged at once through it (a trial: at its end). The subscription keeps the fee
schedule version and the price it started under.

``org.liquidfab.market.bill`` (the node): charge a subscription's next period when it is
due. A failed charge starts a grace period (``GRACE_DAYS``) during which the device keeps
the app and the node tries again; at its end the entitlement lapses and the device
disables the app. ``org.liquidfab.market.cancel`` (the buyer) ends a subscription at the
end of the period paid.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, insert, select, update

from liquidfab.db import participants as directory
from liquidfab.db.tables import entitlements as ent_table
from liquidfab.db.tables import market_subscriptions as subs
from liquidfab.errors import Refused
from liquidfab.fleet import entitlements, registry
from liquidfab.ledger import mandates
from liquidfab.ledger.types import owner_of
from liquidfab.market import delegation, fees, listings, purchases, territories
from liquidfab.market.listing_messages import APP_PATTERN
from liquidfab.market.listings import Pricing
from liquidfab.product import catalog
from liquidfab.product.expressions import ExpressionError, evaluate, parse
from liquidfab.product.resolved import coerce_choices
from liquidfab.production import units
from liquidfab.production.published import published_product
from liquidfab.protocol.registry import Context

__all__ = [
    "GRACE_DAYS",
    "Bill",
    "Buy",
    "Cancel",
    "Subscribe",
    "charge_amount",
    "compatible_listing",
    "get_subscription",
    "missed",
    "set_expiry",
]

GRACE_DAYS = 7
LIVE = ("active", "grace")  # a subscription that may still be charged
# A paid period's license runs a day past the period, so a device never loses the app
# between the period's end and the renewal reaching it; a cancelled one ends exactly.
SLACK_US = 86_400_000_000
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class Buy(BaseModel):
    """Payload of buy."""

    model_config = ConfigDict(extra="forbid")

    purchase: str = Field(pattern=_ID, description="The purchase's id (its entitlement's).")
    app: str = Field(pattern=APP_PATTERN)
    device: str = Field(min_length=1, max_length=200)


class Subscribe(BaseModel):
    """Payload of subscribe."""

    model_config = ConfigDict(extra="forbid")

    subscription: str = Field(pattern=_ID)
    app: str = Field(pattern=APP_PATTERN)
    device: str = Field(min_length=1, max_length=200)
    mandate: str = Field(pattern=_UUID, description="The buyer's mandate for the node.")


class Cancel(BaseModel):
    """Payload of cancel: the subscription ends when the period paid ends."""

    model_config = ConfigDict(extra="forbid")

    subscription: str = Field(pattern=_ID)


class Bill(BaseModel):
    """Payload of bill: charge ``period`` (1-based) of a subscription, when due."""

    model_config = ConfigDict(extra="forbid")

    subscription: str = Field(pattern=_ID)
    period: int = Field(ge=1, le=100_000)


def compatible_listing(
    conn: Connection, app: str, device: dict[str, Any]
) -> tuple[dict[str, Any], Pricing]:
    """The listing, if ``device`` can run it (its product and version, what the unit
    has) and a release exists to deliver; Refused otherwise."""
    listing = listings.get_listing(conn, app)
    if listing is None:
        raise Refused("not-found", f"no app {app} is listed.", 404)
    if listing["product"] != device["product_id"] or not listings.spec_matches(
        listing["versions"], device["version"]
    ):
        raise Refused(
            "incompatible",
            f"{app} runs on {listing['product']} {listing['versions']}; this device is "
            f"{device['product_id']} {device['version']}.",
            422,
        )
    if listing["requires"] and device["serial"] is not None:
        unit = units.get_unit(conn, device["serial"])
        version = catalog.get_version(conn, device["product_id"], device["version"])
        product, _ = published_product(version)
        try:
            choices = coerce_choices(product, unit["as_built"]["choices"], complete=True)
            expr = parse(listing["requires"], product.scope, want="bool", macros=product.derived)
            holds = bool(evaluate(expr, choices))
        except (ExpressionError, ValueError, KeyError) as e:
            raise Refused("incompatible", f"{app} cannot tell if this unit fits: {e}", 422) from e
        if not holds:
            raise Refused(
                "incompatible",
                f"{app} requires {listing['requires']}, which this unit's configuration lacks.",
                422,
            )
    if listings.latest_release(conn, app) is None:
        raise Refused("no-release", f"{app} has no released version to deliver yet.", 409)
    return listing, Pricing.model_validate(listing["pricing"])


def _device_of_owner(ctx: Context, did: str) -> dict[str, Any]:
    device = registry.get_device(ctx.conn, did)
    if device is None:
        raise Refused("not-found", f"no device {did}.", 404)
    if ctx.signer != device["owner"]:
        raise Refused("unauthorized", "only the device's owner buys apps for it.", 403)
    return device


def _holds_app(ctx: Context, device: str, app: str, *, trial_ends: bool = False) -> None:
    """Refuse a device that holds ``app`` already; with ``trial_ends``, a trial it holds
    ends here instead (subscribing during a trial pays from now on)."""
    for e in entitlements.active(ctx.conn, device, ctx.now_us):
        if e["feature"] != app:
            continue
        if trial_ends and e["model"] == "trial":
            entitlements.revoke(ctx.conn, e["id"], "converted to a subscription", ctx.now_us)
            continue
        raise Refused("conflict", f"the device holds {app} already.", 409)


def _creator(conn: Connection, app: str) -> str:
    territory = territories.get_territory(conn, delegation.territory_of(app))
    assert territory is not None  # a listing's territory is never deleted
    return territory["owner"]


def _entitle(ctx: Context, id: str, device: str, app: str, model: str, transfer: str | None,
             expires_us: int | None) -> None:  # fmt: skip
    entitlements.insert_entitlement(
        ctx.conn,
        {"id": id, "device": device, "feature": app, "owner": ctx.signer, "model": model,
         "transfer": transfer, "issued_us": ctx.now_us, "expires_us": expires_us,
         "revoked_us": None, "revoked_by": None, "changed_us": None},
    )  # fmt: skip
    ctx.notices.append(("device", device))


def buy(ctx: Context) -> dict[str, Any]:
    p: Buy = ctx.payload
    device = _device_of_owner(ctx, p.device)
    if entitlements.get_entitlement(ctx.conn, p.purchase) is not None:
        raise Refused("conflict", f"purchase id {p.purchase} is taken.", 409)
    _, pricing = compatible_listing(ctx.conn, p.app, device)
    _holds_app(ctx, p.device, p.app)
    if pricing.model in ("subscription", "per-use") or (
        pricing.model == "trial-then-paid" and _tried(ctx.conn, p.device, p.app)
    ):
        raise Refused("subscribe", f"{p.app} is sold by subscription: send market.subscribe.", 409)
    if pricing.model == "trial-then-paid":
        if ctx.settlement:
            raise Refused("settlement-unexpected", "a trial costs nothing.", 422)
        end = ctx.now_us + pricing.trial_days * 86_400_000_000
        _entitle(ctx, p.purchase, p.device, p.app, "trial", None, end)
        return {"purchase": p.purchase, "app": p.app, "model": "trial", "expires_us": end}
    amount = pricing.units()
    schedule = fees.in_force(ctx.conn, ctx.now_us)
    creator = _creator(ctx.conn, p.app)
    parts = purchases.shares(schedule, amount, creator=creator,
                             manufacturer=device["manufacturer"], node=_node(ctx))  # fmt: skip
    _check_legs(ctx, parts)
    _entitle(ctx, p.purchase, p.device, p.app, pricing.model,
             ctx.settlement[0].id if parts else None, None)  # fmt: skip
    if amount:
        purchases.record_earning(
            ctx.conn, id=p.purchase, app=p.app, creator=creator, source="sale",
            device=p.device, buyer=ctx.signer, schedule=schedule, gross=amount, at_us=ctx.now_us,
        )  # fmt: skip
    split = {s.role: str(s.amount) for s in parts}
    return {"purchase": p.purchase, "app": p.app, "model": pricing.model, "paid": str(amount),
            "split": split, "fee_version": schedule.version}  # fmt: skip


def _node(ctx: Context) -> str:
    if ctx.node is None or ctx.node.node_did is None:  # pragma: no cover - nodes set it
        raise Refused("no-market", "this node runs no market.", 409)
    return ctx.node.node_did


def _check_legs(ctx: Context, parts: list[purchases.Share]) -> None:
    """The message's legs are the shares, in order, one linked chain from the signer."""
    legs = ctx.settlement
    ok = len(legs) == len(parts) and all(
        owner_of(leg.debit_account) == ctx.signer
        and leg.debit_account == legs[0].debit_account
        and leg.credit_account == s.account
        and leg.amount is not None
        and int(leg.amount) == s.amount
        and leg.ledger == purchases.LEDGER
        and list(leg.flags) == (["linked"] if i < len(parts) - 1 else [])
        for i, (leg, s) in enumerate(zip(legs, parts, strict=False))
    )
    if not ok:
        raise Refused(
            "price-mismatch",
            "send one leg per share, in this order, from one account of yours, linked "
            "(every leg but the last flagged linked).",
            422,
            extra={
                "legs": [
                    {
                        "credit_account": s.account,
                        "amount": str(s.amount),
                        "ledger": purchases.LEDGER,
                    }
                    for s in parts
                ]
            },
        )


def _tried(conn: Connection, device: str, app: str) -> bool:
    """Whether the device had the app's trial: one trial per device, however it ended."""
    row = conn.execute(
        select(ent_table.c.id).where(
            ent_table.c.device == device, ent_table.c.feature == app, ent_table.c.model == "trial"
        )
    ).first()
    if row is not None:
        return True
    sub = conn.execute(select(subs.c.id).where(subs.c.device == device, subs.c.app == app))
    return sub.first() is not None


def get_subscription(conn: Connection, id: str) -> dict[str, Any] | None:
    row = conn.execute(select(subs).where(subs.c.id == id)).first()
    return dict(row._mapping) if row else None


def _set(ctx: Context, id: str, **values: Any) -> None:
    ctx.conn.execute(update(subs).where(subs.c.id == id).values(updated_us=ctx.now_us, **values))


def set_expiry(ctx: Context, entitlement: str, expires_us: int | None) -> None:
    ctx.conn.execute(
        update(ent_table)
        .where(ent_table.c.id == entitlement)
        .values(expires_us=expires_us, changed_us=ctx.now_us)
    )


def subscribe(ctx: Context) -> dict[str, Any]:
    p: Subscribe = ctx.payload
    device = _device_of_owner(ctx, p.device)
    if get_subscription(ctx.conn, p.subscription) is not None or (
        entitlements.get_entitlement(ctx.conn, p.subscription) is not None
    ):
        raise Refused("conflict", f"subscription id {p.subscription} is taken.", 409)
    _, pricing = compatible_listing(ctx.conn, p.app, device)
    if pricing.model not in ("subscription", "trial-then-paid", "per-use"):
        raise Refused("buy", f"{p.app} is sold once: send market.buy.", 409)
    live = ctx.conn.execute(
        select(subs.c.id).where(
            subs.c.device == p.device, subs.c.app == p.app, subs.c.status.in_(LIVE)
        )
    ).first()
    if live is not None:
        raise Refused("conflict", f"the device is subscribed to {p.app} already ({live[0]}).", 409)
    _holds_app(ctx, p.device, p.app, trial_ends=True)
    node = _node(ctx)
    mandate = mandates.get_mandate(ctx.conn, p.mandate)
    price = pricing.units()
    if (
        mandate is None
        or owner_of(mandate["account_id"]) != ctx.signer
        or mandate["grantee"] != node
        or mandate["revoked"]
        or mandate["starts_us"] > ctx.now_us
        or (mandate["expires_us"] is not None and mandate["expires_us"] <= ctx.now_us)
        or int(mandate["cap"]) < price
    ):
        raise Refused(
            "mandate-missing",
            f"grant the node ({node}) a mandate on your account with room for {price} base "
            "units a period first.",
            422,
        )
    schedule = fees.in_force(ctx.conn, ctx.now_us)
    period_us = (pricing.period_seconds or 30 * 86_400) * 1_000_000
    row = {"id": p.subscription, "app": p.app, "device": p.device, "buyer": ctx.signer,
           "account": mandate["account_id"], "mandate": p.mandate, "price": price,
           "model": pricing.model,
           "meter": pricing.meter.aggregate if pricing.meter else None,
           "period_seconds": period_us // 1_000_000, "fee_version": schedule.version,
           "status": "active", "periods_paid": 0, "period_end_us": ctx.now_us + period_us,
           "grace_until_us": None, "cancel_at_end": False, "entitlement": p.subscription,
           "last_error": None, "created_us": ctx.now_us, "updated_us": ctx.now_us}  # fmt: skip
    model = pricing.model
    if model == "trial-then-paid" and not _tried(ctx.conn, p.device, p.app):
        row["period_end_us"] = ctx.now_us + pricing.trial_days * 86_400_000_000
        model = "trial"
    elif model != "per-use":
        model = "subscription"
        why = _charge(ctx, row, schedule)
        if why is not None:
            raise Refused("payment-failed", f"the first period could not be charged: {why}", 402)
        row["periods_paid"] = 1
    ctx.conn.execute(insert(subs), row)
    expires = None if model == "per-use" else row["period_end_us"] + SLACK_US * (model != "trial")
    _entitle(ctx, p.subscription, p.device, p.app, model, None, expires)
    return {"subscription": p.subscription, "app": p.app, "model": model,
            "period_end_us": row["period_end_us"], "fee_version": schedule.version}  # fmt: skip


def _charge(ctx: Context, sub: dict[str, Any], schedule: fees.FeeSchedule) -> str | None:
    """Charge ``sub``'s next period through its mandate; None when paid."""
    earning = f"{sub['id']}/{sub['periods_paid'] + 1}"
    return charge_amount(ctx, sub, schedule, sub["price"], earning, "subscription")


def charge_amount(
    ctx: Context,
    sub: dict[str, Any],
    schedule: fees.FeeSchedule,
    amount: int,
    earning: str,
    source: str,
) -> str | None:
    """Charge ``amount`` to ``sub``'s account through its mandate, split under
    ``schedule``; None when paid (and the earning recorded), else why not."""
    device = registry.get_device(ctx.conn, sub["device"])
    assert device is not None
    creator = _creator(ctx.conn, sub["app"])
    parts = purchases.shares(schedule, amount, creator=creator,
                             manufacturer=device["manufacturer"], node=_node(ctx))  # fmt: skip
    why = purchases.charge(ctx.conn, sub["account"], parts, grantee=_node(ctx),
                           mandate=sub["mandate"], now_us=ctx.now_us,
                           source=ctx.envelope.source, msg_id=ctx.envelope.id)  # fmt: skip
    if why is None and amount:
        purchases.record_earning(
            ctx.conn, id=earning, app=sub["app"], creator=creator, source=source,
            device=sub["device"], buyer=sub["buyer"], schedule=schedule, gross=amount,
            at_us=ctx.now_us,
        )  # fmt: skip
    return why


def cancel(ctx: Context) -> dict[str, Any]:
    p: Cancel = ctx.payload
    sub = get_subscription(ctx.conn, p.subscription)
    if sub is None:
        raise Refused("not-found", f"no subscription {p.subscription}.", 404)
    if ctx.signer != sub["buyer"]:
        raise Refused("unauthorized", "only the subscriber cancels.", 403)
    if sub["status"] in ("lapsed", "cancelled") or sub["cancel_at_end"]:
        raise Refused("conflict", f"subscription {p.subscription} is ending already.", 409)
    if sub["model"] == "per-use":  # nothing is paid ahead: it ends now; open records settle
        _set(ctx, p.subscription, status="cancelled", cancel_at_end=True)
        entitlements.revoke(ctx.conn, sub["entitlement"], "cancelled", ctx.now_us)
        ctx.notices.append(("device", sub["device"]))
        return {"subscription": p.subscription, "ends_us": ctx.now_us}
    _set(ctx, p.subscription, cancel_at_end=True)
    return {"subscription": p.subscription, "ends_us": sub["period_end_us"]}


def bill(ctx: Context) -> dict[str, Any]:
    p: Bill = ctx.payload
    if not directory.is_authority(ctx.conn, ctx.signer):
        raise Refused("unauthorized", "the node (or an operator) bills.", 403)
    sub = get_subscription(ctx.conn, p.subscription)
    if sub is None:
        raise Refused("not-found", f"no subscription {p.subscription}.", 404)
    if sub["status"] not in ("active", "grace") or p.period != sub["periods_paid"] + 1:
        raise Refused(
            "conflict",
            f"subscription {p.subscription} is {sub['status']} with {sub['periods_paid']} "
            "periods paid; nothing to bill for that period.",
            409,
        )
    if ctx.now_us < sub["period_end_us"]:
        raise Refused("not-due", f"period {p.period} is due at {sub['period_end_us']} µs.", 409)
    if sub["cancel_at_end"]:
        _set(ctx, sub["id"], status="cancelled")
        set_expiry(ctx, sub["entitlement"], sub["period_end_us"])
        ctx.notices.append(("device", sub["device"]))
        return {"subscription": sub["id"], "status": "cancelled"}
    if _is_usage(ctx.conn, sub):
        raise Refused("conflict", "a per-use subscription is settled by its usage.", 409)
    schedule = fees.version(ctx.conn, sub["fee_version"])
    why = _charge(ctx, sub, schedule)
    if why is None:
        end = sub["period_end_us"] + sub["period_seconds"] * 1_000_000
        _set(ctx, sub["id"], status="active", periods_paid=p.period, period_end_us=end,
             grace_until_us=None, last_error=None)  # fmt: skip
        _set_model(ctx, sub["entitlement"], "subscription", end + SLACK_US)
        return {"subscription": sub["id"], "status": "active", "period": p.period,
                "period_end_us": end}  # fmt: skip
    return missed(ctx, sub, why)


def missed(ctx: Context, sub: dict[str, Any], why: str) -> dict[str, Any]:
    """A failed charge: grace begins, or, once it has passed, the entitlement lapses."""
    grace_until = sub["grace_until_us"] or (ctx.now_us + GRACE_DAYS * 86_400_000_000)
    ctx.notices.append(("device", sub["device"]))
    if ctx.now_us >= grace_until:
        _set(ctx, sub["id"], status="lapsed", last_error=why[:500])
        entitlements.revoke(ctx.conn, sub["entitlement"], f"lapsed: {why}"[:500], ctx.now_us)
        return {"subscription": sub["id"], "status": "lapsed", "error": why}
    _set(ctx, sub["id"], status="grace", grace_until_us=grace_until, last_error=why[:500])
    set_expiry(ctx, sub["entitlement"], grace_until)
    return {"subscription": sub["id"], "status": "grace", "grace_until_us": grace_until,
            "error": why}  # fmt: skip


def _set_model(ctx: Context, entitlement: str, model: str, expires_us: int) -> None:
    ctx.conn.execute(
        update(ent_table)
        .where(ent_table.c.id == entitlement)
        .values(model=model, expires_us=expires_us, changed_us=ctx.now_us)
    )
    row = entitlements.get_entitlement(ctx.conn, entitlement)
    if row is not None:
        ctx.notices.append(("device", row["device"]))


def _is_usage(conn: Connection, sub: dict[str, Any]) -> bool:
    return sub["model"] == "per-use"  # the terms it started under, not today's listing
