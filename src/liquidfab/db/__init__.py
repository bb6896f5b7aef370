"""Storage: SQLite by default, PostgreSQL by URL, one schema, one writer."""

from liquidfab.db import messages, participants
from liquidfab.db.database import (
    Database,
    DuplicateKey,
    TransactionLost,
    savepoint,
    store_errors,
    transaction_usable,
)
from liquidfab.db.group_commit import GroupCommitter
from liquidfab.db.tables import metadata

__all__ = [
    "Database",
    "DuplicateKey",
    "GroupCommitter",
    "TransactionLost",
    "messages",
    "metadata",
    "participants",
    "savepoint",
    "store_errors",
    "transaction_usable",
]
