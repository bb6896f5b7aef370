"""Territories as the node keeps them: who owns ``@name``, who may publish in it, and a
transfer the owner has offered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import territories

__all__ = [
    "get_territory",
    "insert_territory",
    "list_territories",
    "may_publish",
    "set_territory",
    "with_skeleton",
]


def get_territory(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(territories).where(territories.c.name == name)).first()
    return dict(row._mapping) if row else None


def with_skeleton(conn: Connection, skeleton: str) -> dict[str, Any] | None:
    """The territory a new name would be confused with, if any."""
    row = conn.execute(select(territories).where(territories.c.skeleton == skeleton)).first()
    return dict(row._mapping) if row else None


def list_territories(
    conn: Connection, *, owner: str | None = None, after: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = select(territories).order_by(territories.c.name).limit(limit)
    if owner is not None:
        query = query.where(territories.c.owner == owner)
    if after is not None:
        query = query.where(territories.c.name > after)
    return [dict(r._mapping) for r in conn.execute(query)]


def insert_territory(conn: Connection, row: dict[str, Any]) -> None:
    """Store a claim; DuplicateKey when the name or its skeleton is taken meanwhile."""
    with store_errors():
        conn.execute(insert(territories), row)


def set_territory(conn: Connection, name: str, now_us: int, **values: Any) -> None:
    conn.execute(
        update(territories).where(territories.c.name == name).values(updated_us=now_us, **values)
    )


def may_publish(territory: dict[str, Any], did: str) -> bool:
    """Whether ``did`` may sign artifacts into the territory: its owner or a co-publisher."""
    return did == territory["owner"] or did in (territory["publishers"] or [])
