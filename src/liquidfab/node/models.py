"""Response bodies of the HTTP API, declared once so OpenAPI describes them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Health", "MessageRecord", "ParticipantOut", "Problem", "Receipt", "WellKnown"]


class Problem(BaseModel):
    """RFC 9457 problem details, with liquidfab's stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


class Receipt(BaseModel):
    """A message the node accepted; an identical retry returns the same receipt."""

    status: str = Field(description="Always 'accepted'.")
    source: str
    id: str
    type: str
    seq: int = Field(description="Position in the node's message log.")
    digest: str = Field(description="SHA-256 of the signed bytes (hex).")
    received_us: int = Field(description="When the node first applied it (µs since epoch).")
    result: dict[str, Any] = Field(description="What the handler returned.")


class MessageRecord(BaseModel):
    receipt: Receipt
    message: dict[str, Any] = Field(description="The signed event, as received.")


class ParticipantOut(BaseModel):
    did: str
    role: str
    display_name: str
    endpoints: list[str]
    version: int
    created_us: int
    updated_us: int


class Health(BaseModel):
    status: str
    database: str
    messages: int
    participants: int


class MessageTypeInfo(BaseModel):
    type: str
    summary: str
    schema_url: str


class WellKnown(BaseModel):
    """What a peer needs to talk to this node (cf. the Dataspace Protocol's version endpoint)."""

    protocol: str
    versions: list[dict[str, str]]
    node: str
    title: str
    message_types: list[MessageTypeInfo]
    content_types: list[str]
    limits: dict[str, int]
