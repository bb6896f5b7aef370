"""The market's TUF delegations: only a territory's keys sign software inside it.

The repository's offline ``targets`` role delegates every market name
(``@territory/app/version``) to the online ``market`` role, terminating. The ``market``
role, signed by the node, delegates each territory's names (``@acme-ai/*/*``) to a role
of its own, ``market.acme-ai``, whose keys are the territory owner's and co-publishers'
(their did:key Ed25519 keys), terminating too. The creator signs that role's metadata
when publishing; the node checks it here and the device checks it again as it walks the
delegations (python-tuf's ``ngclient``), so a node that were tricked into storing
someone else's release still cannot make a device install it.

The store holds each role's latest signed metadata (``market_roles``); the repository's
files are written from it after the commit (``sync``), and again at start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import DelegatedRole, Delegations, Metadata, Targets
from tuf.api.serialization import DeserializationError

from liquidfab.db.tables import market_roles
from liquidfab.errors import IdentityError, Refused
from liquidfab.fleet.repository import EXPIRY, MARKET_ROLE
from liquidfab.fleet.tuf_keys import KeySigner, tuf_key
from liquidfab.identity import SigningKey, VerifyKey

__all__ = [
    "MAX_ROLE_LIFETIME",
    "check_role",
    "market_metadata",
    "now_utc",
    "role_name",
    "store_role",
    "stored_role",
    "target_name",
    "territory_of",
]

MAX_ROLE_LIFETIME = timedelta(days=400)


def role_name(territory: str) -> str:
    """The delegated role of ``@name``: ``market.name``."""
    return f"{MARKET_ROLE}.{territory.removeprefix('@')}"


def target_name(app: str, version: str) -> str:
    """The TUF target name of an app's version: ``@territory/app/version``."""
    return f"{app}/{version}"


def territory_of(name: str) -> str:
    """The territory an app or target name lies in (``@acme-ai``)."""
    return name.split("/", 1)[0]


def _keys(territory: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for did in [territory["owner"], *territory["publishers"]]:
        try:
            key = tuf_key(VerifyKey.from_did(did))
        except IdentityError:  # pragma: no cover - registered dids are Ed25519 did:keys
            continue
        out[key.keyid] = key
    return out


def _delegation(territory: Mapping[str, Any]) -> tuple[DelegatedRole, dict[str, Any]]:
    keys = _keys(territory)
    paths = [f"{territory['name']}/*/*"]
    return DelegatedRole(role_name(territory["name"]), sorted(keys), 1, True, paths), keys


def market_metadata(
    territories: Sequence[Mapping[str, Any]], version: int, key: SigningKey, now: datetime
) -> Metadata[Targets]:
    """The market role: one terminating delegation per territory, signed by the node."""
    keys: dict[str, Any] = {}
    roles: dict[str, DelegatedRole] = {}
    for t in sorted(territories, key=lambda t: t["name"]):
        role, role_keys = _delegation(t)
        keys.update(role_keys)
        roles[role.name] = role
    targets = Targets(version=version, expires=now + EXPIRY["targets"])
    targets.delegations = Delegations(keys, roles=roles)
    md = Metadata(targets)
    md.sign(KeySigner(key))
    return md


def _refuse(code: str, detail: str, status: int = 422) -> Refused:
    return Refused(code, detail, status)


def check_role(
    document: Mapping[str, Any],
    territory: Mapping[str, Any],
    current: Metadata[Targets] | None,
    release: Mapping[str, Any],
    now: datetime,
) -> Metadata[Targets]:
    """The creator's signed role metadata, if it is the territory's next version, signed
    by one of its keys, changes no earlier release and adds exactly ``release`` (its
    ``target``, ``length``, ``sha256`` and ``custom``); Refused otherwise."""
    try:
        md = Metadata.from_bytes(json.dumps(document).encode())
    except (DeserializationError, ValueError, TypeError, KeyError) as e:
        raise _refuse("malformed", f"role is not TUF targets metadata: {e}", 400) from e
    signed = md.signed
    if not isinstance(signed, Targets):
        raise _refuse("malformed", "role is not TUF targets metadata", 400)
    name = role_name(territory["name"])
    role, keys = _delegation(territory)
    delegator = Targets(delegations=Delegations(keys, roles={name: role}))
    try:
        delegator.verify_delegate(name, md.signed_bytes, md.signatures)
    except UnsignedMetadataError as e:
        raise _refuse(
            "unauthorized",
            f"the role metadata is not signed by a key of {territory['name']} (its owner or a "
            "co-publisher).",
            403,
        ) from e
    expected = (current.signed.version if current else 0) + 1
    if signed.version != expected:
        raise _refuse("stale-version", f"the role's next version is {expected}.", 409)
    if not now < signed.expires <= now + MAX_ROLE_LIFETIME:
        raise _refuse("bad-expiry", "the role expires in the future, within 400 days.")
    if signed.delegations is not None:
        raise _refuse("no-delegation", "a territory's role delegates no further.", 403)
    outside = [p for p in signed.targets if not role.is_delegated_path(p)]
    if outside:
        raise _refuse(
            "outside-territory",
            f"{outside[0]} is not a name inside {territory['name']} (@name/app/version).",
            403,
        )
    before = current.signed.targets if current else {}
    for path, old in before.items():
        new = signed.targets.get(path)
        if new is None:
            raise _refuse("release-mismatch", f"the role drops {path}, released before.")
        if (new.length, new.hashes) != (old.length, old.hashes):
            raise _refuse("immutable", f"{path} was released with other bytes already.", 409)
    added = set(signed.targets) - set(before)
    target = signed.targets.get(release["target"])
    if added != {release["target"]} or target is None:
        raise _refuse(
            "release-mismatch", f"the role must add exactly {release['target']}, nothing else."
        )
    custom = target.unrecognized_fields.get("custom")
    if (
        target.length != release["length"]
        or target.hashes.get("sha256") != release["sha256"]
        or custom != dict(release["custom"])
    ):
        raise _refuse(
            "release-mismatch",
            f"{release['target']} in the role does not describe the uploaded bytes "
            f"({release['length']} bytes, sha256 {release['sha256']}) and the custom fields "
            f"{dict(release['custom'])}.",
        )
    return md


def stored_role(conn: Connection, role: str) -> Metadata[Targets] | None:
    """The latest signed metadata of a delegated role the store holds."""
    row = conn.execute(select(market_roles.c.document).where(market_roles.c.role == role)).first()
    return Metadata.from_bytes(row[0].encode()) if row else None


def store_role(conn: Connection, role: str, md: Metadata[Targets], now_us: int) -> None:
    """Keep ``md`` as the role's latest; the repository follows after the commit."""
    document = md.to_bytes().decode()
    values = {"version": md.signed.version, "document": document, "updated_us": now_us}
    moved = conn.execute(
        update(market_roles).where(market_roles.c.role == role).values(**values)
    ).rowcount
    if not moved:
        conn.execute(insert(market_roles).values(role=role, **values))


def now_utc(now_us: int) -> datetime:
    """A microsecond clock reading as TUF's (whole-second, aware) datetime."""
    return datetime.fromtimestamp(now_us // 1_000_000, UTC)
