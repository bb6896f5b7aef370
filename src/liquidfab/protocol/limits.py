"""Every limit the protocol enforces, in one typed object.

A node refuses what exceeds these before doing any expensive work, and peers
read them from ``/.well-known/liquidfab`` so they can stay inside them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_LIMITS", "Limits"]


class Limits(BaseModel):
    """Protocol limits (sizes in bytes, times in seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_message_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest single message, as encoded on the wire."
    )
    max_batch_messages: int = Field(
        1000, ge=1, description="Most messages in one cloudevents-batch request."
    )
    max_batch_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest batch request body."
    )
    clock_skew_seconds: int = Field(
        300, ge=1, description="How far a message's time may be from the node's clock."
    )
    max_settlement_legs: int = Field(
        16, ge=0, description="Most transfer legs one message's settlement may carry."
    )
    max_id_length: int = Field(200, ge=16, description="Longest message id.")
    max_subject_length: int = Field(500, ge=16, description="Longest subject.")
    max_json_depth: int = Field(32, ge=4, description="Deepest nesting of JSON in a message.")


DEFAULT_LIMITS = Limits()
