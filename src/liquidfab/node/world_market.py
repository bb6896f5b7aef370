"""A world's market: the creators it names claim their territories, list their apps and
publish their first versions, through the same signed messages a creator sends.

``world.yaml``::

    market:
      - creator: acme            # a participant's key
        territory: "@acme-ai"
        apps:
          - {listing: apps/riding-coach.yaml, version: 1.0.0, file: apps/riding-coach.json}

Each step is skipped when the store has it already, so ``liquidfab up`` may run again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from liquidfab.errors import LiquidfabError
from liquidfab.identity import Keystore
from liquidfab.market import delegation, listings, territories
from liquidfab.market.messages import CLAIM, LISTING
from liquidfab.market.publishing import publish_message
from liquidfab.protocol import sign_message

__all__ = ["WorldApp", "WorldCreator", "publish_world_market"]


class WorldApp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listing: str = Field(description="The listing file (YAML), relative to the world folder.")
    version: str = Field(description="The version its file is published as.")
    file: str = Field(description="The release's bytes, relative to the world folder.")


class WorldCreator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    creator: str = Field(description="Key of the participant that owns the territory.")
    territory: str = Field(description="@name")
    apps: list[WorldApp] = Field(default_factory=list)


def _read_listing(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise LiquidfabError(f"{path}: not a readable listing: {e}") from e
    if not isinstance(data, dict):
        raise LiquidfabError(f"{path}: a listing is a mapping")
    pricing = data.get("pricing", {})
    if isinstance(pricing, dict) and "amount" in pricing:  # YAML reads 4.99 as a float
        data["pricing"] = {**pricing, "amount": str(pricing["amount"])}
    return data


def publish_world_market(
    node: Any, folder: Path, creators: list[WorldCreator], keystore: Keystore
) -> None:
    """Claim, list and publish what the world's market section names (see the module)."""
    service = node.fleet_repository
    for item in creators:
        key = keystore.get_or_create(item.creator)
        held = node.database.read(lambda c, t=item.territory: territories.get_territory(c, t))
        if held is None:
            node._accepted(sign_message(key, CLAIM, {"territory": item.territory}),
                           f"claiming {item.territory}")  # fmt: skip
        for app in item.apps:
            listing = _read_listing(folder / app.listing)
            name = listing.get("app", "")
            if not name.startswith(f"{item.territory}/"):
                raise LiquidfabError(f"{app.listing}: {name} is not in {item.territory}")
            if node.database.read(lambda c, n=name: listings.get_listing(c, n)) is None:
                node._accepted(sign_message(key, LISTING, listing), f"listing {name}")
            released = node.database.read(lambda c, n=name: listings.releases_of(c, n))
            if any(r["version"] == app.version for r in released):
                continue
            data = (folder / app.file).read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            service.uploads.mkdir(parents=True, exist_ok=True)
            tmp = service.uploads / f".{sha}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, service.uploads / sha)
            role = delegation.role_name(item.territory)
            current = node.database.read(lambda c, r=role: delegation.stored_role(c, r))
            message = publish_message(
                key, listing, app.version, data, current.to_dict() if current else None
            )
            node._accepted(message, f"publishing {name} {app.version}")
