"""Supply contracts as the node keeps them: negotiation and delivery of parts, with escrow.

A manufacturer (the consumer) asks a supplier for a quantity of a part; the two move the
contract through the Dataspace Protocol's states, negotiation first, then the transfer
of the goods:

    requested → offered → agreed → finalized → started → completed
        (any state before started) → terminated

The consumer signs ``requested``, ``agreed`` (with the price in escrow: one pending leg
to the supplier) and ``completed`` (posting the escrow: the goods arrived, their lot goes
into stock). The supplier signs ``offered`` (its unit price), ``finalized`` and
``started`` (the goods leave, naming their lot). Either side terminates before
agreement; after it only the supplier can, voiding the escrow (the ledger lets the payee
void), and once the goods have left (``started``) the contract runs to ``completed``.
The rows here are written only by the supply message handlers (``supply_messages``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import supply_contracts, supply_events
from liquidfab.production.history import append_step

__all__ = [
    "CONSUMER_MOVES",
    "ESCROWED",
    "NEXT",
    "STATES",
    "SUPPLIER_MOVES",
    "add_event",
    "events_of",
    "get_contract",
    "insert_contract",
    "list_contracts",
    "set_fields",
]

STATES: tuple[str, ...] = (
    "requested",
    "offered",
    "agreed",
    "finalized",
    "started",
    "completed",
    "terminated",
)
# target state -> the states it may be reached from
NEXT: dict[str, frozenset[str]] = {
    "offered": frozenset({"requested"}),
    "agreed": frozenset({"offered"}),
    "finalized": frozenset({"agreed"}),
    "started": frozenset({"finalized"}),
    "completed": frozenset({"started"}),
    "terminated": frozenset({"requested", "offered", "agreed", "finalized"}),
}
CONSUMER_MOVES = frozenset({"agreed", "completed"})  # and terminated, before agreement
SUPPLIER_MOVES = frozenset({"offered", "finalized", "started"})  # and terminated
ESCROWED = frozenset({"agreed", "finalized"})  # terminating these voids the escrow

_GET = select(supply_contracts).where(supply_contracts.c.id == bindparam("id"))
_EVENTS = select(supply_events).where(supply_events.c.contract_id == bindparam("id"))


def get_contract(conn: Connection, contract_id: str) -> dict[str, Any] | None:
    row = conn.execute(_GET, {"id": contract_id}).first()
    return dict(row._mapping) if row else None


def events_of(conn: Connection, contract_id: str) -> list[dict[str, Any]]:
    """A contract's history, oldest first."""
    query = _EVENTS.order_by(supply_events.c.seq)
    return [dict(r._mapping) for r in conn.execute(query, {"id": contract_id})]


def list_contracts(
    conn: Connection,
    *,
    state: str | None = None,
    consumer: str | None = None,
    supplier: str | None = None,
    part: str | None = None,
    limit: int = 100,
    before_us: int | None = None,
) -> list[dict[str, Any]]:
    """Contracts, newest first (``before_us``: created before then, for paging)."""
    query = select(supply_contracts).order_by(
        supply_contracts.c.created_us.desc(), supply_contracts.c.id.desc()
    )
    for column, value in (
        (supply_contracts.c.state, state),
        (supply_contracts.c.consumer, consumer),
        (supply_contracts.c.supplier, supplier),
        (supply_contracts.c.part, part),
    ):
        if value is not None:
            query = query.where(column == value)
    if before_us is not None:
        query = query.where(supply_contracts.c.created_us < before_us)
    return [dict(r._mapping) for r in conn.execute(query.limit(limit))]


def insert_contract(conn: Connection, row: dict[str, Any]) -> None:
    """Store a new contract; DuplicateKey when its id is taken."""
    with store_errors():
        conn.execute(insert(supply_contracts), row)


def set_fields(conn: Connection, contract_id: str, **values: Any) -> None:
    conn.execute(
        update(supply_contracts).where(supply_contracts.c.id == contract_id).values(**values)
    )


def add_event(
    conn: Connection,
    contract_id: str,
    state: str,
    actor: str,
    message: str,
    now_us: int,
    *,
    transfer: str | None = None,
    note: str | None = None,
) -> None:
    """Append a step to the contract's history."""
    key = supply_events.c.contract_id
    append_step(
        conn,
        supply_events,
        key,
        contract_id,
        state,
        actor,
        message,
        now_us,
        transfer=transfer,
        note=note,
    )
