"""Published factory layouts as the node keeps them: one row per layout, one per version.

A version row is written once and never changed: the layout that was signed is the
layout that is served, and its digest says so. The first did to publish a layout id
owns it; only that did publishes further versions of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import factory_layout_versions, factory_layouts
from liquidfab.product.catalog import semver_key

__all__ = [
    "get_layout",
    "get_version",
    "insert_version",
    "layouts_of_product",
    "list_layouts",
    "upsert_layout",
    "versions_of",
]

_GET = select(factory_layouts).where(factory_layouts.c.id == bindparam("id"))
_VERSION = select(factory_layout_versions).where(
    factory_layout_versions.c.layout_id == bindparam("id"),
    factory_layout_versions.c.version == bindparam("version"),
)
_VERSIONS = select(
    factory_layout_versions.c.version,
    factory_layout_versions.c.digest,
    factory_layout_versions.c.product,
    factory_layout_versions.c.published_us,
).where(factory_layout_versions.c.layout_id == bindparam("id"))
_OF_PRODUCT = select(factory_layout_versions.c.layout_id, factory_layout_versions.c.version).where(
    factory_layout_versions.c.product == bindparam("product")
)


def get_layout(conn: Connection, layout_id: str) -> dict[str, Any] | None:
    row = conn.execute(_GET, {"id": layout_id}).first()
    return dict(row._mapping) if row else None


def get_version(conn: Connection, layout_id: str, version: str) -> dict[str, Any] | None:
    row = conn.execute(_VERSION, {"id": layout_id, "version": version}).first()
    return dict(row._mapping) if row else None


def versions_of(conn: Connection, layout_id: str) -> list[dict[str, Any]]:
    """A layout's versions, oldest first by semver precedence."""
    rows = [dict(r._mapping) for r in conn.execute(_VERSIONS, {"id": layout_id})]
    return sorted(rows, key=lambda r: semver_key(r["version"]))


def list_layouts(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(factory_layouts).order_by(factory_layouts.c.id))
    return [dict(r._mapping) for r in rows]


def layouts_of_product(conn: Connection, product: str) -> list[dict[str, Any]]:
    """The layout versions that build ``product`` (``id@version``), by layout then version."""
    rows = [dict(r._mapping) for r in conn.execute(_OF_PRODUCT, {"product": product})]
    return sorted(rows, key=lambda r: (r["layout_id"], semver_key(r["version"])))


def insert_version(conn: Connection, row: dict[str, Any]) -> None:
    """Store a published version; DuplicateKey when that version exists (maybe concurrently)."""
    with store_errors():
        conn.execute(insert(factory_layout_versions), row)


def upsert_layout(
    conn: Connection, layout_id: str, owner: str, name: str, version: str, now_us: int
) -> dict[str, Any]:
    """Create the layout row, or move ``latest`` forward when ``version`` is newer."""
    found = get_layout(conn, layout_id)
    if found is None:
        row = {
            "id": layout_id,
            "owner": owner,
            "name": name,
            "latest": version,
            "created_us": now_us,
            "updated_us": now_us,
        }
        with store_errors():
            conn.execute(insert(factory_layouts), row)
        return row
    if semver_key(version) > semver_key(found["latest"]):
        conn.execute(
            update(factory_layouts)
            .where(factory_layouts.c.id == layout_id)
            .values(latest=version, name=name, updated_us=now_us)
        )
        found.update(latest=version, name=name, updated_us=now_us)
    return found
