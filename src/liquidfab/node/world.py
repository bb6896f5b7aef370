"""An example world: a folder with ``world.yaml`` naming its participants.

``liquidfab up --world DIR`` creates each participant's key in ``DIR/keys`` on
first run and registers it with the node through signed messages, so a fresh
checkout becomes a populated node with one command.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from liquidfab.errors import LiquidfabError
from liquidfab.identity import Keystore
from liquidfab.node.core import Node
from liquidfab.protocol.participants import Role

__all__ = ["World", "WorldParticipant", "default_db_url", "load_world", "open_world_node"]


class WorldParticipant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="Key name in the world's keystore.")
    role: Role
    display_name: str = Field(min_length=1, max_length=200)
    endpoints: list[str] = Field(default_factory=list)
    funds: Decimal = Field(
        Decimal(1000),
        ge=0,
        max_digits=18,
        description="Network tokens minted into the participant's wallet when it is opened.",
    )


class World(BaseModel):
    """A world file: a title, a description and the participants."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    participants: list[WorldParticipant]

    def keystore(self, folder: Path) -> Keystore:
        return Keystore(folder / "keys")

    def operator_keys(self) -> list[str]:
        return [p.key for p in self.participants if p.role is Role.OPERATOR]


def load_world(folder: str | Path) -> World:
    """Read and validate ``folder/world.yaml``."""
    path = Path(folder) / "world.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise LiquidfabError(f"no world.yaml in {folder}: is this a world folder?") from e
    except yaml.YAMLError as e:
        raise LiquidfabError(f"{path} is not valid YAML: {e}") from e
    try:
        return World.model_validate(raw)
    except ValidationError as e:
        raise LiquidfabError(f"{path} is not a valid world: {e}") from e


def default_db_url(folder: str | Path) -> str:
    """Where a world keeps its node's state when no --db is given."""
    return f"sqlite:///{(Path(folder) / 'state' / 'node.db').resolve()}"


def open_world_node(folder: str | Path, db_url: str | None = None) -> Node:
    """Open a node for the world in ``folder`` and register its participants."""
    folder = Path(folder)
    world = load_world(folder)
    keystore = world.keystore(folder)
    operators = [keystore.get_or_create(name).did for name in world.operator_keys()]
    node = Node.open(
        db_url or default_db_url(folder),
        keystore.path,
        operators=operators,
        title=world.name,
        description=world.description,
    )
    minter = keystore.get_or_create(world.operator_keys()[0]) if operators else node.key
    decimals = node.network_ledger().decimals
    for p in world.participants:
        key = keystore.get_or_create(p.key)
        node.register(key, p.role.value, p.display_name, p.endpoints)
        wallet = f"{key.did}/wallet"
        if not node.ledger.lookup_accounts([wallet]):
            node.open_account(key)
            amount = p.funds.scaleb(decimals)
            if amount != amount.to_integral_value():
                raise LiquidfabError(f"{p.key}: funds has more than {decimals} decimals")
            if amount:
                node.mint(minter, wallet, int(amount))
    node.checkpoint()
    return node
