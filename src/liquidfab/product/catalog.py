"""Published products as the node keeps them: one row per product, one per version.

A version's definition is written once and never changed: the definition that was
signed is the definition that is served, and its digest says so. The one later change
is retirement (``retired_us``), which stops new orders but keeps the definition, since
orders placed before still name it.

``products.latest`` is the newest version ever published; :func:`latest` is the one to
offer, the newest not retired.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import product_versions, products

__all__ = [
    "get_product",
    "get_version",
    "insert_version",
    "latest",
    "latest_of",
    "list_products",
    "retire_version",
    "semver_key",
    "upsert_product",
    "versions_of",
]

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key with semver precedence: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-rc.1 < 1.0.0."""
    m = _SEMVER.match(version)
    if m is None:
        raise ValueError(f"{version!r} is not a semantic version")
    major, minor, patch, pre = m.groups()
    core = (int(major), int(minor), int(patch))
    if pre is None:
        return (*core, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, ids)


_GET = select(products).where(products.c.id == bindparam("id"))
_VERSION = select(product_versions).where(
    product_versions.c.product_id == bindparam("id"),
    product_versions.c.version == bindparam("version"),
)
_VERSIONS = select(
    product_versions.c.version,
    product_versions.c.digest,
    product_versions.c.published_us,
    product_versions.c.retired_us,
).where(product_versions.c.product_id == bindparam("id"))


def get_product(conn: Connection, product_id: str) -> dict[str, Any] | None:
    row = conn.execute(_GET, {"id": product_id}).first()
    return dict(row._mapping) if row else None


def get_version(conn: Connection, product_id: str, version: str) -> dict[str, Any] | None:
    row = conn.execute(_VERSION, {"id": product_id, "version": version}).first()
    return dict(row._mapping) if row else None


def versions_of(conn: Connection, product_id: str) -> list[dict[str, Any]]:
    """A product's versions, oldest first by semver precedence."""
    rows = [dict(r._mapping) for r in conn.execute(_VERSIONS, {"id": product_id})]
    return sorted(rows, key=lambda r: semver_key(r["version"]))


def latest_of(versions: list[dict[str, Any]], *, offered_only: bool = False) -> str | None:
    """The newest of ``versions`` (as :func:`versions_of` lists them) not retired; when all
    are retired, the newest, or None with ``offered_only``."""
    offered = [v["version"] for v in versions if v["retired_us"] is None]
    if offered:
        return offered[-1]
    return None if offered_only or not versions else versions[-1]["version"]


def latest(conn: Connection, product_id: str, *, offered_only: bool = False) -> str | None:
    """The version to offer of a product (see :func:`latest_of`); None for no such product."""
    return latest_of(versions_of(conn, product_id), offered_only=offered_only)


def retire_version(conn: Connection, product_id: str, version: str, now_us: int, by: str) -> bool:
    """Mark a version retired; False when it is missing or already retired (maybe
    concurrently: the guard is in the UPDATE, not in an earlier read)."""
    done = conn.execute(
        update(product_versions)
        .where(
            product_versions.c.product_id == product_id,
            product_versions.c.version == version,
            product_versions.c.retired_us.is_(None),
        )
        .values(retired_us=now_us, retired_by=by)
    )
    return done.rowcount == 1


def list_products(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(products).order_by(products.c.id))
    return [dict(r._mapping) for r in rows]


def insert_version(conn: Connection, row: dict[str, Any]) -> None:
    """Store a published version; DuplicateKey when that version exists (maybe concurrently)."""
    with store_errors():
        conn.execute(insert(product_versions), row)


def upsert_product(
    conn: Connection, product_id: str, manufacturer: str, name: str, version: str, now_us: int
) -> dict[str, Any]:
    """Create the product row, or move ``latest`` forward when ``version`` is newer."""
    found = get_product(conn, product_id)
    if found is None:
        row = {
            "id": product_id,
            "manufacturer": manufacturer,
            "name": name,
            "latest": version,
            "created_us": now_us,
            "updated_us": now_us,
        }
        with store_errors():
            conn.execute(insert(products), row)
        return row
    if semver_key(version) > semver_key(found["latest"]):
        conn.execute(
            update(products)
            .where(products.c.id == product_id)
            .values(latest=version, name=name, updated_us=now_us)
        )
        found.update(latest=version, name=name, updated_us=now_us)
    return found
