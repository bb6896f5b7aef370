"""The settlement extension: transfer legs that commit with the message.

Its schema and its place in the signed bytes are fixed now so that peers built
today sign messages that a settling node will understand. It travels as the
``settlement`` attribute, a JSON array in a string (CloudEvents attributes are
strings in every binding), and is covered by the signature like any attribute.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from liquidfab.errors import ProtocolError
from liquidfab.protocol.canonical import canonical_bytes, parse_json

__all__ = ["SettlementLeg", "decode_settlement", "encode_settlement"]

TransferFlag = Literal["linked", "pending", "post_pending", "void_pending"]


class SettlementLeg(BaseModel):
    """One transfer, in the ledger's terms: integer base units, never floats."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="Client-chosen transfer id (UUIDv7, lowercase); retries reuse it.",
    )
    debit_account: str = Field(min_length=1, max_length=200)
    credit_account: str = Field(min_length=1, max_length=200)
    ledger: str = Field(pattern=r"^[A-Z][A-Z0-9]{1,11}$", description="The token, e.g. LQD.")
    amount: str | None = Field(
        None,
        pattern=r"^(0|[1-9][0-9]{0,38})$",
        description="Integer base units as a decimal string (up to 128 bits). Required, "
        "except on post_pending and void_pending, where omitting it means the pending "
        "transfer's whole amount.",
    )
    code: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$", description="Why the transfer is made.")
    flags: list[TransferFlag] = Field(default_factory=list, max_length=4)
    pending_id: str | None = Field(
        None, description="For post_pending and void_pending: the pending transfer's id."
    )
    timeout_seconds: int | None = Field(
        None, ge=1, le=365 * 24 * 3600, description="For pending transfers: when they expire."
    )


_LEGS = TypeAdapter(list[SettlementLeg])


def encode_settlement(legs: list[SettlementLeg]) -> str:
    """The attribute value for ``legs``: canonical JSON text."""
    return canonical_bytes([leg.model_dump(exclude_none=True) for leg in legs]).decode()


def decode_settlement(value: str, max_legs: int) -> list[SettlementLeg]:
    """The legs in a ``settlement`` attribute, or ProtocolError saying what is wrong."""
    try:
        raw = parse_json(value)
    except ProtocolError as e:
        raise ProtocolError(
            "schema-invalid", f"settlement is not a JSON array: {e.detail}", 422
        ) from e
    if not isinstance(raw, list) or not raw:
        raise ProtocolError(
            "schema-invalid",
            "settlement must be a JSON array holding at least one transfer leg; "
            "omit the attribute when the message moves no value.",
            422,
        )
    if len(raw) > max_legs:
        raise ProtocolError(
            "too-large",
            f"settlement carries {len(raw)} legs; at most {max_legs} are allowed.",
            413,
        )
    try:
        return _LEGS.validate_python(raw)
    except ValidationError as e:
        raise ProtocolError(
            "schema-invalid", f"settlement is invalid: {_first_error(e)}", 422
        ) from e


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']}"
