"""Every error liquidfab raises, as one tree.

Callers catch a family, the HTTP layer maps each error's stable ``code`` and
``status`` to RFC 9457 problem+json. A dependency's exception never escapes raw:
it is translated at the boundary and kept as ``__cause__``.

    LiquidfabError
    ├── IdentityError          keys, did:key, keystore
    ├── ProtocolError          a message refused (carries code + HTTP status)
    │   └── Refused            raised by a handler: the message's effects roll back
    ├── DocumentError          a text document (one fault per place) is unusable
    │   ├── ProductError       a product definition or a configuration
    │   └── LayoutError        a factory layout, sweep or simulation request
    └── StoreError             the database could not do what was asked
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DocumentError",
    "IdentityError",
    "LayoutError",
    "LiquidfabError",
    "ProductError",
    "ProtocolError",
    "Refused",
    "StoreError",
]


class LiquidfabError(Exception):
    """Root of every error raised by liquidfab."""


class IdentityError(LiquidfabError):
    """A key, identifier or keystore entry is unusable."""


class DocumentError(LiquidfabError):
    """A document (a product definition, a factory layout) is unusable.

    ``problems`` holds one ``(path, line, message)`` per fault found, so an editor or
    a person can go straight to each; ``file`` names where the text came from.
    """

    def __init__(self, problems: list[tuple[str, int | None, str]], file: str = "<text>") -> None:
        self.problems = list(problems)
        self.file = file
        super().__init__(self.render())

    def render(self) -> str:
        out = []
        for path, line, message in self.problems:
            where = self.file + (f":{line}" if line else "")
            out.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")
        return "\n".join(out)

    def with_file(self, file: str) -> DocumentError:
        return type(self)(self.problems, file)

    def __reduce__(self) -> tuple:
        # rebuilt from its own arguments, so it crosses process boundaries (sweep workers)
        return (type(self), (self.problems, self.file))


class ProductError(DocumentError):
    """A product definition or a configuration is unusable."""


class LayoutError(DocumentError):
    """A factory layout, a sweep or a simulation request is unusable, or a model would
    never finish (deadlock, utilization at or above one)."""


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
