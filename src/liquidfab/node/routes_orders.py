"""Read-only order API: an order with its history and program digest, and orders by state."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from liquidfab.errors import ProtocolError
from liquidfab.node.models import Problem
from liquidfab.node.params import Whole
from liquidfab.node.problems import PROBLEM_JSON
from liquidfab.production import orders
from liquidfab.production.order_messages import ORDER_ID_PATTERN

__all__ = ["router"]

router = APIRouter(tags=["orders"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
OrderIdPath = Annotated[str, Path(max_length=100, pattern=ORDER_ID_PATTERN)]
StateName = orders.State


class OrderEventOut(BaseModel):
    seq: int
    state: str
    actor: str = Field(description="The did that signed the step.")
    message: str = Field(description="The message that made it: '<source> <id>'.")
    transfer: str | None = Field(description="The escrow transfer it carried, if any.")
    note: str | None
    at_us: int


class OrderSummaryOut(BaseModel):
    id: str
    customer: str
    manufacturer: str
    product_id: str
    version: str
    choices: dict[str, Any]
    features: list[str]
    price: str = Field(description="In the product's currency, exact to six decimals.")
    ledger: str
    amount: str = Field(description="The escrow in base units of ``ledger``.")
    pending_transfer: str = Field(description="The escrow: a pending transfer's id.")
    state: str
    program_digest: str
    placed_by: str
    created_us: int
    updated_us: int


class OrderOut(OrderSummaryOut):
    history: list[OrderEventOut]
    program: dict[str, Any] = Field(description="The build program compiled at placement.")


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "amount": str(row["amount"])}


@router.get(
    "/v1/orders/{order_id}",
    response_model=OrderOut,
    responses=_NOT_FOUND,
    summary="An order: its state, history, escrow and build program",
)
def get_order(request: Request, order_id: OrderIdPath) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any] | None:
        row = orders.get_order(conn, order_id)
        return {**_out(row), "history": orders.events_of(conn, order_id)} if row else None

    found = request.app.state.node.database.read(load)
    if found is None:
        raise ProtocolError("not-found", f"this node holds no order {order_id}.", 404)
    return found


@router.get(
    "/v1/orders",
    response_model=list[OrderSummaryOut],
    summary="Orders, newest first, by state, customer or manufacturer",
)
def list_orders(
    request: Request,
    state: StateName | None = None,
    customer: Annotated[str | None, Query(max_length=200)] = None,
    manufacturer: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500), Whole] = 100,
    before_us: Annotated[int | None, Query(ge=0, le=2**63 - 1), Whole] = None,
) -> list[dict[str, Any]]:
    rows = request.app.state.node.database.read(
        lambda conn: orders.list_orders(
            conn,
            state=state,
            customer=customer,
            manufacturer=manufacturer,
            limit=limit,
            before_us=before_us,
        )
    )
    return [_out(row) for row in rows]
