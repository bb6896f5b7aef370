"""Customer orders as the node keeps them: their states, who may move them, their history.

An order is placed by its customer with its price held in escrow (a pending transfer
from the customer to the manufacturer), and moves through

    placed → accepted → scheduled → in-production → built → delivered

The manufacturer signs every step up to ``built``; the customer signs ``delivered`` and
posts the escrow with it. Before production starts the customer may ask to cancel
(``cancel-requested``); the manufacturer cancels (``cancelled``), voiding the escrow, on
such a request or on its own (declining the order). Once production has started an
order is not cancelled: it is built and delivered. The rows here are written only by the
order message handlers (``order_messages``), in the transaction of the message and its
settlement.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, bindparam, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import order_events, orders
from liquidfab.production.history import append_step

__all__ = [
    "CANCELLABLE",
    "CUSTOMER_MOVES",
    "MANUFACTURER_MOVES",
    "NEXT",
    "STATES",
    "State",
    "add_event",
    "events_of",
    "get_order",
    "insert_order",
    "list_orders",
    "set_state",
]

State = Literal[
    "placed",
    "accepted",
    "scheduled",
    "in-production",
    "built",
    "delivered",
    "cancel-requested",
    "cancelled",
]
STATES: tuple[str, ...] = (
    "placed",
    "accepted",
    "scheduled",
    "in-production",
    "built",
    "delivered",
    "cancel-requested",
    "cancelled",
)

# target state -> the states it may be reached from
NEXT: dict[str, frozenset[str]] = {
    "accepted": frozenset({"placed"}),
    "scheduled": frozenset({"accepted"}),
    "in-production": frozenset({"scheduled"}),
    "built": frozenset({"in-production"}),
    "delivered": frozenset({"built"}),
    "cancel-requested": frozenset({"placed", "accepted", "scheduled"}),
    "cancelled": frozenset({"placed", "accepted", "scheduled", "cancel-requested"}),
}
CANCELLABLE = NEXT["cancelled"]  # production has not started
MANUFACTURER_MOVES = frozenset({"accepted", "scheduled", "in-production", "built", "cancelled"})
CUSTOMER_MOVES = frozenset({"delivered", "cancel-requested"})

_GET = select(orders).where(orders.c.id == bindparam("id"))
_EVENTS = select(order_events).where(order_events.c.order_id == bindparam("id")).order_by("seq")


def get_order(conn: Connection, order_id: str) -> dict[str, Any] | None:
    row = conn.execute(_GET, {"id": order_id}).first()
    return dict(row._mapping) if row else None


def events_of(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    """An order's history, oldest first."""
    return [dict(r._mapping) for r in conn.execute(_EVENTS, {"id": order_id})]


def list_orders(
    conn: Connection,
    *,
    state: str | None = None,
    customer: str | None = None,
    manufacturer: str | None = None,
    limit: int = 100,
    before_us: int | None = None,
) -> list[dict[str, Any]]:
    """Orders, newest first, without their programs."""
    columns = [c for c in orders.c if c.name != "program"]
    query = select(*columns).order_by(orders.c.created_us.desc(), orders.c.id.desc())
    if state is not None:
        query = query.where(orders.c.state == state)
    if customer is not None:
        query = query.where(orders.c.customer == customer)
    if manufacturer is not None:
        query = query.where(orders.c.manufacturer == manufacturer)
    if before_us is not None:
        query = query.where(orders.c.created_us < before_us)
    return [dict(r._mapping) for r in conn.execute(query.limit(limit))]


def insert_order(conn: Connection, row: dict[str, Any]) -> None:
    """Store a new order; DuplicateKey when its id (or its escrow) is taken."""
    with store_errors():
        conn.execute(insert(orders), row)


def set_state(conn: Connection, order_id: str, state: str, now_us: int) -> None:
    conn.execute(
        update(orders).where(orders.c.id == order_id).values(state=state, updated_us=now_us)
    )


def add_event(
    conn: Connection,
    order_id: str,
    state: str,
    actor: str,
    message: str,
    now_us: int,
    *,
    transfer: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Append a step to the order's history."""
    return append_step(
        conn,
        order_events,
        order_events.c.order_id,
        order_id,
        state,
        actor,
        message,
        now_us,
        transfer=transfer,
        note=note,
    )
