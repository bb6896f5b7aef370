"""How a price reaches its three wallets: the split, the legs, and charges made through
a buyer's mandate.

A sale's price is split by the fee schedule in force (a subscription keeps the version
it started under) into the creator's, the manufacturer's and the platform's shares.
Each share is one transfer from the buyer's account, and all of them are one linked
chain (TigerBeetle's ``linked`` flag): they commit together or not at all, in the same
transaction as the entitlement, so a creator is paid at the moment of sale.

Who the payees are: the territory's owner at the time of sale (``<did>/wallet``), the
device's manufacturer (``<did>/wallet``), and the node, which runs the market
(``<node did>/platform``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from liquidfab.db.tables import market_earnings
from liquidfab.ledger import mandates
from liquidfab.ledger.store import apply_transfers
from liquidfab.ledger.types import Transfer, TransferFlags
from liquidfab.market import fees
from liquidfab.market.fees import FeeSchedule
from liquidfab.protocol.ids import uuid7

__all__ = [
    "LEDGER",
    "PLATFORM_ACCOUNT",
    "Share",
    "charge",
    "earnings",
    "platform_account",
    "record_earning",
    "shares",
    "statement",
]

LEDGER = "LQD"  # market prices are in the network token
PLATFORM_ACCOUNT = "platform"
CODE = "market"


def platform_account(node_did: str) -> str:
    return f"{node_did}/{PLATFORM_ACCOUNT}"


@dataclass(frozen=True)
class Share:
    """One payee's part of a price."""

    role: str  # creator, manufacturer, platform
    account: str
    amount: int


def shares(
    schedule: FeeSchedule, amount: int, *, creator: str, manufacturer: str, node: str
) -> list[Share]:
    """The price's nonzero shares, creator first; they add up to ``amount`` exactly."""
    c, m, p = fees.split(schedule, amount)
    out = [
        Share("creator", f"{creator}/wallet", c),
        Share("manufacturer", f"{manufacturer}/wallet", m),
        Share("platform", platform_account(node), p),
    ]
    return [s for s in out if s.amount > 0]


def linked_transfers(
    debit: str, parts: list[Share], source: str, msg_id: str, ids: list[str] | None = None
) -> list[Transfer]:
    """The shares as one linked chain of transfers from ``debit``."""
    ids = ids or [uuid7() for _ in parts]
    return [
        Transfer(
            ids[i],
            debit,
            s.account,
            s.amount,
            LEDGER,
            CODE,
            TransferFlags.LINKED if i < len(parts) - 1 else 0,
            None,
            0,
            source,
            msg_id,
        )
        for i, s in enumerate(parts)
    ]


def charge(
    conn: Connection,
    debit: str,
    parts: list[Share],
    *,
    grantee: str,
    mandate: str | None = None,
    now_us: int,
    source: str,
    msg_id: str,
) -> str | None:
    """Take the shares from ``debit`` under ``grantee``'s mandate, in a savepoint; None
    when it committed, else why not (then nothing of it was applied, the mandate's use
    included)."""
    transfers = linked_transfers(debit, parts, source, msg_id)
    savepoint = conn.begin_nested()
    for t in transfers:
        why = mandates.consume(conn, t, grantee, now_us, mandate)
        if why is not None:
            savepoint.rollback()
            return why
    results = apply_transfers(conn, transfers, now_us * 1000)
    failed = [r for r in results if not r.ok]
    if failed:
        savepoint.rollback()
        first = next((r for r in failed if r.result != "linked_event_failed"), failed[0])
        return f"the charge failed with {first.result}"
    savepoint.commit()
    return None


def record_earning(
    conn: Connection,
    *,
    id: str,
    app: str,
    creator: str,
    source: str,
    device: str,
    buyer: str,
    schedule: FeeSchedule,
    gross: int,
    at_us: int,
) -> None:
    """What a creator earned from one charge, as split (kept for statements and charts)."""
    c, m, p = fees.split(schedule, gross)
    conn.execute(
        insert(market_earnings),
        {"id": id, "app": app, "creator": creator, "source": source, "device": device,
         "buyer": buyer, "gross": gross, "creator_amount": c, "manufacturer_amount": m,
         "platform_amount": p, "fee_version": schedule.version, "at_us": at_us},
    )  # fmt: skip


def earnings(
    conn: Connection, creator: str, *, bucket_us: int = 30 * 86_400_000_000
) -> dict[str, Any]:
    """A creator's earnings: totals, per app, and per period (``bucket_us`` wide, counted
    from the epoch), as their charges arrived."""
    e = market_earnings.c
    rows = conn.execute(
        select(e.app, e.at_us, e.gross, e.creator_amount)
        .where(e.creator == creator)
        .order_by(e.at_us)
    ).all()
    per_app: dict[str, dict[str, int]] = {}
    per_period: dict[int, int] = {}
    for app, at_us, gross, amount in rows:
        a = per_app.setdefault(app, {"gross": 0, "earned": 0, "charges": 0})
        a["gross"] += gross
        a["earned"] += amount
        a["charges"] += 1
        start = at_us // bucket_us * bucket_us
        per_period[start] = per_period.get(start, 0) + amount
    total = conn.execute(
        select(func.coalesce(func.sum(e.creator_amount), 0)).where(e.creator == creator)
    ).scalar_one()
    return {
        "creator": creator,
        "earned": int(total),
        "charges": len(rows),
        "apps": per_app,
        "periods": [{"start_us": k, "earned": v} for k, v in sorted(per_period.items())],
    }


def statement(
    conn: Connection, creator: str, from_us: int, to_us: int, *, limit: int = 10_000
) -> dict[str, Any]:
    """A creator's statement for ``[from_us, to_us)``: each charge with its split and fee
    version, and the totals, so a creator can check every payout against the ledger."""
    e = market_earnings.c
    rows = conn.execute(
        select(market_earnings)
        .where(e.creator == creator, e.at_us >= from_us, e.at_us < to_us)
        .order_by(e.at_us, e.id)
        .limit(limit)
    ).all()
    charges = [dict(r._mapping) for r in rows]
    keys = ("gross", "creator_amount", "manufacturer_amount", "platform_amount")
    return {
        "creator": creator,
        "from_us": from_us,
        "to_us": to_us,
        "charges": charges,
        "totals": {k: sum(c[k] for c in charges) for k in keys},
    }
