"""The device registry and the devices' twins, as the node keeps them.

A device is known by its did (the Ed25519 key made at the flashing station, #6), the
product version it runs, its manufacturer and owner, its serial when it came from a
built unit, and free attributes (``{"region": "eu", "battery": "500Wh"}``) that groups
and rollouts select on.

Its twin is two documents, ``desired`` (what the owner, manufacturer or an operator
wants) and ``reported`` (what the device says it is), with one ``twin_version`` that
every write moves on, as AWS IoT's device shadow does: a write names the version it read,
and a write based on an older one is refused (``stale-version``), so two writers never
overwrite each other unknowingly. A write is a partial document merged into the current
one; a ``null`` value removes a key. The ``delta`` is what is desired and not (yet)
reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import devices

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "attributes_match",
    "count_matching",
    "delta",
    "document_problem",
    "get_device",
    "insert_device",
    "list_devices",
    "matching",
    "merge",
    "write_twin",
]

MAX_DOCUMENT_BYTES = 8 * 1024  # a twin document, as JSON (AWS IoT's shadow limit)
MAX_DEPTH = 6


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def merge(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` merged into ``current``: nested objects merge, ``None`` removes a key,
    anything else replaces (JSON Merge Patch, RFC 7386)."""
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def delta(desired: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """What ``desired`` holds that ``reported`` does not, nested objects compared key by key."""
    out: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            inner = delta(want, have)
            if inner:
                out[key] = inner
        elif want != have:
            out[key] = want
    return out


def document_problem(document: Mapping[str, Any]) -> str | None:
    """Why a twin document is too large or too deep, or None."""
    size = len(json.dumps(document, separators=(",", ":")).encode())
    if size > MAX_DOCUMENT_BYTES:
        return f"a twin document is at most {MAX_DOCUMENT_BYTES} bytes of JSON; this is {size}"
    if _depth(document) > MAX_DEPTH:
        return f"a twin document nests at most {MAX_DEPTH} levels"
    return None


# Built once: a device's twin is read and written on every report it sends, the node's
# most frequent write, and building the statement costs more than running it.
_GET_DEVICE = select(devices).where(devices.c.did == bindparam("did"))
_WRITE_TWIN = {
    field: update(devices)
    .where(devices.c.did == bindparam("b_did"), devices.c.twin_version == bindparam("b_version"))
    .values(
        {
            field: bindparam("b_document"),
            "twin_version": bindparam("b_next"),
            "updated_us": bindparam("b_now"),
        }
    )
    for field in ("desired", "reported")
}


def attributes_match(attributes: Mapping[str, Any] | None, wanted: Mapping[str, str]) -> bool:
    """Whether a device's attributes hold every wanted value (compared as text)."""
    attrs = attributes or {}
    return all(k in attrs and str(attrs[k]) == v for k, v in wanted.items())


def get_device(conn: Connection, did: str) -> dict[str, Any] | None:
    row = conn.execute(_GET_DEVICE, {"did": did}).first()
    return dict(row._mapping) if row else None


def insert_device(conn: Connection, row: dict[str, Any]) -> None:
    """Store a new device; DuplicateKey when its did or serial is known."""
    with store_errors():
        conn.execute(insert(devices), row)


def write_twin(
    conn: Connection, did: str, field: str, document: dict[str, Any], version: int, now_us: int
) -> bool:
    """Set ``field`` (desired or reported) if the twin is still at ``version``; whether it was.

    The check and the write are one statement, so two writers racing on one version
    cannot both win.
    """
    result = conn.execute(
        _WRITE_TWIN[field],
        {"b_did": did, "b_version": version, "b_document": document, "b_next": version + 1,
         "b_now": now_us},
    )  # fmt: skip
    return result.rowcount == 1


def list_devices(
    conn: Connection,
    *,
    product: str | None = None,
    version: str | None = None,
    owner: str | None = None,
    attributes: Mapping[str, str] | None = None,
    limit: int = 100,
    after: str | None = None,
) -> list[dict[str, Any]]:
    """Devices in did order (``after``: the last did of the previous page), filtered by
    product, version, owner and attributes (each ``name`` equal to ``value``, compared
    as text)."""
    query = select(devices).order_by(devices.c.did)
    for column, value in (
        (devices.c.product_id, product),
        (devices.c.version, version),
        (devices.c.owner, owner),
    ):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(devices.c.did > after)
    wanted = dict(attributes or {})
    if not wanted:
        return [dict(r._mapping) for r in conn.execute(query.limit(limit))]
    # attributes are JSON; matching in Python keeps one query for SQLite and PostgreSQL
    out: list[dict[str, Any]] = []
    for row in conn.execute(query).yield_per(500):
        if attributes_match(row.attributes, wanted):
            out.append(dict(row._mapping))
            if len(out) >= limit:
                break
    return out


def matching(
    conn: Connection,
    *,
    product: str,
    version: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """The dids of the devices a query selects, in did order, streamed (a rollout's or a
    group's population may be large)."""
    query = select(devices.c.did, devices.c.attributes).where(devices.c.product_id == product)
    if version is not None:
        query = query.where(devices.c.version == version)
    wanted = dict(attributes or {})
    for did, attrs in conn.execute(query.order_by(devices.c.did)).yield_per(1000):
        if attributes_match(attrs, wanted):
            yield did


def count_matching(
    conn: Connection,
    *,
    product: str,
    version: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> int:
    """How many devices a query selects (counted in SQL when no attribute is asked)."""
    if attributes:
        selected = matching(conn, product=product, version=version, attributes=attributes)
        return sum(1 for _ in selected)
    query = select(func.count()).select_from(devices).where(devices.c.product_id == product)
    if version is not None:
        query = query.where(devices.c.version == version)
    return int(conn.execute(query).scalar() or 0)
