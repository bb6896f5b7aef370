"""A manufacturer's parts stock: lots received from suppliers, drawn first in, first out.

Stock is opt-in per part: a part enters stock with its first delivery (a supply contract
reaching ``completed``). From then on every unit built draws its kit of that part from
stock, so the unit's as-built record names the real supplier lots; a build that finds
too little is refused (``stock-short``) and nothing is drawn. Parts never delivered are
not stocked, and a unit's record gives them a synthesized lot (see ``units``).

Quantities are integer thousandths of the part's unit (``milli``): a BOM may say 0.25 l.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, case, func, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import stock_lots
from liquidfab.errors import Refused

__all__ = [
    "KitLine",
    "consume",
    "kit_of",
    "milli",
    "on_hand",
    "receive",
    "stock_levels",
    "stocked_parts",
]


@dataclass(frozen=True)
class KitLine:
    """One purchased part of a unit: how much, from which supplier (did)."""

    part: str
    milli: int
    supplier: str | None


def milli(quantity: Fraction | Decimal | int | str) -> int:
    """A quantity in thousandths of its unit, rounded up (a unit never draws less)."""
    return math.ceil(Fraction(quantity) * 1000)


def kit_of(bom: Iterable[Any]) -> dict[str, KitLine]:
    """The purchased parts of a resolved BOM, summed per part (a part may appear in
    several assemblies)."""
    kit: dict[str, KitLine] = {}
    for item in bom:
        if not item.purchased:
            continue
        amount = milli(item.quantity)
        found = kit.get(item.part)
        kit[item.part] = KitLine(
            item.part, amount + (found.milli if found else 0), item.supplier_did
        )
    return kit


def stocked_parts(conn: Connection, owner: str) -> set[str]:
    """The parts ``owner`` has ever received into stock."""
    query = select(stock_lots.c.part).where(stock_lots.c.owner == owner).distinct()
    return {r[0] for r in conn.execute(query)}


def on_hand(conn: Connection, owner: str, parts: Iterable[str] | None = None) -> dict[str, int]:
    """Thousandths on hand per part (every stocked part, or just ``parts``)."""
    query = (
        select(stock_lots.c.part, func.sum(stock_lots.c.left_milli))
        .where(stock_lots.c.owner == owner)
        .group_by(stock_lots.c.part)
    )
    if parts is not None:
        query = query.where(stock_lots.c.part.in_(list(parts)))
    return {part: int(total or 0) for part, total in conn.execute(query)}


def stock_levels(
    conn: Connection, *, owner: str | None = None, part: str | None = None, with_lots: bool = False
) -> list[dict[str, Any]]:
    """Per owner and part: thousandths on hand, lots still holding any, the newest lot.

    ``with_lots`` adds ``lots``: the lots holding any, oldest first (the order they are
    drawn in).
    """
    query = (
        select(
            stock_lots.c.owner,
            stock_lots.c.part,
            func.sum(stock_lots.c.left_milli).label("on_hand_milli"),
            func.sum(stock_lots.c.received_milli).label("received_milli"),
            func.sum(case((stock_lots.c.left_milli > 0, 1), else_=0)).label("lot_count"),
            func.max(stock_lots.c.id).label("latest_id"),
        )
        .group_by(stock_lots.c.owner, stock_lots.c.part)
        .order_by(stock_lots.c.owner, stock_lots.c.part)
    )
    if owner is not None:
        query = query.where(stock_lots.c.owner == owner)
    if part is not None:
        query = query.where(stock_lots.c.part == part)
    levels = [dict(r._mapping) for r in conn.execute(query)]
    if not levels:
        return []
    latest_ids = [level.pop("latest_id") for level in levels]
    latest = dict(
        conn.execute(
            select(stock_lots.c.id, stock_lots.c.lot).where(stock_lots.c.id.in_(latest_ids))
        ).all()
    )
    for level, latest_id in zip(levels, latest_ids, strict=True):
        for key in ("on_hand_milli", "received_milli", "lot_count"):
            level[key] = int(level[key] or 0)
        level["latest_lot"] = latest.get(latest_id)
    if with_lots:
        _attach_lots(conn, levels, owner=owner, part=part)
    return levels


def _attach_lots(
    conn: Connection, levels: list[dict[str, Any]], *, owner: str | None, part: str | None
) -> None:
    query = (
        select(
            stock_lots.c.owner,
            stock_lots.c.part,
            stock_lots.c.lot,
            stock_lots.c.supplier,
            stock_lots.c.contract_id,
            stock_lots.c.received_milli,
            stock_lots.c.left_milli,
            stock_lots.c.received_us,
        )
        .where(stock_lots.c.left_milli > 0)
        .order_by(stock_lots.c.id)
    )
    if owner is not None:
        query = query.where(stock_lots.c.owner == owner)
    if part is not None:
        query = query.where(stock_lots.c.part == part)
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in conn.execute(query):
        lot = dict(row._mapping)
        by_key.setdefault((lot.pop("owner"), lot.pop("part")), []).append(lot)
    for level in levels:
        level["lots"] = by_key.get((level["owner"], level["part"]), [])


def receive(
    conn: Connection,
    *,
    owner: str,
    part: str,
    lot: str,
    supplier: str,
    contract: str,
    quantity_milli: int,
    now_us: int,
) -> None:
    """Put a delivered lot into stock."""
    with store_errors():
        conn.execute(
            insert(stock_lots),
            {
                "owner": owner,
                "part": part,
                "lot": lot,
                "supplier": supplier,
                "contract_id": contract,
                "received_milli": quantity_milli,
                "left_milli": quantity_milli,
                "received_us": now_us,
            },
        )


def consume(conn: Connection, owner: str, needs: Mapping[str, int]) -> dict[str, str]:
    """Draw ``needs`` (part → thousandths) from ``owner``'s stock, oldest lots first; the
    lots drawn per part (``"A"`` or ``"A+B"`` when a kit spans lots). Raises ``Refused``
    (``stock-short``) naming every short part before anything is drawn."""
    if not needs:
        return {}
    have = on_hand(conn, owner, needs)
    short = {p: (n, have.get(p, 0)) for p, n in needs.items() if have.get(p, 0) < n}
    if short:
        detail = ", ".join(
            f"{p} (needs {n / 1000:g}, has {h / 1000:g})" for p, (n, h) in sorted(short.items())
        )
        raise Refused(
            "stock-short",
            f"too little in stock to build: {detail}; a supply contract must complete first.",
            409,
            extra={
                "short": {p: {"needs_milli": n, "on_hand_milli": h} for p, (n, h) in short.items()}
            },
        )
    lots: dict[str, str] = {}
    for part, need in needs.items():
        rows = conn.execute(
            select(stock_lots.c.id, stock_lots.c.lot, stock_lots.c.left_milli)
            .where(
                stock_lots.c.owner == owner,
                stock_lots.c.part == part,
                stock_lots.c.left_milli > 0,
            )
            .order_by(stock_lots.c.id)
        ).all()
        drawn: list[str] = []
        for row in rows:
            if need <= 0:
                break
            take = min(need, row.left_milli)
            conn.execute(
                update(stock_lots)
                .where(stock_lots.c.id == row.id)
                .values(left_milli=stock_lots.c.left_milli - take)
            )
            need -= take
            drawn.append(row.lot)
        lots[part] = "+".join(drawn)
    return lots
