"""Group commit: concurrent writes share one transaction, run by one writer thread.

On SQLite every write already goes through one lock. A transaction per request there
costs a lock handoff, a BEGIN and a COMMIT per message, and request threads that queue
on the lock fight over the GIL while they wait: with eight request threads each message
cost 60% more CPU than with one. So one thread takes every job waiting when it becomes
free and runs them together in one transaction, each inside its own savepoint, so a job
that raises undoes only its own writes. A caller gets its answer once the group has
committed; if the transaction is lost, every job of the group gets the error.

PostgreSQL runs transactions concurrently, and grouping there would only make two nodes
on one database wait for (and deadlock with) each other's whole groups: each job is its
own transaction.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection

from liquidfab.db.database import (
    Database,
    TransactionLost,
    savepoint,
    store_errors,
    transaction_usable,
)
from liquidfab.errors import StoreError

__all__ = ["GroupCommitter"]

T = TypeVar("T")
_Job = tuple[Callable[[Connection], Any], Future]
_STOP = object()
_LIVE: weakref.WeakSet[GroupCommitter] = weakref.WeakSet()


class GroupCommitter:
    """Runs write jobs for one database, many to a transaction on SQLite."""

    def __init__(self, database: Database, *, max_jobs: int = 256) -> None:
        self.database = database
        self.max_jobs = max_jobs
        self.grouped = database.dialect == "sqlite"
        self._closed = False
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction; return once that has committed.

        What ``fn`` raises is raised here, with its writes undone; a lost or failed
        transaction is raised to every job that was in it.
        """
        if threading.current_thread() is self._thread:
            raise StoreError("a write job may not wait for another write job")
        if self._closed:
            raise StoreError("the database writer is closed")
        if not self.grouped:
            return self.database.write(lambda conn: _checked(fn, conn))
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise StoreError("the database writer is closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="liquidfab-writer", daemon=True
                )
                self._thread.start()
            self._queue.put((fn, future))
        return future.result()

    def close(self) -> None:
        """Finish the jobs queued so far, then stop the writer thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            group: list[_Job] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    group.append(item)  # type: ignore[arg-type]
                if stopping or len(group) >= self.max_jobs:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            try:
                self._commit(group)
            except BaseException as e:  # nothing may kill the writer and strand its callers
                for _, future in group:
                    if not future.done():
                        future.set_exception(e)

    def _commit(self, group: list[_Job]) -> None:
        if not group:
            return
        outcomes: list[tuple[Future, Any, BaseException | None]] = []

        def run_all(conn: Connection) -> None:
            for fn, future in group:
                try:
                    with store_errors(), savepoint(conn):
                        result = fn(conn)
                except TransactionLost:
                    raise
                except BaseException as e:  # the caller gets it; the group goes on
                    if not transaction_usable(conn):
                        raise TransactionLost(
                            f"the transaction was lost in a write job ({e!r})"
                        ) from e
                    outcomes.append((future, None, e))
                else:
                    outcomes.append((future, result, None))
            if not transaction_usable(conn):  # COMMIT would silently roll back
                raise TransactionLost("the transaction was lost before its commit")

        try:
            self.database.write(run_all)
        except BaseException as e:  # the transaction failed: nothing of the group is kept
            for _, future in group:
                future.set_exception(e)
            return
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


def _checked(fn: Callable[[Connection], T], conn: Connection) -> T:
    """``fn``'s result, unless its transaction can no longer commit."""
    result = fn(conn)
    if not transaction_usable(conn):
        raise TransactionLost("a write job left its transaction unable to commit")
    return result


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: start afresh on first use."""
    for committer in list(_LIVE):
        committer._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
