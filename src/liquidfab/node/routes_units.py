"""Unit passports by serial, in tiers: public, owner, authority (docs/protocol.md §12.6).

A reader proves a tier with a signed read, the header

    Liquidfab-Signature: did=<did:key>; created=<unix seconds>; sig=<base64url>

where ``sig`` is the Ed25519 signature of the key of ``did`` over the UTF-8 bytes of
``"liquidfab-read-v1\\n<node did>\\n<METHOD>\\n<path>\\n<created>"``, and ``created`` is
within the node's clock skew (§9). The unit's customer reads the owner tier; the node,
its operators (and participants registered as operator) and the unit's manufacturer
read the authority tier. Anything else (no header, a malformed, forged or stale one, a
signer with no standing) reads the public tier: never an error.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import BaseModel, Field

from liquidfab.db import participants as directory
from liquidfab.errors import IdentityError, ProtocolError
from liquidfab.identity import VerifyKey
from liquidfab.node.models import Problem
from liquidfab.node.problems import PROBLEM_JSON
from liquidfab.production import units

__all__ = ["READ_CONTEXT", "SIGNATURE_HEADER", "read_signature_bytes", "router", "tier_of"]

router = APIRouter(tags=["units"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
SerialPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
SIGNATURE_HEADER = "Liquidfab-Signature"
READ_CONTEXT = "liquidfab-read-v1"


def read_signature_bytes(node_did: str, method: str, path: str, created: int) -> bytes:
    """The bytes a signed read signs."""
    return f"{READ_CONTEXT}\n{node_did}\n{method.upper()}\n{path}\n{created}".encode()


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signer(request: Request, header: str | None) -> str | None:
    """The did that signed this read, or None when the header is absent or does not prove it."""
    if not header or len(header) > 1000:
        return None
    fields: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep or name in fields:
            return None
        fields[name] = value.strip().strip('"')
    if set(fields) != {"did", "created", "sig"} or not fields["created"].isdigit():
        return None
    node = request.app.state.node
    created = int(fields["created"])
    if abs(created - node.dispatcher.clock()) > node.limits.clock_skew_seconds:
        return None
    try:
        key = VerifyKey.from_did(fields["did"])
        signature = _b64url(fields["sig"])
    except (IdentityError, binascii.Error, ValueError):
        return None
    signed = read_signature_bytes(node.did, request.method, request.url.path, created)
    return key.did if key.verify(signed, signature) else None


def tier_of(request: Request, conn: Any, unit: dict[str, Any], did: str | None) -> str:
    """The tier ``did`` (a proven signer, or None) reads ``unit`` in."""
    if did is None:
        return "public"
    node = request.app.state.node
    if did == node.did or did in node.settings.operators or did == unit["manufacturer"]:
        return "authority"
    if directory.is_authority(conn, did):
        return "authority"
    if did == unit["customer"]:
        return "owner"
    return "public"


class PassportAsBuiltOut(BaseModel):
    status: str
    program_digest: str
    parts: list[dict[str, Any]] = Field(
        description="The as-built BOM; supplier, supplier_did and lot in the authority tier."
    )
    station_results: list[dict[str, Any]] | None = Field(None, description="Authority tier.")
    flashing_station: str | None = Field(None, description="Authority tier.")


class PassportOut(BaseModel):
    serial: str
    tier: str = Field(description="public, owner or authority: the tier this answer is in.")
    product: str
    version: str
    manufacturer: str
    device_did: str = Field(description="The unit's own identity (its private key is not kept).")
    built_at: str
    order: str | None = Field(None, description="Owner and authority tiers.")
    customer: str | None = Field(None, description="Owner and authority tiers.")
    choices: dict[str, Any] | None = Field(None, description="Owner and authority tiers.")
    features: list[str] | None = Field(None, description="Owner and authority tiers.")
    as_built: PassportAsBuiltOut | None = Field(None, description="Owner and authority tiers.")
    aas: dict[str, Any] = Field(description="The AAS environment, filtered to the tier.")


@router.get(
    "/v1/units/{serial}/passport",
    response_model=PassportOut,
    response_model_exclude_none=True,
    responses=_NOT_FOUND,
    summary="A unit's passport; the tier depends on who signs the read (Liquidfab-Signature)",
)
def get_passport(
    request: Request,
    response: Response,
    serial: SerialPath,
    liquidfab_signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            description="did=<did>; created=<unix seconds>; sig=<base64url> (§12.6).",
        ),
    ] = None,
) -> dict[str, Any]:
    did = _signer(request, liquidfab_signature)

    def load(conn: Any) -> dict[str, Any] | None:
        unit = units.get_unit(conn, serial)
        if unit is None:
            return None
        return units.passport(conn, unit, tier_of(request, conn, unit, did))

    found = request.app.state.node.database.read(load)
    if found is None:
        raise ProtocolError("not-found", f"this node holds no unit {serial}.", 404)
    response.headers["Vary"] = SIGNATURE_HEADER
    return found
