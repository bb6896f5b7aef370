"""Who takes part: ``identity.register`` and ``identity.update``.

A participant is known by its did:key and only that key may create or change
its record. The roles ``node`` and ``operator`` carry authority over the node,
so only the dids the node was started with may claim them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from liquidfab.db import participants as directory
from liquidfab.errors import Refused
from liquidfab.protocol.envelope import DID_PATTERN
from liquidfab.protocol.registry import Context, MessageType, Registry

__all__ = [
    "REGISTER",
    "UPDATE",
    "ParticipantUpdate",
    "Registration",
    "Role",
    "add_participant_types",
]

REGISTER = "org.liquidfab.identity.register"
UPDATE = "org.liquidfab.identity.update"
_ENDPOINT_SCHEMES = ("http://", "https://", "mqtt://", "mqtts://")


class Role(StrEnum):
    """What a participant is in the network; node and operator are reserved."""

    MANUFACTURER = "manufacturer"
    SUPPLIER = "supplier"
    CREATOR = "creator"
    OWNER = "owner"
    DEVICE = "device"
    NODE = "node"
    OPERATOR = "operator"


_RESERVED = {Role.NODE, Role.OPERATOR}


def _endpoint(url: str) -> str:
    if not url.startswith(_ENDPOINT_SCHEMES) or not urlsplit(url).hostname:
        raise ValueError("an endpoint is an http, https, mqtt or mqtts URL with a host")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise ValueError("an endpoint URL may not contain spaces or control characters")
    return url


Endpoint = Annotated[str, Field(max_length=500), AfterValidator(_endpoint)]
DisplayName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Registration(BaseModel):
    """Payload of identity.register."""

    model_config = ConfigDict(extra="forbid")

    did: str = Field(pattern=DID_PATTERN, description="The did being registered: the signer's.")
    role: Role
    display_name: DisplayName
    endpoints: list[Endpoint] = Field(default_factory=list, max_length=8)


class ParticipantUpdate(BaseModel):
    """Payload of identity.update; the role cannot change."""

    model_config = ConfigDict(extra="forbid")

    did: str = Field(pattern=DID_PATTERN, description="The did being changed: the signer's.")
    display_name: DisplayName | None = None
    endpoints: list[Endpoint] | None = Field(None, max_length=8)


def _own_record(ctx: Context, did: str) -> None:
    if did != ctx.signer:
        raise Refused(
            "unauthorized",
            f"only the holder of {did}'s key can register or change its record; "
            "sign the message with that key.",
            403,
        )
    if ctx.envelope.subject not in (None, did):
        raise Refused("schema-invalid", "the subject, when given, must be the did itself.", 422)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("did", "role", "display_name", "endpoints", "version")}


def _register(ctx: Context) -> dict[str, Any]:
    reg: Registration = ctx.payload
    _own_record(ctx, reg.did)
    allowed = {ctx.node.node_did, *ctx.node.operators} if ctx.node else set()
    if reg.role in _RESERVED and reg.did not in allowed:
        raise Refused(
            "unauthorized",
            f"the role {reg.role.value!r} is reserved for the node and its operators; "
            "choose another role.",
            403,
        )
    if directory.get_participant(ctx.conn, reg.did) is not None:
        raise Refused(
            "already-registered",
            f"{reg.did} is already registered; send {UPDATE} to change its record.",
            409,
        )
    row = {
        "did": reg.did,
        "role": reg.role.value,
        "display_name": reg.display_name,
        "endpoints": list(reg.endpoints),
        "version": 1,
        "created_us": ctx.now_us,
        "updated_us": ctx.now_us,
        "registered_by": f"{ctx.envelope.source} {ctx.envelope.id}",
    }
    directory.insert_participant(ctx.conn, row)
    return {"participant": _public(row)}


def _update(ctx: Context) -> dict[str, Any]:
    upd: ParticipantUpdate = ctx.payload
    _own_record(ctx, upd.did)
    changes = upd.model_dump(exclude={"did"}, exclude_none=True)
    if not changes:
        raise Refused("schema-invalid", "an update must change display_name or endpoints.", 422)
    row = directory.update_participant(ctx.conn, upd.did, changes, ctx.now_us)
    return {"participant": _public(row)}


def add_participant_types(registry: Registry) -> None:
    """Register identity.register and identity.update in ``registry``."""
    registry.add(
        MessageType(
            REGISTER,
            Registration,
            _register,
            "Register the signer's did with a role, a display name and endpoints.",
            signer_must_be_registered=False,
        )
    )
    registry.add(
        MessageType(
            UPDATE,
            ParticipantUpdate,
            _update,
            "Change the signer's display name or endpoints.",
        )
    )
