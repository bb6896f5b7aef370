"""The protocol: one signed envelope, one registry of message types, one dispatcher."""

from liquidfab.protocol.canonical import canonical_bytes, parse_json
from liquidfab.protocol.dispatcher import Dispatcher, NodeSettings, Outcome, receipt_of
from liquidfab.protocol.envelope import (
    BATCH_CONTENT_TYPE,
    CONTENT_TYPE,
    PROTOCOL_VERSION,
    SIGALG,
    SPECVERSION,
    Envelope,
    EnvelopeModel,
    format_time,
    sign_message,
)
from liquidfab.protocol.ids import uuid7
from liquidfab.protocol.limits import DEFAULT_LIMITS, Limits
from liquidfab.protocol.participants import (
    REGISTER,
    UPDATE,
    ParticipantUpdate,
    Registration,
    Role,
    add_participant_types,
)
from liquidfab.protocol.registry import Context, Handler, MessageType, Registry
from liquidfab.protocol.settlement import SettlementLeg

__all__ = [
    "BATCH_CONTENT_TYPE",
    "CONTENT_TYPE",
    "DEFAULT_LIMITS",
    "PROTOCOL_VERSION",
    "REGISTER",
    "SIGALG",
    "SPECVERSION",
    "UPDATE",
    "Context",
    "Dispatcher",
    "Envelope",
    "EnvelopeModel",
    "Handler",
    "Limits",
    "MessageType",
    "NodeSettings",
    "Outcome",
    "ParticipantUpdate",
    "Registration",
    "Registry",
    "Role",
    "SettlementLeg",
    "add_participant_types",
    "canonical_bytes",
    "format_time",
    "parse_json",
    "receipt_of",
    "sign_message",
    "uuid7",
]
