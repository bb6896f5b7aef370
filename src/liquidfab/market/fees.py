"""The fee schedule: how the price of a sale splits between the creator, the product's
manufacturer and the platform, as one signed, versioned protocol document.

Creators' chief complaint about app stores is fees changed without notice. Here the
split is set in one place (``DEFAULT``: creator 85%, manufacturer 10%, platform 5%, in
force until an operator publishes another), every change is a signed
``org.liquidfab.market.fee-schedule`` message with a version one higher than the last,
and it takes effect no sooner than ``NOTICE_DAYS`` after it is published. ``in_force``
answers which schedule governs a moment; a subscription keeps the version it started
under, so a change is never retroactive on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from liquidfab.db.database import store_errors
from liquidfab.db.tables import fee_schedules

__all__ = [
    "DEFAULT",
    "NOTICE_DAYS",
    "FeeSchedule",
    "in_force",
    "insert_schedule",
    "latest",
    "schedules",
    "split",
]

NOTICE_DAYS = 30
BASIS = 10_000  # basis points in a whole


@dataclass(frozen=True)
class FeeSchedule:
    version: int
    creator_bp: int
    manufacturer_bp: int
    platform_bp: int
    effective_us: int

    def document(self) -> dict[str, Any]:
        return {"version": self.version, "creator_bp": self.creator_bp,
                "manufacturer_bp": self.manufacturer_bp, "platform_bp": self.platform_bp,
                "effective_us": self.effective_us}  # fmt: skip


DEFAULT = FeeSchedule(version=0, creator_bp=8_500, manufacturer_bp=1_000, platform_bp=500,
                      effective_us=0)  # fmt: skip


def _schedule(row: Any) -> FeeSchedule:
    return FeeSchedule(row.version, row.creator_bp, row.manufacturer_bp, row.platform_bp,
                       row.effective_us)  # fmt: skip


def schedules(conn: Connection) -> list[FeeSchedule]:
    """Every published schedule, oldest version first (the default not included)."""
    return [_schedule(r) for r in conn.execute(select(fee_schedules).order_by("version"))]


def latest(conn: Connection) -> FeeSchedule:
    """The highest version published (in force or announced), or the default."""
    row = conn.execute(select(fee_schedules).order_by(fee_schedules.c.version.desc())).first()
    return _schedule(row) if row else DEFAULT


def in_force(conn: Connection, at_us: int) -> FeeSchedule:
    """The schedule governing a sale at ``at_us``: the newest already effective then."""
    row = conn.execute(
        select(fee_schedules)
        .where(fee_schedules.c.effective_us <= at_us)
        .order_by(fee_schedules.c.version.desc())
    ).first()
    return _schedule(row) if row else DEFAULT


def version(conn: Connection, number: int) -> FeeSchedule:
    """Schedule ``number`` (0: the default), as a subscription started under it keeps it."""
    if number == 0:
        return DEFAULT
    row = conn.execute(select(fee_schedules).where(fee_schedules.c.version == number)).first()
    if row is None:
        raise LookupError(f"no fee schedule version {number}")
    return _schedule(row)


def insert_schedule(conn: Connection, row: dict[str, Any]) -> None:
    with store_errors():
        conn.execute(insert(fee_schedules), row)


def split(schedule: FeeSchedule, amount: int) -> tuple[int, int, int]:
    """``amount`` base units as (creator, manufacturer, platform), exactly: the platform's
    and manufacturer's shares round down and the creator gets the remainder."""
    manufacturer = amount * schedule.manufacturer_bp // BASIS
    platform = amount * schedule.platform_bp // BASIS
    return amount - manufacturer - platform, manufacturer, platform
