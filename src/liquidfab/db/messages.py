"""The message log: every accepted message, its digest and its receipt's result.

Statements are built once at import: building a SQLAlchemy statement per call
cost more than SQLite spent running it, on the path every message takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from liquidfab.db.database import store_errors
from liquidfab.db.tables import messages

__all__ = [
    "count_messages",
    "get_message",
    "get_messages",
    "insert_message",
    "insert_messages",
    "latest_messages",
]

_GET = select(messages).where(
    messages.c.source == bindparam("source"), messages.c.msg_id == bindparam("msg_id")
)
# One source and a list of its ids: this searches the (source, msg_id) index and returns
# exactly the rows asked for. (A row-value IN makes SQLite scan the whole log; two IN
# lists return every pairing of a wanted source with a wanted id.)
_GET_MANY = select(messages).where(
    messages.c.source == bindparam("source"),
    messages.c.msg_id.in_(bindparam("ids", expanding=True)),
)
# one id from a source, the common case (every device signs its own reports): a plain
# equality needs none of the expanding IN's per-call compilation
_GET_ONE = select(messages).where(
    messages.c.source == bindparam("source"), messages.c.msg_id == bindparam("msg_id")
)
_INSERT = insert(messages).returning(messages.c.seq)
_LOOKUP_CHUNK = 500  # ids per IN list, well inside every driver's cap on bound values


def insert_message(conn: Connection, **row: Any) -> int:
    """Log one message; returns its sequence number.

    Raises DuplicateKey at once when (source, msg_id) is logged already, e.g. by a
    concurrent transaction that committed first.
    """
    with store_errors():
        return int(conn.execute(_INSERT, row).scalar_one())


def insert_messages(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        with store_errors():
            conn.execute(insert(messages), rows)


def get_message(conn: Connection, source: str, msg_id: str) -> dict[str, Any] | None:
    row = conn.execute(_GET, {"source": source, "msg_id": msg_id}).first()
    return dict(row._mapping) if row else None


def get_messages(
    conn: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The logged messages among ``keys`` (source, id pairs): one query per source and chunk."""
    by_source: dict[str, list[str]] = {}
    for source, msg_id in dict.fromkeys(keys):
        by_source.setdefault(source, []).append(msg_id)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for source, ids in by_source.items():
        if len(ids) == 1:
            row = conn.execute(_GET_ONE, {"source": source, "msg_id": ids[0]}).first()
            if row is not None:
                found[(row.source, row.msg_id)] = dict(row._mapping)
            continue
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            params = {"source": source, "ids": ids[start : start + _LOOKUP_CHUNK]}
            for row in conn.execute(_GET_MANY, params):
                found[(row.source, row.msg_id)] = dict(row._mapping)
    return found


def latest_messages(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(select(messages).order_by(messages.c.seq.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def count_messages(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())
