"""The one envelope: a CloudEvents 1.0 event, signed with Ed25519.

The signature covers the RFC 8785 canonical bytes of every attribute except
``signature`` itself, ``data`` and attributes this code does not know included,
so a node that is older than its peers still verifies (and keeps) what they
add. Every context attribute is a string: that keeps the structured and binary
HTTP modes lossless, so both carry the same signed bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from liquidfab.errors import IdentityError, ProtocolError
from liquidfab.identity import SigningKey, VerifyKey
from liquidfab.protocol.canonical import canonical_bytes, check_depth
from liquidfab.protocol.ids import uuid7
from liquidfab.protocol.limits import DEFAULT_LIMITS, Limits
from liquidfab.protocol.settlement import SettlementLeg, decode_settlement, encode_settlement

__all__ = [
    "BATCH_CONTENT_TYPE",
    "CONTENT_TYPE",
    "PROTOCOL_VERSION",
    "SIGALG",
    "SPECVERSION",
    "Envelope",
    "EnvelopeModel",
    "format_time",
    "sign_message",
]

PROTOCOL_VERSION = "1.0"  # liquidfab's own version, published at /.well-known/liquidfab
SPECVERSION = "1.0"  # the CloudEvents version
SIGALG = "Ed25519"
CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
DATA_CONTENT_TYPE = "application/json"

TYPE_PATTERN = r"^org\.liquidfab\.[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)+$"
DID_PATTERN = r"^did:key:z[1-9A-HJ-NP-Za-km-z]{40,50}$"
TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
_CORE = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
     "dataschema", "data", "sigalg", "signature", "settlement"}
)  # fmt: skip


class EnvelopeModel(BaseModel):
    """The envelope's schema; attributes not listed are extensions, kept and signed.

    Optional attributes default to None only to mean "absent": a null value is refused
    before this model sees it, so the schema declares strings alone.
    """

    model_config = ConfigDict(extra="allow", title="LiquidfabMessage")

    specversion: Literal["1.0"] = Field(description="CloudEvents version.")
    id: str = Field(
        min_length=1,
        max_length=200,
        pattern=_PRINTABLE,
        description="Chosen by the sender, unique per source (UUIDv7 advised); retries reuse it.",
    )
    source: str = Field(pattern=DID_PATTERN, description="The signer's did:key.")
    type: str = Field(
        pattern=TYPE_PATTERN, max_length=200, description="org.liquidfab.<capability>.<verb>"
    )
    time: str = Field(pattern=TIME_PATTERN, description="RFC 3339, with a zone.")
    subject: str = Field(None, min_length=1, max_length=500, pattern=_PRINTABLE)
    datacontenttype: Literal["application/json"] = None
    dataschema: str = Field(None, min_length=1, max_length=500)
    data: Any = Field(None, description="The typed payload of this message type.")
    sigalg: Literal["Ed25519"] = Field(description="Signature algorithm.")
    signature: str = Field(
        pattern=r"^[A-Za-z0-9_-]{85}[AQgw]$",
        description="base64url (no padding) Ed25519 signature of the canonical bytes of "
        "every other attribute.",
    )
    settlement: str = Field(
        None,
        min_length=2,
        description="JSON array of transfer legs (see SettlementLeg), committed with the message.",
    )

    @model_validator(mode="after")
    def _extensions_are_strings(self) -> EnvelopeModel:
        for name, value in (self.model_extra or {}).items():
            if not _EXTENSION_NAME.match(name):
                raise ValueError(
                    f"extension attribute name {name!r} must be 1-20 lowercase letters or digits"
                )
            if not isinstance(value, str):
                raise ValueError(f"extension attribute {name!r} must be a string")
        return self


def format_time(moment: datetime | None = None) -> str:
    """RFC 3339 UTC in whole seconds: the one form CloudEvents SDKs write back unchanged."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    head, _, rest = value.partition(".")
    if rest:  # Python parses at most 6 fraction digits; RFC 3339 allows more.
        digits = re.match(r"[0-9]+", rest)
        assert digits is not None
        value = f"{head}.{digits.group()[:6]}{rest[digits.end() :]}"
    return datetime.fromisoformat(value)


@lru_cache(maxsize=65536)
def _verify_key(did: str) -> VerifyKey:
    return VerifyKey.from_did(did)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _schema_error(e: ValidationError) -> ProtocolError:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    what = f"attribute {where!r}: " if where else ""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "string_pattern_mismatch" and where == "time":
        msg = "must be an RFC 3339 timestamp with a zone, e.g. 2026-11-22T13:44:05Z"
    elif err["type"] == "string_pattern_mismatch" and where == "source":
        msg = "must be the signer's did:key (did:key:z6Mk…)"
    elif err["type"] == "string_pattern_mismatch" and where == "type":
        msg = "must look like org.liquidfab.<capability>.<verb>"
    return ProtocolError("schema-invalid", f"{what}{msg}.", 422)


class Envelope:
    """A validated message; ``attributes`` are exactly what the signer signed."""

    __slots__ = ("__dict__", "attributes")

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.attributes = attributes

    # construction -------------------------------------------------------------

    @classmethod
    def from_dict(cls, obj: Any, limits: Limits = DEFAULT_LIMITS) -> Envelope:
        """Validate a structured-mode message; ProtocolError says what to fix."""
        if not isinstance(obj, dict):
            raise ProtocolError(
                "schema-invalid", "a message must be a JSON object (a CloudEvent).", 422
            )
        null = next((k for k, v in obj.items() if v is None and k != "data"), None)
        if null is not None:
            raise ProtocolError(
                "schema-invalid",
                f"attribute {null!r} is null; leave an attribute out instead of sending null.",
                422,
            )
        if "data_base64" in obj:
            raise ProtocolError(
                "schema-invalid", "data_base64 is not accepted: data must be JSON.", 422
            )
        try:
            EnvelopeModel.model_validate(obj)
        except ValidationError as e:
            raise _schema_error(e) from e
        if len(obj["id"]) > limits.max_id_length:
            raise ProtocolError(
                "schema-invalid", f"attribute 'id' is longer than {limits.max_id_length}.", 422
            )
        if len(obj.get("subject") or "") > limits.max_subject_length:
            raise ProtocolError(
                "schema-invalid",
                f"attribute 'subject' is longer than {limits.max_subject_length}.",
                422,
            )
        if "data" in obj:
            check_depth(obj["data"], limits.max_json_depth)
        env = cls(obj)
        try:
            env.moment  # noqa: B018 - validates the calendar date too
        except ValueError as e:
            raise ProtocolError(
                "schema-invalid", f"attribute 'time': {obj['time']!r} is not a real time.", 422
            ) from e
        if "settlement" in obj:
            env.__dict__["settlement"] = decode_settlement(
                obj["settlement"], limits.max_settlement_legs
            )
        return env

    @classmethod
    def from_binary(
        cls, headers: Mapping[str, str], data: Any, limits: Limits = DEFAULT_LIMITS
    ) -> Envelope:
        """A binary-mode message: attributes in ``ce-`` headers, ``data`` parsed from the body."""
        obj: dict[str, Any] = {}
        for name, value in headers.items():
            key = name.lower()
            if key.startswith("ce-") and len(key) > 3:
                try:
                    obj[key[3:]] = unquote(value, errors="strict")
                except UnicodeDecodeError as e:
                    raise ProtocolError(
                        "malformed",
                        f"header {name} is not percent-encoded UTF-8; encode the attribute "
                        "value as the CloudEvents HTTP binding says.",
                        400,
                    ) from e
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        if content_type is not None:
            obj["datacontenttype"] = content_type.split(";")[0].strip().lower()
        if data is not None:
            obj["data"] = data
        return cls.from_dict(obj, limits)

    # reading ------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def source(self) -> str:
        return self.attributes["source"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def time(self) -> str:
        return self.attributes["time"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")

    @property
    def data(self) -> Any:
        return self.attributes.get("data")

    @cached_property
    def moment(self) -> datetime:
        return _parse_time(self.attributes["time"])

    @cached_property
    def settlement(self) -> list[SettlementLeg]:
        value = self.attributes.get("settlement")
        return decode_settlement(value, DEFAULT_LIMITS.max_settlement_legs) if value else []

    @property
    def extensions(self) -> dict[str, str]:
        """Attributes this code does not know: kept, signed, passed on."""
        return {k: v for k, v in self.attributes.items() if k not in _CORE}

    # signature ----------------------------------------------------------------

    @cached_property
    def signed_bytes(self) -> bytes:
        """RFC 8785 bytes of every attribute but ``signature``: what the key signed."""
        return canonical_bytes({k: v for k, v in self.attributes.items() if k != "signature"})

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the signed bytes: identical content, identical digest."""
        return hashlib.sha256(self.signed_bytes).hexdigest()

    def verify(self) -> bool:
        """True when ``signature`` is the source's Ed25519 signature of the signed bytes."""
        try:
            key = _verify_key(self.source)
        except IdentityError:
            return False
        return key.verify(self.signed_bytes, _unb64url(self.attributes["signature"]))

    # writing ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dict(self.attributes)

    def to_json(self) -> bytes:
        """Structured mode body (canonical JSON, so the bytes are stable)."""
        return canonical_bytes(self.attributes)

    def to_binary(self) -> tuple[dict[str, str], bytes]:
        """Binary mode: ``ce-`` headers (percent-encoded per the HTTP binding) and the body.

        Binary mode cannot say "no datacontenttype" or "data is null", so such a message
        is sent in structured mode instead.
        """
        if "datacontenttype" not in self.attributes or self.attributes.get("data", 0) is None:
            raise ProtocolError(
                "schema-invalid",
                "binary mode needs a datacontenttype and non-null data; send this message "
                "in structured mode.",
                422,
            )
        headers = {"content-type": self.attributes.get("datacontenttype", DATA_CONTENT_TYPE)}
        for name, value in self.attributes.items():
            if name not in ("data", "datacontenttype"):
                headers[f"ce-{name}"] = quote(value, safe="!#$&'()*+,/:;<=>?@[]^_`{|}~-.")
        return headers, canonical_bytes(self.data) if "data" in self.attributes else b""

    def __repr__(self) -> str:
        return f"Envelope({self.type} {self.source[-8:]}/{self.id})"


def sign_message(
    key: SigningKey,
    type: str,
    data: Any = None,
    *,
    subject: str | None = None,
    id: str | None = None,
    time: str | datetime | None = None,
    settlement: list[SettlementLeg] | None = None,
    extensions: Mapping[str, str] | None = None,
) -> Envelope:
    """Build and sign a message from ``key``; the result is ready to send."""
    attributes: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id or uuid7(),
        "source": key.did,
        "type": type,
        "time": time if isinstance(time, str) else format_time(time),
        "datacontenttype": DATA_CONTENT_TYPE,
        "sigalg": SIGALG,
    }
    if subject is not None:
        attributes["subject"] = subject
    if data is not None:
        attributes["data"] = data
    if settlement:
        attributes["settlement"] = encode_settlement(settlement)
    for name, value in (extensions or {}).items():
        if name in _CORE:
            raise ProtocolError("schema-invalid", f"{name!r} is not an extension attribute.", 422)
        attributes[name] = value
    unsigned = Envelope(attributes)
    attributes["signature"] = _b64url(key.sign(unsigned.signed_bytes))
    return Envelope.from_dict(attributes)
