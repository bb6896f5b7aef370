"""Standing mandates: an owner lets another key debit an account, capped per period.

A subscription or a usage meter bills without the payer signing each charge; the
mandate bounds what it may take (``cap`` per ``period_seconds``, until ``expires``)
and the owner can revoke it at any time. Periods are counted from the grant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from liquidfab.ledger.store import fetch, run
from liquidfab.ledger.types import Transfer, TransferFlags

__all__ = ["consume", "get_mandate", "grant", "mandates_of", "revoke"]

_COLS = "id, account_id, grantee, cap, period_seconds, starts_us, expires_us, revoked, granted_by"
_KEYS = tuple(c.strip() for c in _COLS.split(","))


def _row(r: Any) -> dict[str, Any]:
    d = dict(zip(_KEYS, r, strict=True))
    d["revoked"] = bool(d["revoked"])
    return d


def get_mandate(conn: Connection, mandate_id: str) -> dict[str, Any] | None:
    rows = fetch(conn, f"SELECT {_COLS} FROM mandates WHERE id = ?", (mandate_id,))
    return _row(rows[0]) if rows else None


def mandates_of(conn: Connection, account_id: str) -> list[dict[str, Any]]:
    rows = fetch(
        conn, f"SELECT {_COLS} FROM mandates WHERE account_id = ? ORDER BY starts_us", (account_id,)
    )
    return [_row(r) for r in rows]


def grant(conn: Connection, row: dict[str, Any]) -> None:
    run(
        conn,
        f"INSERT INTO mandates ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        tuple(row[k] for k in _KEYS),
    )


def revoke(conn: Connection, mandate_id: str) -> None:
    run(conn, "UPDATE mandates SET revoked = ? WHERE id = ?", (True, mandate_id))


def consume(
    conn: Connection, t: Transfer, grantee: str, now_us: int, mandate_id: str | None = None
) -> str | None:
    """Charge ``t`` to a live mandate of its debit account for ``grantee`` (only mandate
    ``mandate_id``, when named: a subscription pays through its own); None if one had room.

    A pending debit counts in full when it is made (a later void does not give room back):
    the cap bounds what the grantee may ask for, not what it finally takes.
    """
    live = [
        m
        for m in mandates_of(conn, t.debit_account_id)
        if m["grantee"] == grantee
        and (mandate_id is None or m["id"] == mandate_id)
        and not m["revoked"]
        and m["starts_us"] <= now_us
        and (m["expires_us"] is None or now_us < m["expires_us"])
    ]
    if not live:
        return f"{grantee} holds no live mandate on {t.debit_account_id}"
    amount = t.amount or 0
    if t.flags & (TransferFlags.POST_PENDING | TransferFlags.VOID_PENDING):
        return "a mandate does not cover closing a pending transfer"
    for m in live:
        period = (now_us - m["starts_us"]) // (m["period_seconds"] * 1_000_000)
        rows = fetch(
            conn,
            "SELECT used FROM mandate_usage WHERE mandate_id = ? AND period = ?",
            (m["id"], period),
        )
        used = rows[0][0] if rows else 0
        if used + amount > m["cap"]:
            continue
        if rows:
            run(
                conn,
                "UPDATE mandate_usage SET used = ? WHERE mandate_id = ? AND period = ?",
                (used + amount, m["id"], period),
            )
        else:
            run(
                conn,
                "INSERT INTO mandate_usage (mandate_id, period, used) VALUES (?, ?, ?)",
                (m["id"], period, amount),
            )
        return None
    return (
        f"the mandates of {grantee} on {t.debit_account_id} have no room for {amount} this period"
    )
