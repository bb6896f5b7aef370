"""Named device groups: a saved query that rollouts and searches name (hawkBit's target
filters). A group is a query, not a list, so a device registered later that fits it is
a member at once.

A query is ``{product, version?, attributes?}``. A rollout's filter may name a group and
narrow it further; ``effective_query`` joins the two and refuses a contradiction (two
versions, two values for one attribute), which could only ever select nobody.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import device_groups
from liquidfab.errors import Refused

__all__ = ["effective_query", "get_group", "list_groups", "put_group"]


def get_group(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(device_groups).where(device_groups.c.name == name)).first()
    return dict(row._mapping) if row else None


def list_groups(conn: Connection, product: str | None = None) -> list[dict[str, Any]]:
    query = select(device_groups).order_by(device_groups.c.name)
    if product is not None:
        query = query.where(device_groups.c.product_id == product)
    return [dict(r._mapping) for r in conn.execute(query)]


def put_group(conn: Connection, row: dict[str, Any]) -> bool:
    """Store a group, replacing its query when it exists; whether it was new."""
    current = get_group(conn, row["name"])
    if current is None:
        with store_errors():
            conn.execute(insert(device_groups), row)
        return True
    conn.execute(
        update(device_groups)
        .where(device_groups.c.name == row["name"])
        .values(query=row["query"], updated_us=row["updated_us"])
    )
    return False


def effective_query(conn: Connection, filter_: dict[str, Any]) -> dict[str, Any]:
    """``{product, version, attributes}`` a filter selects: its own terms and those of
    the group it names, joined. Refused when the group is unknown or the terms disagree."""
    product = filter_["product"]
    version = filter_.get("version")
    attributes = {k: str(v) for k, v in (filter_.get("attributes") or {}).items()}
    name = filter_.get("group")
    if name:
        group = get_group(conn, name)
        if group is None:
            raise Refused("not-found", f"no device group {name}.", 404)
        if group["product_id"] != product:
            raise Refused(
                "incompatible", f"group {name} holds {group['product_id']}, not {product}.", 422
            )
        query = group["query"]
        if query.get("version") and version and query["version"] != version:
            raise Refused(
                "conflicting", f"group {name} selects version {query['version']}, not {version}.",
                422,
            )  # fmt: skip
        version = version or query.get("version")
        for key, value in (query.get("attributes") or {}).items():
            if key in attributes and attributes[key] != str(value):
                raise Refused(
                    "conflicting", f"group {name} selects {key}={value}, not {attributes[key]}.",
                    422,
                )  # fmt: skip
            attributes[key] = str(value)
    return {"product": product, "version": version, "attributes": attributes}
