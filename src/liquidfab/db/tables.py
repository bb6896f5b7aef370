"""The node's tables, in SQLAlchemy Core: one definition for SQLite and PostgreSQL.

Times are integer microseconds since the Unix epoch (UTC), the one time type both
databases store exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

__all__ = ["messages", "metadata", "participants"]

metadata = MetaData()

_SEQ = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid

participants = Table(
    "participants",
    metadata,
    Column("did", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("endpoints", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("registered_by", String(500), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("msg_id", String(200), nullable=False),
    Column("type", String(200), nullable=False),
    Column("subject", String(500), nullable=True),
    Column("time", String(64), nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("envelope", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    UniqueConstraint("source", "msg_id", name="uq_messages_source_msg_id"),
    Index("ix_messages_type", "type"),
    Index("ix_messages_received_us", "received_us"),
)
