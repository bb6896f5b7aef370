"""The participant directory: who is registered, with which role and endpoints.

Statements are built once (see db/messages.py for why); an update's statement
is cached per set of changed columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Update, bindparam, func, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import participants

__all__ = [
    "AUTHORITY_ROLES",
    "count_participants",
    "get_participant",
    "insert_participant",
    "is_authority",
    "list_participants",
    "registered_among",
    "update_participant",
]

_GET = select(participants).where(participants.c.did == bindparam("did"))
_REGISTERED = select(participants.c.did).where(
    participants.c.did.in_(bindparam("dids", expanding=True))
)
_INSERT = insert(participants)
_LOOKUP_CHUNK = 500


def insert_participant(conn: Connection, row: dict[str, Any]) -> None:
    """Add a participant; DuplicateKey when the did is registered (maybe concurrently)."""
    with store_errors():
        conn.execute(_INSERT, row)


def get_participant(conn: Connection, did: str) -> dict[str, Any] | None:
    row = conn.execute(_GET, {"did": did}).first()
    return dict(row._mapping) if row else None


AUTHORITY_ROLES = frozenset({"node", "operator"})


def is_authority(conn: Connection, did: str) -> bool:
    """Whether ``did`` is the node or an operator: who may act for anyone on this node."""
    participant = get_participant(conn, did)
    return participant is not None and participant["role"] in AUTHORITY_ROLES


def registered_among(conn: Connection, dids: Iterable[str]) -> set[str]:
    """Which of ``dids`` are registered, in one query per chunk."""
    wanted = list(dict.fromkeys(dids))
    found: set[str] = set()
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        found.update(conn.execute(_REGISTERED, {"dids": chunk}).scalars())
    return found


@lru_cache(maxsize=64)
def _update_statement(columns: frozenset[str]) -> Update:
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in sorted(columns)}
    values["updated_us"] = bindparam("new_updated_us")
    values["version"] = participants.c.version + 1
    return (
        update(participants)
        .where(participants.c.did == bindparam("match_did"))
        .values(**values)
        .returning(*participants.c)
    )


def update_participant(
    conn: Connection, did: str, changes: dict[str, Any], updated_us: int
) -> dict[str, Any]:
    """Apply ``changes``, bump the version; returns the new row."""
    unknown = set(changes) - set(participants.c.keys()) | ({"did", "version"} & set(changes))
    if unknown:
        raise ValueError(f"cannot change participant column(s) {sorted(unknown)}")
    params = {f"new_{k}": v for k, v in changes.items()}
    params.update(match_did=did, new_updated_us=updated_us)
    row = conn.execute(_update_statement(frozenset(changes)), params).first()
    if row is None:
        raise KeyError(did)
    return dict(row._mapping)


def list_participants(conn: Connection, role: str | None = None) -> list[dict[str, Any]]:
    query = select(participants).order_by(participants.c.created_us, participants.c.did)
    if role is not None:
        query = query.where(participants.c.role == role)
    return [dict(r._mapping) for r in conn.execute(query)]


def count_participants(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(participants)).scalar_one())
