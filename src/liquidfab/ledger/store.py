"""The ledger's rows: load a batch's working set, write what the engine changed.

Statements go to the driver directly with plain tuples (``executemany`` per table
and batch): on the transfer path SQLAlchemy's per-row parameter handling cost more
than SQLite spent storing the row (benchmarks/ledger_throughput.py). One SQL text
serves both databases; PostgreSQL gets ``%s`` for ``?``.

Every call first takes the chain head, ``FOR UPDATE`` on PostgreSQL, so ledger
batches apply one at a time on both databases and each sees the balances the
previous one left.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from liquidfab.db import store_errors
from liquidfab.ledger.engine import AccountBatch, Pending, TransferBatch, WorkingSet
from liquidfab.ledger.types import Account, AccountFlags, CreateResult, Transfer

__all__ = [
    "GENESIS",
    "Head",
    "apply_accounts",
    "apply_transfers",
    "chain_digest",
    "fetch",
    "load_accounts",
    "load_transfers",
    "run",
]

GENESIS = "0" * 64
_CHUNK = 2000
_pg_sql: dict[str, str] = {}


def run(conn: Connection, sql: str, params: Any = ()) -> Any:
    """Execute ``sql`` (``?`` placeholders) with one tuple, or a list of tuples (executemany)."""
    if conn.dialect.name != "sqlite":
        text = _pg_sql.get(sql)
        if text is None:
            text = _pg_sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        sql = text
    with store_errors():
        return conn.exec_driver_sql(sql, params)


def fetch(conn: Connection, sql: str, params: Any = ()) -> list[Any]:
    return list(run(conn, sql, params).fetchall())


def _in(conn: Connection, sql: str, keys: Sequence[str]) -> list[Any]:
    """Rows of ``sql`` whose ``{keys}`` placeholder matches any of ``keys``."""
    rows: list[Any] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        if conn.dialect.name == "sqlite":
            rows += fetch(conn, sql.replace("{keys}", ",".join("?" * len(chunk))), tuple(chunk))
        else:
            rows += fetch(conn, sql.replace("IN ({keys})", "= ANY(?)"), (list(chunk),))
    return rows


@dataclass
class Head:
    seq: int
    head: str
    last_ts: int


def _lock_head(conn: Connection) -> Head:
    sql = "SELECT seq, head, last_ts FROM ledger_head WHERE id = 1"
    if conn.dialect.name != "sqlite":
        sql += " FOR UPDATE"
    seq, head, last_ts = fetch(conn, sql)[0]
    return Head(seq, head, last_ts)


ACCOUNT_COLUMNS = (
    "id, ledger, code, flags, debits_pending, debits_posted, credits_pending, "
    "credits_posted, timestamp"
)
TRANSFER_COLUMNS = (
    "id, debit_account_id, credit_account_id, amount, ledger, code, flags, pending_id, "
    "timeout, message_source, message_id, timestamp"
)


def load_accounts(conn: Connection, ids: Iterable[str]) -> dict[str, Account]:
    wanted = list(dict.fromkeys(ids))
    rows = _in(conn, f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({{keys}})", wanted)
    return {r[0]: Account(*r) for r in rows}


def load_transfers(conn: Connection, ids: Iterable[str]) -> dict[str, Transfer]:
    wanted = list(dict.fromkeys(ids))
    rows = _in(conn, f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id IN ({{keys}})", wanted)
    return {r[0]: Transfer(*r) for r in rows}


def _ledgers(conn: Connection) -> frozenset[str]:
    return frozenset(r[0] for r in fetch(conn, "SELECT name FROM ledgers"))


def _first_timestamp(head: Head, now_ns: int) -> int:
    """The first fresh timestamp: after every stored one, and not before now."""
    return max(now_ns, head.last_ts + 1)


def chain_digest(prev: str, events: list[list[Any]]) -> str:
    """The next chain head: SHA-256 over the previous head and the batch's canonical bytes.

    A batch's canonical bytes are its events as compact JSON arrays (ASCII only, fields
    in a fixed order, integers as integers): every value is an integer or a string from
    a restricted alphabet, so the text of an event is the same in every implementation.
    """
    body = json.dumps(events, separators=(",", ":"), ensure_ascii=True).encode()
    return hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()


def account_event(a: Account) -> list[Any]:
    return ["a", a.timestamp, a.id, a.ledger, a.code, a.flags]


def transfer_event(t: Transfer) -> list[Any]:
    return [
        "t",
        t.timestamp,
        t.id,
        t.debit_account_id,
        t.credit_account_id,
        t.amount,
        t.pending_id,
        t.ledger,
        t.code,
        t.flags,
        t.timeout,
        t.message_source,
        t.message_id,
    ]


def expiry_event(pending_id: str, ts: int) -> list[Any]:
    return ["x", ts, pending_id]


def _extend_chain(conn: Connection, head: Head, events: list[list[Any]]) -> Head:
    digest = chain_digest(head.head, events)
    new = Head(head.seq + 1, digest, events[-1][1])
    run(
        conn,
        "INSERT INTO ledger_chain (seq, first_ts, last_ts, events, head) VALUES (?, ?, ?, ?, ?)",
        (new.seq, events[0][1], new.last_ts, len(events), digest),
    )
    run(
        conn,
        "UPDATE ledger_head SET seq = ?, head = ?, last_ts = ? WHERE id = 1",
        (new.seq, new.head, new.last_ts),
    )
    return new


def _write_balances(conn: Connection, accounts: Iterable[Account]) -> None:
    rows = [
        (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.id)
        for a in accounts
    ]
    if rows:
        run(
            conn,
            "UPDATE accounts SET debits_pending = ?, debits_posted = ?, credits_pending = ?, "
            "credits_posted = ? WHERE id = ?",
            rows,
        )


def _expire(conn: Connection, ws: WorkingSet, now_ns: int, first_ts: int) -> list[list[Any]]:
    """Release pending transfers whose timeout has passed; their events, oldest first."""
    due = fetch(
        conn,
        "SELECT p.id, t.debit_account_id, t.credit_account_id, t.amount FROM pending_transfers p "
        "JOIN transfers t ON t.id = p.id WHERE p.status = 'pending' AND p.expires_ns <= ? "
        "ORDER BY p.expires_ns, t.timestamp",
        (now_ns,),
    )
    if not due:
        return []
    accounts = load_accounts(conn, [i for r in due for i in (r[1], r[2])])
    events, closed, history = [], [], []
    for ts, (pid, debit, credit, amount) in enumerate(due, start=first_ts):
        dr, cr = accounts[debit], accounts[credit]
        dr.debits_pending -= amount
        cr.credits_pending -= amount
        closed.append(("expired", ts, pid))
        events.append(expiry_event(pid, ts))
        ws.pending[pid] = Pending("expired", None, ts)
        history += [_balances(a, ts) for a in (dr, cr) if a.flags & AccountFlags.HISTORY]
    _write_balances(conn, accounts.values())
    run(conn, "UPDATE pending_transfers SET status = ?, closed_ts = ? WHERE id = ?", closed)
    _write_history(conn, history)
    return events


def _balances(a: Account, ts: int) -> tuple[str, int, int, int, int, int]:
    return (a.id, ts, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)


def _write_history(conn: Connection, rows: list[tuple[str, int, int, int, int, int]]) -> None:
    if rows:
        run(
            conn,
            "INSERT INTO account_history (account_id, timestamp, debits_pending, debits_posted, "
            "credits_pending, credits_posted) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def apply_transfers(conn: Connection, batch: list[Transfer], now_ns: int) -> list[CreateResult]:
    """Apply ``batch`` inside the caller's transaction; one result per transfer, in order."""
    head = _lock_head(conn)
    first = _first_timestamp(head, now_ns)
    ws = WorkingSet()
    events = _expire(conn, ws, now_ns, first)
    first += len(events)
    ids = [t.id for t in batch if isinstance(t.id, str)]
    pending_ids = [t.pending_id for t in batch if t.pending_id]
    stored = load_transfers(conn, ids + pending_ids)
    ws.transfers.update(stored)
    for pid in pending_ids:
        if pid in stored and pid not in ws.pending:
            ws.pending[pid] = Pending("", None)  # filled just below
    if ws.pending:
        for pid, status, expires, closed_ts, closed_by in _in(
            conn,
            "SELECT id, status, expires_ns, closed_ts, closed_by FROM pending_transfers "
            "WHERE id IN ({keys})",
            [p for p, s in ws.pending.items() if s.status == ""],
        ):
            ws.pending[pid] = Pending(status, expires, closed_ts, closed_by)
    account_ids = [a for t in batch for a in (t.debit_account_id, t.credit_account_id)]
    account_ids += [a for p in stored.values() for a in (p.debit_account_id, p.credit_account_id)]
    ws.accounts.update(load_accounts(conn, account_ids))
    ws.failed.update(_in(conn, "SELECT id, result FROM ledger_failed WHERE id IN ({keys})", ids))

    engine = TransferBatch(ws, now_ns, first)
    codes = engine.run(batch)
    results = [
        CreateResult(
            i, t.id if isinstance(t.id, str) else "", code, t.timestamp if code == "ok" else 0
        )
        for i, (t, code) in enumerate(zip(batch, codes, strict=True))
    ]
    if engine.created:
        run(
            conn,
            "INSERT INTO transfers (timestamp, id, debit_account_id, credit_account_id, amount, "
            "pending_id, ledger, code, flags, timeout, message_source, message_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    t.timestamp,
                    t.id,
                    t.debit_account_id,
                    t.credit_account_id,
                    t.amount,
                    t.pending_id,
                    t.ledger,
                    t.code,
                    t.flags,
                    t.timeout,
                    t.message_source,
                    t.message_id,
                )
                for t in engine.created
            ],
        )
        _write_balances(conn, engine.dirty.values())
    if engine.new_pending:
        run(
            conn,
            "INSERT INTO pending_transfers (id, status, expires_ns) VALUES (?, 'pending', ?)",
            engine.new_pending,
        )
    if engine.closed:
        run(
            conn,
            "UPDATE pending_transfers SET status = ?, closed_ts = ?, closed_by = ? WHERE id = ?",
            [(status, ts, by, pid) for pid, status, ts, by in engine.closed],
        )
    _write_history(conn, engine.history)
    if engine.failed:
        run(
            conn,
            "INSERT INTO ledger_failed (id, result, timestamp) VALUES (?, ?, ?)",
            engine.failed,
        )
    events += [transfer_event(t) for t in engine.created]
    if events:
        _extend_chain(conn, head, events)
    return results


def apply_accounts(
    conn: Connection, batch: list[Account], now_ns: int, *, allow_treasury: bool = False
) -> list[CreateResult]:
    """Create ``batch`` inside the caller's transaction; one result per account, in order."""
    head = _lock_head(conn)
    first = _first_timestamp(head, now_ns)
    ws = WorkingSet(ledgers=_ledgers(conn))
    ws.accounts.update(load_accounts(conn, [a.id for a in batch if isinstance(a.id, str)]))
    engine = AccountBatch(ws, first, allow_treasury=allow_treasury)
    codes = engine.run(batch)
    if engine.created:
        run(
            conn,
            f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(a.id, a.ledger, a.code, a.flags, 0, 0, 0, 0, a.timestamp) for a in engine.created],
        )
        _extend_chain(conn, head, [account_event(a) for a in engine.created])
    stamps = {a.id: a.timestamp for a in engine.created}
    return [
        CreateResult(
            i,
            a.id if isinstance(a.id, str) else "",
            code,
            stamps.get(a.id, 0) if code == "ok" else 0,
        )
        for i, (a, code) in enumerate(zip(batch, codes, strict=True))
    ]
