"""Lookups: balances, transfers by id, account and carrying message, histories, supply."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from liquidfab.ledger.store import (
    ACCOUNT_COLUMNS,
    TRANSFER_COLUMNS,
    Head,
    fetch,
    load_accounts,
    load_transfers,
)
from liquidfab.ledger.types import Account, LedgerInfo, Transfer

__all__ = [
    "account_history",
    "account_transfers",
    "accounts_of",
    "chain_rows",
    "get_head",
    "latest_checkpoint",
    "latest_transfers",
    "list_accounts",
    "list_ledgers",
    "lookup_accounts",
    "lookup_transfers",
    "pending_state",
    "supply",
    "transfers_by_message",
]


def lookup_accounts(conn: Connection, ids: list[str]) -> list[Account]:
    """The accounts among ``ids`` that exist, in the order asked."""
    found = load_accounts(conn, ids)
    return [found[i] for i in ids if i in found]


def lookup_transfers(conn: Connection, ids: list[str]) -> list[Transfer]:
    found = load_transfers(conn, ids)
    return [found[i] for i in ids if i in found]


def accounts_of(conn: Connection, owner: str) -> list[Account]:
    """Every account of ``owner``: ids are ``<owner>/<name>``, a range of the primary key."""
    rows = fetch(
        conn,
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > ? AND id < ? ORDER BY id",
        (owner + "/", owner + "0"),  # "0" sorts right after "/"
    )
    return [Account(*r) for r in rows]


def list_accounts(conn: Connection, limit: int = 100, after: str | None = None) -> list[Account]:
    rows = fetch(
        conn,
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > ? ORDER BY id LIMIT ?",
        (after or "", limit),
    )
    return [Account(*r) for r in rows]


def account_transfers(
    conn: Connection, account_id: str, limit: int = 100, before: int | None = None
) -> list[Transfer]:
    """Transfers debiting or crediting ``account_id``, newest first, before a timestamp."""
    cap = before if before is not None else 2**63 - 1
    rows = fetch(
        conn,
        f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE debit_account_id = ? AND timestamp < ? "
        f"UNION ALL SELECT {TRANSFER_COLUMNS} FROM transfers WHERE credit_account_id = ? "
        "AND timestamp < ? ORDER BY timestamp DESC LIMIT ?",
        (account_id, cap, account_id, cap, limit),
    )
    return [Transfer(*r) for r in rows]


def account_history(
    conn: Connection, account_id: str, limit: int = 100, before: int | None = None
) -> list[dict[str, Any]]:
    """Balances after each change, newest first; kept only for accounts flagged ``history``."""
    rows = fetch(
        conn,
        "SELECT timestamp, debits_pending, debits_posted, credits_pending, credits_posted "
        "FROM account_history WHERE account_id = ? AND timestamp < ? "
        "ORDER BY timestamp DESC LIMIT ?",
        (account_id, before if before is not None else 2**63 - 1, limit),
    )
    keys = ("timestamp", "debits_pending", "debits_posted", "credits_pending", "credits_posted")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def transfers_by_message(conn: Connection, source: str, msg_id: str) -> list[Transfer]:
    rows = fetch(
        conn,
        f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE message_source = ? AND message_id = ? "
        "ORDER BY timestamp",
        (source, msg_id),
    )
    return [Transfer(*r) for r in rows]


def latest_transfers(conn: Connection, limit: int = 20) -> list[Transfer]:
    rows = fetch(
        conn, f"SELECT {TRANSFER_COLUMNS} FROM transfers ORDER BY timestamp DESC LIMIT ?", (limit,)
    )
    return [Transfer(*r) for r in rows]


def pending_state(conn: Connection, transfer_id: str) -> dict[str, Any] | None:
    rows = fetch(
        conn,
        "SELECT status, expires_ns, closed_ts, closed_by FROM pending_transfers WHERE id = ?",
        (transfer_id,),
    )
    if not rows:
        return None
    status, expires, closed_ts, closed_by = rows[0]
    return {"status": status, "expires_ns": expires, "closed_ts": closed_ts, "closed_by": closed_by}


def list_ledgers(conn: Connection) -> list[LedgerInfo]:
    rows = fetch(conn, "SELECT name, decimals, treasury, timestamp FROM ledgers ORDER BY name")
    return [LedgerInfo(*r) for r in rows]


def supply(conn: Connection, ledger: str) -> int | None:
    """Tokens in circulation: what the treasury issued less what came back to it."""
    rows = fetch(
        conn,
        "SELECT a.debits_posted - a.credits_posted FROM ledgers l "
        "JOIN accounts a ON a.id = l.treasury WHERE l.name = ?",
        (ledger,),
    )
    return int(rows[0][0]) if rows else None


def get_head(conn: Connection) -> Head:
    seq, head, last_ts = fetch(conn, "SELECT seq, head, last_ts FROM ledger_head WHERE id = 1")[0]
    return Head(seq, head, last_ts)


def chain_rows(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = fetch(
        conn,
        "SELECT seq, first_ts, last_ts, events, head FROM ledger_chain ORDER BY seq DESC LIMIT ?",
        (limit,),
    )
    keys = ("seq", "first_ts", "last_ts", "events", "head")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def latest_checkpoint(conn: Connection) -> dict[str, Any] | None:
    rows = fetch(
        conn,
        "SELECT seq, head, signer, signature, created_us FROM ledger_checkpoints "
        "ORDER BY seq DESC LIMIT 1",
    )
    keys = ("seq", "head", "signer", "signature", "created_us")
    return dict(zip(keys, rows[0], strict=True)) if rows else None
