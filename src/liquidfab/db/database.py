"""One database, one writer.

SQLite: every write runs on a single connection inside ``BEGIN IMMEDIATE``,
serialized by a lock, so concurrent requests queue instead of failing with
"database is locked"; reads use other connections and WAL lets them run beside
the writer. PostgreSQL: an ordinary pool, transactions run concurrently and
unique constraints decide races. SQLAlchemy's exceptions never leave this
module: they become ``StoreError`` with the cause kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from liquidfab.db.tables import metadata
from liquidfab.errors import LiquidfabError, StoreError

__all__ = [
    "Database",
    "DuplicateKey",
    "TransactionLost",
    "savepoint",
    "store_errors",
    "transaction_usable",
]

T = TypeVar("T")


class DuplicateKey(StoreError):
    """A row with the same unique key exists already."""


def _translate(e: SQLAlchemyError) -> StoreError:
    if isinstance(e, IntegrityError) and _is_unique_violation(e):
        return DuplicateKey(f"duplicate key: {e.orig}")
    return StoreError(f"database error: {e.__class__.__name__}: {getattr(e, 'orig', e)}")


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise database errors as StoreError (DuplicateKey for a unique key) where they happen.

    Inside a transaction a caller can then catch DuplicateKey at the statement that
    caused it, roll back its savepoint and carry on, instead of losing the whole
    transaction to an error that only surfaces at the end.
    """
    try:
        yield
    except SQLAlchemyError as e:
        raise _translate(e) from e


class TransactionLost(StoreError):
    """The enclosing transaction is gone (or doomed): nothing of it will commit."""


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """Undo what the block wrote if it raises; the enclosing transaction goes on.

    The SQL goes to the driver directly: SQLAlchemy's ``begin_nested()`` compiles and
    tracks every savepoint, which cost more than a message's own statements on the
    ingest path (benchmarks/protocol_ingest.py). Savepoints of one name nest in both
    SQLite and PostgreSQL, so a handler may open its own inside. When the savepoint
    cannot be rolled back (SQLite rolls the whole transaction back on a full disk),
    TransactionLost says so, with the first error as its cause.
    """
    conn.exec_driver_sql("SAVEPOINT liquidfab_sp")
    try:
        yield
        conn.exec_driver_sql("RELEASE SAVEPOINT liquidfab_sp")
    except BaseException as e:
        try:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT liquidfab_sp")
            conn.exec_driver_sql("RELEASE SAVEPOINT liquidfab_sp")
        except SQLAlchemyError as undo:
            if isinstance(e, TransactionLost):  # an inner savepoint said so already
                raise e from e.__cause__
            raise TransactionLost(
                f"the transaction was lost after {e.__class__.__name__}: {e} "
                f"(undoing it failed: {undo.__class__.__name__})"
            ) from e
        raise


def transaction_usable(conn: Connection) -> bool:
    """False when the driver's transaction has ended or can only roll back.

    A statement that fails on PostgreSQL dooms the transaction until a savepoint is
    rolled back, and COMMIT then silently rolls back; SQLite may end the transaction on
    its own (disk full) and run later statements in autocommit.
    """
    raw = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        return bool(raw.in_transaction)  # type: ignore[union-attr]
    info = getattr(raw, "info", None)
    status = getattr(info, "transaction_status", None)
    return status is None or status.name in ("INTRANS", "ACTIVE")


def _is_unique_violation(e: IntegrityError) -> bool:
    text = str(e.orig).lower()
    return "unique" in text or "duplicate key" in text or getattr(e.orig, "sqlstate", "") == "23505"


_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _sqlite_engine(url: str, *, writer: bool, synchronous: str = "FULL") -> Engine:
    args = {"check_same_thread": False, "timeout": 30}
    # The writer is one connection; readers share a small pool.
    sizes = {"pool_size": 1, "max_overflow": 0} if writer else {"pool_size": 16, "max_overflow": 32}
    engine = create_engine(url, connect_args=args, **sizes)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN and SAVEPOINT behave.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class Database:
    """A SQLite file or a PostgreSQL database, migrated to the current schema."""

    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        """``synchronous`` is SQLite's: FULL (the default) syncs the WAL at every commit,
        so an acknowledged write survives power loss; NORMAL may lose the last commits
        then (never on a process crash)."""
        if synchronous.upper() not in _SYNCHRONOUS:
            raise StoreError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        self.url = url
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            self.dialect = "sqlite"
            path = Path(url[len("sqlite:///") :])
            if str(path) == ":memory:":
                raise StoreError("an in-memory SQLite database cannot be shared; use a file")
            path.parent.mkdir(parents=True, exist_ok=True)
            level = synchronous.upper()
            self._writer = _sqlite_engine(url, writer=True, synchronous=level)
            self._reader = _sqlite_engine(url, writer=False, synchronous=level)
        elif url.startswith(("postgresql+psycopg://", "postgresql://")):
            self.dialect = "postgresql"
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            self._writer = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self._reader = self._writer
        else:
            raise StoreError(
                f"unsupported database URL {url!r}: use sqlite:///PATH/TO/FILE.db or "
                "postgresql+psycopg://USER@HOST:PORT/NAME"
            )
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def open(cls, url: str, *, synchronous: str = "FULL") -> Database:
        """Connect and bring the schema up to date (Alembic migrations)."""
        from liquidfab.db.migrate import upgrade

        db = cls(url, synchronous=synchronous)
        try:
            db.write(upgrade)
        except StoreError:
            db.close()
            raise
        return db

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction: all of it commits, or none of it."""
        if self._write_lock is None:
            return self._transaction(self._writer, fn)
        with self._write_lock:
            return self._transaction(self._writer, fn)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a read connection (a consistent snapshot on both dialects)."""
        return self._transaction(self._reader, fn)

    @staticmethod
    def _transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
        try:
            with engine.connect() as conn, conn.begin():
                return fn(conn)
        except LiquidfabError:
            raise
        except SQLAlchemyError as e:
            raise _translate(e) from e

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table, in key order: for tests that assert nothing changed."""

        def dump(conn: Connection) -> dict[str, list[dict[str, Any]]]:
            out = {}
            for table in metadata.sorted_tables:
                rows = conn.execute(select(table).order_by(*table.primary_key.columns))
                out[table.name] = [dict(r._mapping) for r in rows]
            return out

        return self.read(dump)

    def close(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    def __repr__(self) -> str:
        return f"Database({self.dialect})"
