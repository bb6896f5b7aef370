"""The order message types: org.liquidfab.production.order and .order-status.

``order`` places a customer's configuration of a published product version. Its
settlement is the escrow: exactly one ``pending`` leg from the signer's account to an
account of the product's manufacturer, for exactly the configured price, with a timeout.
The legs are applied before the handler in the same transaction, so every refusal here
(an invalid configuration, a wrong price, a duplicate id…) takes the escrow back with it.

``order-status`` moves an order (see ``orders`` for the states and who signs which). The
customer's ``delivered`` carries the ``post_pending`` leg that releases the escrow to the
manufacturer (the payer posts, per the ledger's rules); the manufacturer's ``cancelled``
carries the ``void_pending`` leg that gives it back (the payee voids).

Price units: a product's ``currency`` names the ledger it is paid in (``LQD`` by
default), one currency unit is one token, so the escrow is ``price * 10**decimals`` base
units of that ledger (a price is exact to six decimals, the network token has six).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from liquidfab.errors import ProductError, Refused
from liquidfab.ledger import reads
from liquidfab.ledger.types import owner_of
from liquidfab.product import catalog
from liquidfab.product.resolved import coerce_choices, money_text, resolve
from liquidfab.production import orders, units
from liquidfab.production.executor import BuildRecord
from liquidfab.production.program import compile_resolved
from liquidfab.production.published import published_product
from liquidfab.protocol.registry import Context, MessageType, Registry
from liquidfab.protocol.settlement import SettlementLeg

__all__ = [
    "ORDER",
    "ORDER_ID_PATTERN",
    "ORDER_STATUS",
    "TIMINGS",
    "OrderStatus",
    "PlaceOrder",
    "add_production_types",
    "price_units",
]

ORDER = "org.liquidfab.production.order"
ORDER_STATUS = "org.liquidfab.production.order-status"
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"

ChoiceValue = bool | int | float | str


class PlaceOrder(BaseModel):
    """Payload of production.order: a configuration of a published product version."""

    model_config = ConfigDict(extra="forbid")

    order: str = Field(
        pattern=ORDER_ID_PATTERN, description="The order's id, chosen by the customer; unique."
    )
    product: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    choices: dict[str, ChoiceValue] = Field(
        max_length=500, description="A value for every option of the product."
    )
    features: list[str] = Field(
        default_factory=list, max_length=100, description="Software features bought with it."
    )


class OrderStatus(BaseModel):
    """Payload of production.order-status: move an order to ``state``."""

    model_config = ConfigDict(extra="forbid")

    order: str = Field(pattern=ORDER_ID_PATTERN)
    state: Literal[
        "accepted",
        "scheduled",
        "in-production",
        "built",
        "delivered",
        "cancel-requested",
        "cancelled",
    ]
    note: str | None = Field(None, max_length=500)
    build: BuildRecord | None = Field(
        None, description="built only: the line's record of the successful build."
    )
    device_did: str | None = Field(
        None,
        max_length=200,
        description="built only: the did of the key the flashing station created.",
    )
    scrapped: int = Field(
        0, ge=0, le=100, description="built only: units scrapped on the way, each a kit drawn."
    )


# Wall-clock seconds this process spent checking configurations (validate) and resolving
# and compiling programs (compile) for placed orders: a metric ``liquidfab produce`` reads
# to show each stage's share.
TIMINGS: dict[str, float] = {"validate": 0.0, "compile": 0.0}


def price_units(price: Decimal, decimals: int) -> int | None:
    """A price in currency units as base units of a ledger with ``decimals``; None if inexact."""
    units = price.scaleb(decimals)
    return int(units) if units == units.to_integral_value() else None


# --- refusals ------------------------------------------------------------------------


def _configuration_invalid(where: str, e: ProductError) -> Refused:
    problems = [{"path": path, "message": message} for path, _line, message in e.problems]
    first = problems[0]
    return Refused(
        "configuration-invalid",
        f"{where}: {first['path'] + ': ' if first['path'] else ''}{first['message']}"
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        422,
        extra={"problems": problems},
    )


def _escrow_invalid(detail: str, **extra: Any) -> Refused:
    return Refused("escrow-invalid", detail, 422, extra=extra or None)


# --- order -----------------------------------------------------------------------------


def _escrow(
    ctx: Context, manufacturer: str, currency: str, price: Decimal
) -> tuple[SettlementLeg, int]:
    """The message's escrow leg and its amount, or Refused saying what it must be."""
    legs = ctx.settlement
    decimals = next((i.decimals for i in reads.list_ledgers(ctx.conn) if i.name == currency), None)
    if decimals is None:
        raise Refused(
            "not-found", f"the product is paid in {currency}, a ledger this node keeps not.", 404
        )
    amount = price_units(price, decimals)
    if amount is None:
        raise Refused(
            "price-mismatch",
            f"the price {money_text(price)} {currency} has more decimals than the ledger "
            f"({decimals}).",
            422,
        )
    want = (
        f"one settlement leg flagged pending, from your account to an account of "
        f"{manufacturer}, of {amount} {currency} base units (the price {money_text(price)}), "
        "with a timeout"
    )
    pending = [leg for leg in legs if "pending" in leg.flags]
    if not pending:
        raise Refused(
            "escrow-required",
            f"an order holds its price in escrow: send {want}.",
            422,
            extra={"amount": str(amount), "ledger": currency, "payee": manufacturer},
        )
    if len(legs) != 1:
        raise _escrow_invalid(f"an order's settlement is exactly {want}; it has {len(legs)} legs.")
    leg = legs[0]
    if owner_of(leg.debit_account) != ctx.signer:
        raise _escrow_invalid(f"the escrow is paid from an account of the customer ({ctx.signer}).")
    if owner_of(leg.credit_account) != manufacturer:
        raise _escrow_invalid(
            f"the escrow pays the product's manufacturer {manufacturer}, not "
            f"{owner_of(leg.credit_account)}.",
            payee=manufacturer,
        )
    if leg.ledger != currency:
        raise _escrow_invalid(f"the product is priced in {currency}; pay the escrow in it.")
    if leg.timeout_seconds is None:
        raise _escrow_invalid(
            "the escrow needs a timeout (timeout_seconds): unclaimed, it returns to the customer."
        )
    if leg.amount is None or int(leg.amount) != amount:
        raise Refused(
            "price-mismatch",
            f"the configuration costs {money_text(price)} {currency}, {amount} base units; the "
            f"escrow holds {leg.amount}.",
            422,
            extra={"amount": str(amount), "price": money_text(price), "ledger": currency},
        )
    return leg, amount


def _place(ctx: Context) -> dict[str, Any]:
    p: PlaceOrder = ctx.payload
    conn: Connection = ctx.conn
    where = f"{p.product}@{p.version}"
    version = catalog.get_version(conn, p.product, p.version)
    owner = catalog.get_product(conn, p.product)
    if version is None or owner is None:
        raise Refused(
            "not-found",
            f"this node holds no product {where}; GET /v1/products lists what is published.",
            404,
        )
    if version["retired_us"] is not None:
        offered = catalog.latest(conn, p.product, offered_only=True)
        raise Refused(
            "product-retired",
            f"{where} is retired and takes no new orders; "
            + (f"order {p.product}@{offered} instead." if offered else "no version is offered."),
            409,
            extra={"latest": offered},
        )
    if orders.get_order(conn, p.order) is not None:
        raise Refused(
            "conflict",
            f"order id {p.order} is taken; choose another.",
            409,
            extra={"order": p.order},
        )
    manufacturer = owner["manufacturer"]
    product, configurator = published_product(version)
    started = time.perf_counter()
    try:
        values = coerce_choices(product, p.choices, complete=True)
        check = configurator.check(values)
    except ProductError as e:
        raise _configuration_invalid(where, e) from e
    finally:
        TIMINGS["validate"] += time.perf_counter() - started
    if check.valid is False:
        sentences = check.conflict.sentences if check.conflict else ["the rules are broken"]
        raise Refused(
            "configuration-invalid",
            f"{where}: " + " ".join(sentences),
            422,
            extra={"conflict": check.conflict.to_dict() if check.conflict else None},
        )
    if check.valid is None:  # pragma: no cover - a complete configuration is evaluated
        raise Refused("configuration-undecided", f"{where}: the check timed out.", 503)
    started = time.perf_counter()
    try:
        resolved = resolve(product, values)
        program = compile_resolved(resolved, order_id=p.order, features=p.features)
    except ProductError as e:
        raise _configuration_invalid(where, e) from e
    finally:
        TIMINGS["compile"] += time.perf_counter() - started
    leg, amount = _escrow(ctx, manufacturer, product.currency, resolved.price)
    message = f"{ctx.envelope.source} {ctx.envelope.id}"
    digest = program.digest()
    orders.insert_order(
        conn,
        {
            "id": p.order,
            "customer": ctx.signer,
            "manufacturer": manufacturer,
            "product_id": p.product,
            "version": p.version,
            "choices": program.choices,
            "features": program.features,
            "price": money_text(resolved.price),
            "ledger": product.currency,
            "amount": amount,
            "pending_transfer": leg.id,
            "state": "placed",
            "program_digest": digest,
            "program": program.document(),
            "placed_by": message,
            "created_us": ctx.now_us,
            "updated_us": ctx.now_us,
        },
    )
    orders.add_event(conn, p.order, "placed", ctx.signer, message, ctx.now_us, transfer=leg.id)
    return {
        "order": p.order,
        "state": "placed",
        "product": p.product,
        "version": p.version,
        "manufacturer": manufacturer,
        "price": money_text(resolved.price),
        "ledger": product.currency,
        "amount": str(amount),
        "escrow": leg.id,
        "program_digest": digest,
    }


# --- order-status ----------------------------------------------------------------------


def _escrow_leg(ctx: Context, row: dict[str, Any], flag: str, what: str) -> SettlementLeg:
    legs = ctx.settlement
    want = f"one {flag} leg of the order's escrow (pending_id {row['pending_transfer']})"
    if len(legs) != 1 or legs[0].flags != [flag]:
        raise _escrow_invalid(f"{what} carries exactly {want}.", pending_id=row["pending_transfer"])
    leg = legs[0]
    if leg.pending_id != row["pending_transfer"]:
        raise _escrow_invalid(
            f"{what} settles this order's escrow {row['pending_transfer']}, not {leg.pending_id}.",
            pending_id=row["pending_transfer"],
        )
    if leg.amount is not None and int(leg.amount) != row["amount"]:
        raise _escrow_invalid(
            f"{what} settles the whole escrow ({row['amount']} base units), not {leg.amount}.",
            pending_id=row["pending_transfer"],
        )
    return leg


def _status(ctx: Context) -> dict[str, Any]:
    p: OrderStatus = ctx.payload
    row = orders.get_order(ctx.conn, p.order)
    if row is None:
        raise Refused("not-found", f"no order {p.order}.", 404)
    target, state = p.state, row["state"]
    may: set[str] = set()
    if ctx.signer == row["manufacturer"]:
        may |= orders.MANUFACTURER_MOVES
    if ctx.signer == row["customer"]:
        may |= orders.CUSTOMER_MOVES
    if target not in may:
        signer = "customer" if target in orders.CUSTOMER_MOVES else "manufacturer"
        raise Refused(
            "unauthorized",
            f"only the order's {signer} ({row[signer]}) moves it to {target}.",
            403,
        )
    if target in ("cancel-requested", "cancelled") and state in (
        "in-production",
        "built",
        "delivered",
    ):
        raise Refused(
            "cancel-after-production",
            f"order {p.order} is {state}: once production has started an order is not "
            "cancelled; it is built and delivered, and its escrow stays held until then.",
            409,
            extra={"state": state},
        )
    if state not in orders.NEXT[target]:
        raise Refused(
            "transition-invalid",
            f"order {p.order} is {state}; it moves to {target} only from "
            f"{' or '.join(sorted(orders.NEXT[target]))}.",
            409,
            extra={"state": state},
        )
    if target != "built" and (p.build is not None or p.device_did is not None or p.scrapped):
        raise Refused(
            "malformed",
            "build, device_did and scrapped belong to the built step only.",
            400,
        )
    transfer = None
    unit = None
    if target == "built" and (p.build is None or p.device_did is None):
        raise Refused(
            "build-required",
            "built carries the line's record of the build (build) and the did of the "
            "device key the flashing station created (device_did).",
            422,
        )
    if target == "delivered":
        transfer = _escrow_leg(ctx, row, "post_pending", "delivered").id
    elif target == "cancelled":
        transfer = _escrow_leg(ctx, row, "void_pending", "cancelled").id
    elif ctx.settlement:
        raise Refused(
            "settlement-unexpected",
            f"{target} moves no value; send it without a settlement attribute.",
            422,
        )
    message = f"{ctx.envelope.source} {ctx.envelope.id}"
    orders.set_state(ctx.conn, p.order, target, ctx.now_us)
    orders.add_event(
        ctx.conn, p.order, target, ctx.signer, message, ctx.now_us, transfer=transfer, note=p.note
    )
    if target == "built":
        assert p.build is not None
        recorded = units.record_unit(
            ctx.conn,
            {**row, "state": "built"},
            p.build,
            now_us=ctx.now_us,
            device_did=p.device_did,
            from_stock=True,
            scrapped=p.scrapped,
        )
        unit = recorded.unit
    result = {"order": p.order, "state": target, "previous": state}
    if unit is not None:
        result["serial"] = unit["serial"]
        result["device_did"] = unit["device_did"]
    if transfer is not None:
        result["escrow"] = row["pending_transfer"]
    return result


def add_production_types(registry: Registry) -> None:
    """Register the production message types in ``registry``."""
    registry.add(
        MessageType(
            type=ORDER,
            payload=PlaceOrder,
            handler=_place,
            summary="Place an order for a configuration of a published product, its price "
            "held in escrow (one pending leg to the manufacturer).",
            settlement="allowed",
        )
    )
    registry.add(
        MessageType(
            type=ORDER_STATUS,
            payload=OrderStatus,
            handler=_status,
            summary="Move an order: the manufacturer accepts, schedules, builds or cancels "
            "(voiding the escrow); the customer requests cancellation or confirms delivery "
            "(posting the escrow).",
            settlement="allowed",
        )
    )
