"""Listings as the node keeps them: an app in a territory, what it runs on, its price,
and its released versions.

An app is named ``@territory/slug``. It targets one product's versions (a PEP 440
specifier such as ``>=1.0,<2``) and states what a unit must have in the product's own
expression language (``requires: "mid_drive and connectivity_module"``), checked
against the unit's as-built configuration at purchase. Its price is one of: free,
one-time, subscription per period, trial then paid, per use (metered: each record's
quantity summed, or the records counted, times the unit price).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, func, insert, or_, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import market_listings, market_releases

__all__ = [
    "KINDS",
    "Meter",
    "Pricing",
    "get_listing",
    "latest_release",
    "list_listings",
    "put_listing",
    "releases_of",
    "spec_matches",
    "version_problem",
    "with_targets",
]

KINDS = ("feature", "ai-skill", "model", "widget", "app")
PERIOD_SECONDS = {"month": 30 * 24 * 3600, "year": 365 * 24 * 3600}


class Meter(BaseModel):
    """How per-use records add up: their quantities summed, or the records counted."""

    model_config = ConfigDict(extra="forbid")

    unit: str = Field(min_length=1, max_length=40, description="What one unit is: minutes, calls.")
    aggregate: Literal["sum", "count"] = "sum"


class Pricing(BaseModel):
    """An app's price, in the network token. ``amount`` is per purchase, per period, or
    per unit of use."""

    model_config = ConfigDict(extra="forbid")

    model: Literal["free", "one-time", "subscription", "trial-then-paid", "per-use"]
    amount: Decimal = Field(Decimal(0), ge=0, max_digits=18, decimal_places=6)
    period: Literal["month", "year"] | None = None
    trial_days: int = Field(0, ge=0, le=365)
    meter: Meter | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Pricing:
        m = self.model
        if (m == "free") != (self.amount == 0):
            raise ValueError("a free app has amount 0, and only a free app")
        if m in ("subscription", "trial-then-paid") and self.period is None:
            raise ValueError(f"a {m} price names its period (month or year)")
        if m not in ("subscription", "trial-then-paid") and self.period is not None:
            raise ValueError("only a subscription has a period")
        if (m == "trial-then-paid") != (self.trial_days > 0):
            raise ValueError("trial_days is set for trial-then-paid, and only for it")
        if (m == "per-use") != (self.meter is not None):
            raise ValueError("a per-use price has a meter, and only it")
        return self

    def units(self, decimals: int = 6) -> int:
        """The amount in base units of the token."""
        return int(self.amount.scaleb(decimals))

    @property
    def period_seconds(self) -> int:
        return PERIOD_SECONDS.get(self.period or "", 0)


def version_problem(version: str) -> str | None:
    """Why ``version`` is not a release version (PEP 440, at most 64 characters), or None."""
    if len(version) > 64:
        return "a version has at most 64 characters"
    try:
        if str(Version(version)) != version:
            return f"write the version in its normal form, {Version(version)}"
    except InvalidVersion:
        return f"{version!r} is not a version (1.2.0, 2.0.0rc1)"
    return None


def spec_matches(versions: str, version: str) -> bool:
    """Whether a product ``version`` falls in a listing's specifier (``*``: any)."""
    if versions.strip() in ("", "*"):
        return True
    try:
        return SpecifierSet(versions).contains(version, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return False


def specifier_problem(versions: str) -> str | None:
    if versions.strip() in ("", "*"):
        return None
    try:
        SpecifierSet(versions)
    except InvalidSpecifier:
        return f"{versions!r} is not a version specifier (>=1.0,<2 or *)"
    return None


def get_listing(conn: Connection, app: str) -> dict[str, Any] | None:
    row = conn.execute(select(market_listings).where(market_listings.c.app == app)).first()
    return dict(row._mapping) if row else None


def put_listing(conn: Connection, row: dict[str, Any], now_us: int) -> bool:
    """Store a new listing or update one; True when it was new."""
    if get_listing(conn, row["app"]) is None:
        with store_errors():
            conn.execute(
                insert(market_listings), {**row, "listed_us": now_us, "updated_us": now_us}
            )
        return True
    values = {k: v for k, v in row.items() if k not in ("app", "listed_by")}
    conn.execute(
        update(market_listings)
        .where(market_listings.c.app == row["app"])
        .values(**values, updated_us=now_us)
    )
    return False


def list_listings(
    conn: Connection,
    *,
    territory: str | None = None,
    product: str | None = None,
    q: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Listings by app name; ``q`` searches names, titles and summaries."""
    query = select(market_listings).order_by(market_listings.c.app).limit(limit)
    if territory is not None:
        query = query.where(market_listings.c.territory == territory)
    if product is not None:
        query = query.where(market_listings.c.product == product)
    if after is not None:
        query = query.where(market_listings.c.app > after)
    if q:
        like = f"%{q.lower().replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(
                func.lower(market_listings.c.app).like(like),
                func.lower(market_listings.c.title).like(like),
                func.lower(market_listings.c.summary).like(like),
            )
        )
    return [dict(r._mapping) for r in conn.execute(query)]


def releases_of(conn: Connection, app: str) -> list[dict[str, Any]]:
    """An app's releases, newest version first."""
    rows = conn.execute(select(market_releases).where(market_releases.c.app == app))
    out = [dict(r._mapping) for r in rows]
    return sorted(out, key=lambda r: Version(r["version"]), reverse=True)


def latest_release(conn: Connection, app: str) -> dict[str, Any] | None:
    releases = releases_of(conn, app)
    return releases[0] if releases else None


def with_targets(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entitlement rows, each market app's with the TUF target of its newest release (what
    the device installs)."""
    out = []
    for row in rows:
        if row["feature"].startswith("@"):
            latest = latest_release(conn, row["feature"])
            row = {**row, "target": latest["target"] if latest else None}
        out.append(row)
    return out


def insert_release(conn: Connection, row: dict[str, Any]) -> None:
    with store_errors():
        conn.execute(insert(market_releases), row)
