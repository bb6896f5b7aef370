"""The message types a node serves: one registry, filled by each capability.

A capability declares ``(type, payload model, handler)``; the dispatcher does
the rest (schema, signature, time, dedup, transaction), so a handler only
decides what the message means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection

from liquidfab.protocol.envelope import Envelope
from liquidfab.protocol.settlement import SettlementLeg

if TYPE_CHECKING:
    from liquidfab.protocol.dispatcher import NodeSettings

__all__ = ["Context", "Handler", "MessageType", "Registry"]


@dataclass
class Context:
    """What a handler sees: the message, its typed payload, and the open transaction."""

    conn: Connection
    envelope: Envelope
    payload: Any
    now_us: int
    node: NodeSettings | None = None  # the node's did and operators, when run by a node
    settlement: list[SettlementLeg] = field(default_factory=list)  # the message's legs
    transfers: list[dict[str, Any]] = field(default_factory=list)  # the legs as applied
    # what a handler wants said once its transaction commits (for example "this device
    # has new work"); dropped with the message when it is refused
    notices: list[tuple[str, str]] = field(default_factory=list)

    @property
    def signer(self) -> str:
        return self.envelope.source


Handler = Callable[[Context], dict[str, Any]]


@dataclass(frozen=True)
class MessageType:
    """One message type: its name, its payload schema and what applying it does."""

    type: str
    payload: type[BaseModel]
    handler: Handler
    summary: str
    signer_must_be_registered: bool = True
    subject_required: bool = False
    # "allowed": legs optional; "required": refused without legs; "forbidden": refused
    # with legs. A handler sees the applied legs in ``ctx.transfers`` and may refuse
    # messages whose settlement does not pay what it must (a price, an escrow).
    settlement: Literal["allowed", "required", "forbidden"] = "allowed"


@dataclass
class Registry:
    """Message types by name."""

    _types: dict[str, MessageType] = field(default_factory=dict)

    def add(self, message_type: MessageType) -> None:
        if message_type.type in self._types:
            raise ValueError(f"message type {message_type.type} is registered twice")
        self._types[message_type.type] = message_type

    def get(self, type_name: str) -> MessageType | None:
        return self._types.get(type_name)

    def __iter__(self) -> Iterator[MessageType]:
        return iter(sorted(self._types.values(), key=lambda t: t.type))

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._types
