"""Every error liquidfab raises, as one tree.

Callers catch a family, the HTTP layer maps each error's stable ``code`` and
``status`` to RFC 9457 problem+json. A dependency's exception never escapes raw:
it is translated at the boundary and kept as ``__cause__``.

    LiquidfabError
    ├── IdentityError          keys, did:key, keystore
    ├── ProtocolError          a message refused (carries code + HTTP status)
    │   └── Refused            raised by a handler: the message's effects roll back
    └── StoreError             the database could not do what was asked
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IdentityError",
    "LiquidfabError",
    "ProtocolError",
    "Refused",
    "StoreError",
]


class LiquidfabError(Exception):
    """Root of every error raised by liquidfab."""


class IdentityError(LiquidfabError):
    """A key, identifier or keystore entry is unusable."""


class StoreError(LiquidfabError):
    """The database refused or failed an operation."""


class ProtocolError(LiquidfabError):
    """A message was refused.

    ``code`` is stable and documented in docs/protocol.md; ``detail`` is one
    sentence that says what is wrong and how to fix it.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        status: int = 400,
        *,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status
        self.title = title or code.replace("-", " ").capitalize()
        self.extra = dict(extra or {})

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """This error as an RFC 9457 problem details object."""
        body: dict[str, Any] = {
            "type": f"urn:liquidfab:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance is not None:
            body["instance"] = instance
        body.update(self.extra)
        return body


class Refused(ProtocolError):
    """A handler refuses a message; everything it wrote is rolled back."""
