"""The supply message types: org.liquidfab.production.supply-request and .supply-status.

States and who signs which are in ``supply``. Value moves in two steps only, the way
the ledger's escrow works: ``agreed`` carries one ``pending`` leg from the consumer to
the supplier for exactly the contract's amount (the offered unit price times the
quantity), and ``completed`` carries the ``post_pending`` leg that pays it; a supplier
that terminates after agreement carries the ``void_pending`` leg that refunds it. The
legs are applied before the handler in the message's transaction, so every refusal
here takes them back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from liquidfab.db import participants as directory
from liquidfab.errors import Refused
from liquidfab.ledger import reads
from liquidfab.ledger.types import owner_of
from liquidfab.product.resolved import money_text
from liquidfab.production import stock, supply
from liquidfab.production.order_messages import ORDER_ID_PATTERN, price_units
from liquidfab.protocol.registry import Context, MessageType, Registry
from liquidfab.protocol.settlement import SettlementLeg

__all__ = [
    "SUPPLY_REQUEST",
    "SUPPLY_STATUS",
    "SupplyRequest",
    "SupplyStatus",
    "add_supply_types",
    "contract_amount",
]

SUPPLY_REQUEST = "org.liquidfab.production.supply-request"
SUPPLY_STATUS = "org.liquidfab.production.supply-status"
LOT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$"
MAX_QUANTITY = Decimal(10) ** 9


class SupplyRequest(BaseModel):
    """Payload of supply-request: a quantity of a part, asked of a supplier."""

    model_config = ConfigDict(extra="forbid")

    contract: str = Field(pattern=ORDER_ID_PATTERN, description="The contract's id; unique.")
    supplier: str = Field(min_length=1, max_length=200, description="The supplier's did.")
    part: str = Field(min_length=1, max_length=200)
    quantity: Decimal = Field(gt=0, le=MAX_QUANTITY, description="In the part's unit.")
    ledger: str = Field("LQD", min_length=1, max_length=12, description="The currency.")
    note: str | None = Field(None, max_length=500)


class SupplyStatus(BaseModel):
    """Payload of supply-status: move a contract to ``state``."""

    model_config = ConfigDict(extra="forbid")

    contract: str = Field(pattern=ORDER_ID_PATTERN)
    state: Literal["offered", "agreed", "finalized", "started", "completed", "terminated"]
    unit_price: Decimal | None = Field(
        None, ge=0, le=MAX_QUANTITY, description="offered only: the price of one unit."
    )
    lot: str | None = Field(
        None, pattern=LOT_PATTERN, description="started only: the lot the goods belong to."
    )
    note: str | None = Field(None, max_length=500)


def contract_amount(unit_price: Decimal, quantity_milli: int, decimals: int) -> int | None:
    """Base units of unit_price * quantity; None when that is not exact in the ledger."""
    return price_units(unit_price * Decimal(quantity_milli) / 1000, decimals)


def _decimals(ctx: Context, ledger: str) -> int:
    found = next((i.decimals for i in reads.list_ledgers(ctx.conn) if i.name == ledger), None)
    if found is None:
        raise Refused("not-found", f"this node keeps no ledger {ledger}.", 404)
    return found


def _escrow_invalid(detail: str, **extra: Any) -> Refused:
    return Refused("escrow-invalid", detail, 422, extra=extra or None)


def _one_leg(ctx: Context, flag: str, what: str, want: str, **extra: Any) -> SettlementLeg:
    legs = ctx.settlement
    if len(legs) != 1 or legs[0].flags != [flag]:
        raise _escrow_invalid(f"{what} carries exactly {want}.", **extra)
    return legs[0]


def _request(ctx: Context) -> dict[str, Any]:
    p: SupplyRequest = ctx.payload
    if supply.get_contract(ctx.conn, p.contract) is not None:
        raise Refused("conflict", f"contract id {p.contract} is taken; choose another.", 409)
    supplier = directory.get_participant(ctx.conn, p.supplier)
    if supplier is None:
        raise Refused("not-found", f"{p.supplier} is not registered on this node.", 404)
    if supplier["role"] != "supplier":
        raise Refused(
            "not-a-supplier",
            f"{p.supplier} is registered as {supplier['role']}, not as a supplier.",
            422,
        )
    if p.supplier == ctx.signer:
        raise Refused("not-a-supplier", "a participant does not supply itself.", 422)
    if ctx.settlement:
        raise Refused("settlement-unexpected", "a request moves no value.", 422)
    _decimals(ctx, p.ledger)
    quantity = stock.milli(p.quantity)
    message = f"{ctx.envelope.source} {ctx.envelope.id}"
    supply.insert_contract(
        ctx.conn,
        {
            "id": p.contract,
            "consumer": ctx.signer,
            "supplier": p.supplier,
            "part": p.part,
            "quantity_milli": quantity,
            "unit_price": None,
            "ledger": p.ledger,
            "amount": None,
            "pending_transfer": None,
            "lot": None,
            "state": "requested",
            "created_us": ctx.now_us,
            "updated_us": ctx.now_us,
        },
    )
    supply.add_event(
        ctx.conn, p.contract, "requested", ctx.signer, message, ctx.now_us, note=p.note
    )
    return {
        "contract": p.contract,
        "state": "requested",
        "part": p.part,
        "quantity": f"{Decimal(quantity) / 1000:f}",
        "supplier": p.supplier,
    }


def _authorize(ctx: Context, row: dict[str, Any], target: str) -> None:
    if target == "terminated" and row["state"] in supply.ESCROWED:
        who, allowed = "supplier, who voids the escrow,", {row["supplier"]}
    elif target == "terminated":
        who, allowed = "consumer or supplier", {row["consumer"], row["supplier"]}
    elif target in supply.CONSUMER_MOVES:
        who, allowed = "consumer", {row["consumer"]}
    else:
        who, allowed = "supplier", {row["supplier"]}
    if ctx.signer not in allowed:
        raise Refused(
            "unauthorized",
            f"only the contract's {who} ({', '.join(sorted(allowed))}) moves it to {target}.",
            403,
        )


def _status(ctx: Context) -> dict[str, Any]:
    p: SupplyStatus = ctx.payload
    row = supply.get_contract(ctx.conn, p.contract)
    if row is None:
        raise Refused("not-found", f"no supply contract {p.contract}.", 404)
    target, state = p.state, row["state"]
    _authorize(ctx, row, target)
    if state not in supply.NEXT[target]:
        raise Refused(
            "transition-invalid",
            f"contract {p.contract} is {state}; it moves to {target} only from "
            f"{' or '.join(sorted(supply.NEXT[target]))}"
            + (" (the goods have left: it completes)." if state == "started" else "."),
            409,
            extra={"state": state},
        )
    if (p.unit_price is not None) != (target == "offered"):
        raise Refused("malformed", "unit_price is given with offered, and only then.", 400)
    if (p.lot is not None) != (target == "started"):
        raise Refused("malformed", "lot is given with started, and only then.", 400)
    fields: dict[str, Any] = {"state": target, "updated_us": ctx.now_us}
    transfer = None
    escrow = row["pending_transfer"]
    if target == "offered":
        assert p.unit_price is not None
        amount = contract_amount(p.unit_price, row["quantity_milli"], _decimals(ctx, row["ledger"]))
        if amount is None:
            raise Refused(
                "price-mismatch",
                f"{money_text(p.unit_price)} * {row['quantity_milli'] / 1000:g} has more "
                f"decimals than the {row['ledger']} ledger keeps.",
                422,
            )
        fields.update(unit_price=money_text(p.unit_price), amount=amount)
    elif target == "agreed":
        want = (
            f"one pending leg from your account to an account of {row['supplier']}, of "
            f"{row['amount']} {row['ledger']} base units, with a timeout"
        )
        extra = {"amount": str(row["amount"]), "payee": row["supplier"], "ledger": row["ledger"]}
        leg = _one_leg(ctx, "pending", "agreed", want, **extra)
        if (
            owner_of(leg.debit_account) != row["consumer"]
            or owner_of(leg.credit_account) != row["supplier"]
            or leg.ledger != row["ledger"]
            or leg.timeout_seconds is None
            or leg.amount is None
            or int(leg.amount) != row["amount"]
        ):
            raise _escrow_invalid(f"agreed carries exactly {want}.", **extra)
        transfer = escrow = leg.id
        fields["pending_transfer"] = leg.id
    elif target in ("completed", "terminated") and (
        target == "completed" or state in supply.ESCROWED
    ):
        flag = "post_pending" if target == "completed" else "void_pending"
        want = f"one {flag} leg of the contract's escrow (pending_id {escrow}), the whole amount"
        leg = _one_leg(ctx, flag, target, want, pending_id=escrow)
        if leg.pending_id != escrow or (
            leg.amount is not None and int(leg.amount) != row["amount"]
        ):
            raise _escrow_invalid(f"{target} carries {want}.", pending_id=escrow)
        transfer = leg.id
    elif ctx.settlement:
        raise Refused(
            "settlement-unexpected",
            f"{target} moves no value; send it without a settlement attribute.",
            422,
        )
    if target == "started":
        fields["lot"] = p.lot
    if target == "completed":
        stock.receive(
            ctx.conn,
            owner=row["consumer"],
            part=row["part"],
            lot=row["lot"],
            supplier=row["supplier"],
            contract=row["id"],
            quantity_milli=row["quantity_milli"],
            now_us=ctx.now_us,
        )
    message = f"{ctx.envelope.source} {ctx.envelope.id}"
    supply.set_fields(ctx.conn, p.contract, **fields)
    supply.add_event(
        ctx.conn,
        p.contract,
        target,
        ctx.signer,
        message,
        ctx.now_us,
        transfer=transfer,
        note=p.note,
    )
    result: dict[str, Any] = {"contract": p.contract, "state": target, "previous": state}
    if target == "offered":
        result.update(unit_price=fields["unit_price"], amount=str(fields["amount"]))
    if transfer is not None:
        result["escrow"] = escrow
    return result


def add_supply_types(registry: Registry) -> None:
    """Register the supply message types in ``registry``."""
    registry.add(
        MessageType(
            type=SUPPLY_REQUEST,
            payload=SupplyRequest,
            handler=_request,
            summary="Ask a supplier for a quantity of a part: a supply contract, requested.",
            settlement="allowed",
        )
    )
    registry.add(
        MessageType(
            type=SUPPLY_STATUS,
            payload=SupplyStatus,
            handler=_status,
            summary="Move a supply contract: the supplier offers, finalizes and ships (a lot); "
            "the consumer agrees (price in escrow) and completes (escrow posted, lot in stock).",
            settlement="allowed",
        )
    )
