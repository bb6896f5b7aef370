"""``liquidfab schema``: every schema a peer implementer needs, as files."""

from __future__ import annotations

import json
from pathlib import Path

from liquidfab.protocol import EnvelopeModel
from liquidfab.protocol.settlement import SettlementLeg

__all__ = ["write_schemas"]


def _dump(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def write_schemas(out: Path) -> list[Path]:
    """Write envelope, settlement leg, per-type payload schemas and openapi.json into ``out``."""
    from liquidfab.node.app import create_app
    from liquidfab.node.core import build_registry

    out.mkdir(parents=True, exist_ok=True)
    written = [
        _dump(out / "envelope.schema.json", EnvelopeModel.model_json_schema()),
        _dump(out / "settlement-leg.schema.json", SettlementLeg.model_json_schema()),
    ]
    for message_type in build_registry():
        schema = message_type.payload.model_json_schema()
        schema["$id"] = f"urn:liquidfab:schema:{message_type.type}"
        schema["description"] = message_type.summary
        written.append(_dump(out / f"{message_type.type}.schema.json", schema))
    written.append(_dump(out / "openapi.json", create_app(_SchemaOnlyNode()).openapi()))
    return written


class _SchemaOnlyNode:
    """Enough of a node for the app to describe itself without a database."""

    def __init__(self) -> None:
        from liquidfab.node.core import build_registry

        self.registry = build_registry()
