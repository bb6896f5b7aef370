"""Entitlements: a product's optional features bought for one device, and the licenses
the device checks offline before it enables them.

Buying (``org.liquidfab.fleet.entitlement``, signed by the device's owner) pays the
feature's price in the same message: one posted leg from the owner to the manufacturer
of exactly the price (a one-time price; a subscription's price times the periods paid;
nothing during a trial; per-use features are licensed free and metered). The node keeps
the entitlement and serves the device its licenses, signed:

    {"signed": {"type": "liquidfab-licenses-v1", "issuer": <node did>, "device": <did>,
                "as_of_us": ..., "grace_seconds": ...,
                "licenses": [{"entitlement", "feature", "model", "issued_us",
                              "expires_us" | null, "target"?}, ...]},
     "signature": <base64url Ed25519 over the RFC 8785 JSON of signed>}

A market app's license also names ``target``, the TUF target of its latest release
(``@territory/app/version``), which the device installs only if the territory's own
keys signed it (``market/delegation.py``). A revoked entitlement drops out of the list.
The device keeps the last list it verified
and enables a feature while ``now`` is before its expiry and before ``as_of + grace``
(offline grace: a device that cannot reach its node keeps its features for a while, not
for ever).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import entitlements
from liquidfab.errors import IdentityError, LiquidfabError
from liquidfab.identity import SigningKey, VerifyKey
from liquidfab.protocol.canonical import canonical_bytes

__all__ = [
    "GRACE_SECONDS",
    "LICENSES_TYPE",
    "LicenseRefused",
    "active",
    "enabled_features",
    "get_entitlement",
    "insert_entitlement",
    "revoke",
    "signed_licenses",
    "verify_licenses",
]

LICENSES_TYPE = "liquidfab-licenses-v1"
GRACE_SECONDS = 7 * 24 * 3600
PERIOD_SECONDS = {"month": 30 * 24 * 3600, "year": 365 * 24 * 3600}


class LicenseRefused(LiquidfabError):
    """A device refuses a license list; ``reason`` is the short code it reports."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def get_entitlement(conn: Connection, entitlement_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(entitlements).where(entitlements.c.id == entitlement_id)).first()
    return dict(row._mapping) if row else None


def insert_entitlement(conn: Connection, row: dict[str, Any]) -> None:
    with store_errors():
        conn.execute(insert(entitlements), row)


def active(conn: Connection, device: str, now_us: int) -> list[dict[str, Any]]:
    """The device's entitlements not revoked and not expired, oldest first."""
    query = (
        select(entitlements)
        .where(
            entitlements.c.device == device,
            entitlements.c.revoked_us.is_(None),
            or_(entitlements.c.expires_us.is_(None), entitlements.c.expires_us > now_us),
        )
        .order_by(entitlements.c.issued_us, entitlements.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def revoke(conn: Connection, entitlement_id: str, by: str, now_us: int) -> None:
    conn.execute(
        update(entitlements)
        .where(entitlements.c.id == entitlement_id)
        .values(revoked_us=now_us, revoked_by=by)
    )


def _license(r: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        "entitlement": r["id"],
        "feature": r["feature"],
        "model": r["model"],
        "issued_us": r["issued_us"],
        "expires_us": r["expires_us"],
    }
    if r.get("target"):  # a market app: the TUF target to install (inside its territory)
        out["target"] = r["target"]
    return out


def signed_licenses(
    key: SigningKey, device: str, rows: list[Mapping[str, Any]], now_us: int
) -> dict[str, Any]:
    """The device's license list, signed by the node's ``key``."""
    signed = {
        "type": LICENSES_TYPE,
        "issuer": key.did,
        "device": device,
        "as_of_us": now_us,
        "grace_seconds": GRACE_SECONDS,
        "licenses": [_license(r) for r in rows],
    }
    signature = key.sign(canonical_bytes(signed))
    return {"signed": signed, "signature": base64.urlsafe_b64encode(signature).decode().rstrip("=")}


def verify_licenses(
    envelope: Mapping[str, Any], *, issuer: str, device: str, not_before_us: int = 0
) -> dict[str, Any]:
    """The signed list, if it is from ``issuer``, for ``device``, and not older than one the
    device already holds (``not_before_us``: its ``as_of``); ``LicenseRefused`` otherwise."""
    if not isinstance(envelope, Mapping):
        raise LicenseRefused("malformed", "a license list is a JSON object")
    signed = envelope.get("signed")
    signature = envelope.get("signature")
    if not isinstance(signed, dict) or not isinstance(signature, str):
        raise LicenseRefused("malformed", "a license list has signed and signature")
    if signed.get("type") != LICENSES_TYPE or signed.get("issuer") != issuer:
        raise LicenseRefused("wrong-issuer", "not a license list from the node trusted")
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        ok = VerifyKey.from_did(issuer).verify(canonical_bytes(signed), raw)
    except (IdentityError, ValueError, LiquidfabError):
        ok = False
    if not ok:
        raise LicenseRefused("forged", "the issuer's signature does not verify")
    if signed.get("device") != device:
        raise LicenseRefused("other-device", f"the licenses are for {signed.get('device')}")
    as_of = signed.get("as_of_us")
    if not isinstance(as_of, int) or as_of < not_before_us:
        raise LicenseRefused("replayed", "an older license list than the one held")
    return signed


def enabled_features(signed: Mapping[str, Any], now_us: int) -> list[str]:
    """The features a verified list enables at ``now_us``: each license unexpired, and the
    list itself within its offline grace."""
    grace_end = int(signed["as_of_us"]) + int(signed["grace_seconds"]) * 1_000_000
    if now_us > grace_end:
        return []
    out = []
    for lic in signed.get("licenses", []):
        expires = lic.get("expires_us")
        if expires is None or now_us < int(expires):
            out.append(lic["feature"])
    return sorted(set(out))
