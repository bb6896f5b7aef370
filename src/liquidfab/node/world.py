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

from liquidfab.errors import LayoutError, LiquidfabError
from liquidfab.factory.model import load_layout
from liquidfab.fleet.service import open_repository
from liquidfab.identity import Keystore
from liquidfab.node.core import Node
from liquidfab.node.world_market import WorldCreator, publish_world_market
from liquidfab.product import load_product, product_from_data
from liquidfab.protocol.participants import Role

__all__ = [
    "World",
    "WorldFactory",
    "WorldParticipant",
    "WorldProduct",
    "WorldProduction",
    "WorldReorder",
    "default_db_url",
    "load_world",
    "open_world_node",
    "publish_world_factory",
    "publish_world_product",
    "repository_folder",
]


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


class WorldProduct(BaseModel):
    """A product file the world publishes, and which participants it names."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="Product file, relative to the world folder.")
    publisher: str = Field(description="Key of the participant that publishes it.")
    suppliers: dict[str, str] = Field(
        default_factory=dict,
        description="Supplier id in the product file -> key of the participant it is.",
    )


class WorldFactory(BaseModel):
    """A factory layout file the world publishes, after its products."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="Layout file, relative to the world folder.")
    publisher: str = Field(description="Key of the participant that publishes it.")


class WorldReorder(BaseModel):
    """When the manufacturer reorders a part, in units' worth of that part."""

    model_config = ConfigDict(extra="forbid")

    point: int = Field(50, ge=0, le=1_000_000, description="Reorder below this many units' worth.")
    lot: int = Field(200, ge=1, le=1_000_000, description="Order at least this many units' worth.")


class WorldProduction(BaseModel):
    """What ``liquidfab produce`` builds in this world, on which line, for whom."""

    model_config = ConfigDict(extra="forbid")

    manufacturer: str = Field(description="Key of the participant that builds.")
    product: str = Field(description="Product file (one of the world's products).")
    factory: str = Field(description="Layout file (one of the world's factories).")
    customers: int = Field(20, ge=1, le=10_000, description="Customer participants to create.")
    windows: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description="option=value -> (p, q): at most p such units in any q consecutive.",
    )
    reorder: WorldReorder = Field(default_factory=WorldReorder)


class World(BaseModel):
    """A world file: a title, a description, the participants, their products and
    factory layouts."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    participants: list[WorldParticipant]
    products: list[WorldProduct] = Field(default_factory=list)
    factories: list[WorldFactory] = Field(default_factory=list)
    production: WorldProduction | None = None
    market: list[WorldCreator] = Field(default_factory=list)

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
    for item in world.products:
        publish_world_product(node, folder, item, keystore)
    for layout in world.factories:
        publish_world_factory(node, folder, layout, keystore)
    node.fleet_repository = open_repository(repository_folder(folder), keystore)
    publish_world_market(node, folder, world.market, keystore)
    node.checkpoint()
    return node


def repository_folder(folder: str | Path) -> Path:
    """Where a world keeps its TUF repository of device software."""
    return Path(folder) / "state" / "tuf"


def publish_world_product(node: Node, folder: Path, item: WorldProduct, keystore: Keystore) -> None:
    """Publish a world's product, bound to the world's own keys.

    The file names its manufacturer and suppliers by did; a world's keys are made on
    its first run, so the file's dids are replaced by those of the participants the
    world names for them, before the definition is signed.
    """
    path = folder / item.file
    product = load_product(path)
    publisher = keystore.get_or_create(item.publisher)
    data = product.document()
    data["manufacturer"] = publisher.did
    known = {s["id"] for s in data.get("suppliers", [])}
    for supplier_id in item.suppliers:
        if supplier_id not in known:
            raise LiquidfabError(f"{path}: the world names an unknown supplier {supplier_id!r}")
    for supplier in data.get("suppliers", []):
        if supplier["id"] in item.suppliers:
            supplier["did"] = keystore.get_or_create(item.suppliers[supplier["id"]]).did
    node.publish_product(publisher, product_from_data(data, file=str(path)))


def publish_world_factory(node: Node, folder: Path, item: WorldFactory, keystore: Keystore) -> None:
    """Publish a world's factory layout, signed by the world's own key for its publisher.

    A layout names its product by a file (``product: product.yaml``); the node knows the
    product by the id and version the world published it under, and that is what the
    signed layout says.
    """
    path = folder / item.file
    try:
        layout = load_layout(path)
    except LayoutError as e:
        raise LiquidfabError(f"the world's layout does not load:\n{e}") from e
    node.publish_factory(keystore.get_or_create(item.publisher), layout)
