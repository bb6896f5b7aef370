"""Director assignments, Uptane's idea: the node signs, for each device, which target it
should install, with a counter that only grows.

The TUF repository says what software exists and that it is genuine; the assignment says
what this one device should run. A device installs a target only when both agree: the
assignment is signed by the node it trusts, names this device, fits its hardware and
product, carries a counter above the last it accepted (never backwards, never a replay),
and names the hash and length the TUF targets metadata gives for that target.

The assignment also says how to install: ``mode`` (forced; soft, installed once the
owner consents, which the node records by signing the assignment again with ``consent``
true and a higher counter; download-only) and the maintenance ``window`` installs wait
for (see ``windows``).

The signed form is ``{"signed": {...}, "signature": <base64url Ed25519>}``, the signature
over the RFC 8785 canonical JSON of ``signed``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import assignments
from liquidfab.errors import IdentityError, LiquidfabError, Refused
from liquidfab.identity import SigningKey, VerifyKey
from liquidfab.protocol.canonical import canonical_bytes

__all__ = [
    "ASSIGNMENT_TYPE",
    "AssignmentRefused",
    "get_assignment",
    "sign_assignment",
    "store_assignment",
    "verify_assignment",
]

ASSIGNMENT_TYPE = "liquidfab-assignment-v1"


class AssignmentRefused(LiquidfabError):
    """A device refuses an assignment; ``reason`` is a short code it reports."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def get_assignment(conn: Connection, device: str) -> dict[str, Any] | None:
    row = conn.execute(select(assignments).where(assignments.c.device == device)).first()
    return dict(row._mapping) if row else None


def store_assignment(conn: Connection, row: dict[str, Any]) -> int:
    """Replace the device's assignment, its counter one above the last; the counter."""
    current = get_assignment(conn, row["device"])
    counter = 1 if current is None else int(current["counter"]) + 1
    values = {"mode": "forced", "window": None, "consent_by": None, **row, "counter": counter}
    if current is None:
        with store_errors():
            conn.execute(assignments.insert(), values)
    else:
        moved = conn.execute(
            update(assignments)
            .where(
                assignments.c.device == row["device"],
                assignments.c.counter == current["counter"],
            )
            .values(values)
        )
        if moved.rowcount != 1:
            raise Refused("conflict", "another assignment was made meanwhile; send again.", 409)
    return counter


def _document(row: Mapping[str, Any], node_did: str) -> dict[str, Any]:
    return {
        "type": ASSIGNMENT_TYPE,
        "director": node_did,
        "device": row["device"],
        "counter": int(row["counter"]),
        "target": row["target"],
        "sha256": row["sha256"],
        "length": int(row["length"]),
        "custom": dict(row["custom"]),
        "assigned_us": int(row["assigned_us"]),
        "mode": row.get("mode") or "forced",
        "window": row.get("window"),
        "consent": row.get("consent_by") is not None,
    }


def sign_assignment(key: SigningKey, row: Mapping[str, Any]) -> dict[str, Any]:
    """The assignment in ``row`` signed by the node's ``key``."""
    signed = _document(row, key.did)
    signature = key.sign(canonical_bytes(signed))
    return {"signed": signed, "signature": base64.urlsafe_b64encode(signature).decode().rstrip("=")}


def verify_assignment(
    envelope: Mapping[str, Any],
    *,
    director: str,
    device: str,
    hardware: str,
    product: str,
    last_counter: int,
    target_hashes: Mapping[str, tuple[str, int]],
) -> dict[str, Any]:
    """The assignment's signed part, if a device with these facts should accept it.

    ``target_hashes`` maps target names to (sha256, length) as the device's verified TUF
    targets metadata gives them. Raises ``AssignmentRefused`` with a reason otherwise.
    """
    signed = envelope.get("signed")
    signature = envelope.get("signature")
    if not isinstance(signed, dict) or not isinstance(signature, str):
        raise AssignmentRefused("malformed", "an assignment has signed and signature")
    if signed.get("type") != ASSIGNMENT_TYPE or signed.get("director") != director:
        raise AssignmentRefused("wrong-director", "not an assignment from the node trusted")
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        ok = VerifyKey.from_did(director).verify(canonical_bytes(signed), raw)
    except (IdentityError, ValueError, LiquidfabError):
        ok = False
    if not ok:
        raise AssignmentRefused("bad-signature", "the director's signature does not verify")
    if signed.get("device") != device:
        raise AssignmentRefused("other-device", f"the assignment is for {signed.get('device')}")
    custom = signed.get("custom") or {}
    if custom.get("hardware") != hardware or custom.get("product") != product:
        raise AssignmentRefused(
            "incompatible",
            f"the target is for {custom.get('product')} on {custom.get('hardware')}",
        )
    counter = signed.get("counter")
    if not isinstance(counter, int) or counter <= last_counter:
        raise AssignmentRefused(
            "replayed", f"counter {counter} is not above the last accepted, {last_counter}"
        )
    expected = target_hashes.get(signed.get("target", ""))
    if expected is None:
        raise AssignmentRefused("unknown-target", "the repository does not list the target")
    if (signed.get("sha256"), signed.get("length")) != expected:
        raise AssignmentRefused("mix-and-match", "the assignment and the repository disagree")
    return signed
