"""The history of a thing that moves through states (an order, a supply contract): one
row per step with who signed it, the message, the transfer it carried and a note."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Table, func, insert, select

from liquidfab.db.database import store_errors

__all__ = ["append_step"]


def append_step(
    conn: Connection,
    table: Table,
    key: Column[Any],
    value: str,
    state: str,
    actor: str,
    message: str,
    now_us: int,
    *,
    transfer: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Append a step to ``table`` for the thing whose ``key`` column is ``value``; the row.

    Steps are numbered from 0 per thing; two writers racing for a number meet the
    primary key, and the store's DuplicateKey sends the message round again.
    """
    last = conn.execute(select(func.max(table.c.seq)).where(key == value)).scalar()
    row = {
        key.name: value,
        "seq": 0 if last is None else last + 1,
        "state": state,
        "actor": actor,
        "message": message,
        "transfer": transfer,
        "note": note,
        "at_us": now_us,
    }
    with store_errors():
        conn.execute(insert(table), row)
    return row
