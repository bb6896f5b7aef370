"""The node: one database, one registry, one dispatcher, and the node's own key.

Capabilities contribute message types to ``build_registry``; the HTTP app, the
CLI and tests all drive the same ``Node``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from liquidfab.db import Database
from liquidfab.db import participants as directory
from liquidfab.errors import LiquidfabError
from liquidfab.factory.messages import PUBLISH as PUBLISH_LAYOUT
from liquidfab.factory.messages import add_factory_types, publishable_document
from liquidfab.factory.model import Layout
from liquidfab.fleet.messages import add_fleet_types
from liquidfab.fleet.poll import DEFAULT_SLEEP_SECONDS, PollBoard
from liquidfab.fleet.service import RepositoryService
from liquidfab.identity import Keystore, SigningKey
from liquidfab.ledger import Ledger, LedgerInfo
from liquidfab.ledger.messages import MINT, OPEN_ACCOUNT, add_ledger_types, apply_settlement
from liquidfab.ledger.service import maybe_checkpoint
from liquidfab.market.messages import add_market_types
from liquidfab.market.purchases import PLATFORM_ACCOUNT, platform_account
from liquidfab.market.sync import MarketSync
from liquidfab.node.factories import FactoryShelf
from liquidfab.node.products import Shelf
from liquidfab.product import Product
from liquidfab.product.messages import PUBLISH, add_product_types
from liquidfab.production.order_messages import add_production_types
from liquidfab.production.supply_messages import add_supply_types
from liquidfab.protocol import DEFAULT_LIMITS, Context, Limits, Registry, sign_message, uuid7
from liquidfab.protocol.dispatcher import Dispatcher, NodeSettings, Outcome
from liquidfab.protocol.participants import REGISTER, add_participant_types

__all__ = ["NETWORK_TOKEN", "NODE_KEY_NAME", "Node", "build_registry"]

NODE_KEY_NAME = "node"
NETWORK_TOKEN = ("LQD", 6)  # the network token: name and decimals
CHECKPOINT_EVERY = 1000  # ledger batches between the node's signed checkpoints


def build_registry() -> Registry:
    """Every message type this node serves."""
    registry = Registry()
    add_participant_types(registry)
    add_ledger_types(registry)
    add_product_types(registry)
    add_factory_types(registry)
    add_production_types(registry)
    add_supply_types(registry)
    add_fleet_types(registry)
    add_market_types(registry)
    return registry


class Node:
    """A running liquidfab node (without its HTTP server)."""

    def __init__(
        self,
        database: Database,
        key: SigningKey,
        *,
        registry: Registry | None = None,
        limits: Limits = DEFAULT_LIMITS,
        operators: Iterable[str] = (),
        title: str = "liquidfab node",
        description: str = "",
        poll_seconds: int = DEFAULT_SLEEP_SECONDS,
    ) -> None:
        self.database = database
        self.key = key
        self.registry = registry or build_registry()
        self.limits = limits
        self.title = title
        self.description = description
        self.settings = NodeSettings(node_did=key.did, operators=frozenset(operators))
        self.dispatcher = Dispatcher(
            database, self.registry, limits=limits, node=self.settings, settle=self._settle
        )
        # The ledger API shares the dispatcher's writer: one writer per database.
        self.ledger = Ledger(database, signer=key, writer=self.dispatcher._writer)
        self.ledger.define_ledger(*NETWORK_TOKEN, treasury_owner=key.did)
        self.products = Shelf(database)
        self.factories = FactoryShelf(database)
        # the TUF repository of device software, when the node keeps one (a world does)
        self._repository: RepositoryService | None = None
        self.market_sync: MarketSync | None = None
        # the moment licenses are signed as of: the wall clock, unless a simulation or a
        # test moves it (with the dispatcher's clock, to live through months at once)
        self.license_clock: Callable[[], int] = lambda: time.time_ns() // 1000
        # devices' poll answers, forgotten as commits touch them
        self.polls = PollBoard(database, poll_seconds)
        self.dispatcher.listeners.append(self.polls.forget)

    @property
    def fleet_repository(self) -> RepositoryService | None:
        return self._repository

    @fleet_repository.setter
    def fleet_repository(self, service: RepositoryService | None) -> None:
        """Keep ``service`` and tell handlers where the market's uploads wait; then bring
        the repository's market roles up to the store's, after every commit too."""
        self._repository = service
        uploads = service.uploads if service is not None else None
        self.settings = replace(self.settings, uploads=uploads)
        self.dispatcher.node = self.settings
        if service is not None and service.market_key is not None:
            sync = MarketSync(self.database, service)
            self.dispatcher.listeners.append(sync.on_commit)
            sync.sync()
            self.market_sync = sync  # the billing loop re-signs the market role with it

    def _settle(self, ctx: Context) -> list[dict[str, Any]]:
        applied = apply_settlement(ctx)
        maybe_checkpoint(ctx.conn, self.key, CHECKPOINT_EVERY, ctx.now_us)
        return applied

    @classmethod
    def open(
        cls,
        db_url: str,
        keystore: str | Path,
        *,
        limits: Limits = DEFAULT_LIMITS,
        operators: Iterable[str] = (),
        title: str = "liquidfab node",
        description: str = "",
    ) -> Node:
        """Open (and migrate) the database, load or create the node key, register the node."""
        database = Database.open(db_url)
        key = Keystore(keystore).get_or_create(NODE_KEY_NAME)
        node = cls(
            database, key, limits=limits, operators=operators, title=title, description=description
        )
        node.register(key, "node", title)
        platform = platform_account(key.did)  # the market's platform share lands here
        if not node.ledger.lookup_accounts([platform]):
            node.open_account(key, PLATFORM_ACCOUNT)
        return node

    @property
    def did(self) -> str:
        return self.key.did

    def submit(self, message: Any) -> Outcome:
        return self.dispatcher.submit(message)

    def is_registered(self, did: str) -> bool:
        return self.database.read(lambda c: directory.get_participant(c, did)) is not None

    def register(
        self, key: SigningKey, role: str, display_name: str, endpoints: list[str] | None = None
    ) -> Outcome | None:
        """Register ``key`` through a signed message, as any peer would; None if known."""
        if self.is_registered(key.did):
            return None
        message = sign_message(
            key,
            REGISTER,
            {
                "did": key.did,
                "role": role,
                "display_name": display_name,
                "endpoints": endpoints or [],
            },
        )
        return self._accepted(message, f"registering {display_name}")

    def network_ledger(self) -> LedgerInfo:
        name = NETWORK_TOKEN[0]
        return next(i for i in self.ledger.ledgers() if i.name == name)

    def open_account(
        self, key: SigningKey, name: str = "wallet", ledger: str = NETWORK_TOKEN[0]
    ) -> str:
        """Open ``key``'s account ``name`` through a signed message; its id."""
        account = f"{key.did}/{name}"
        self._accepted(
            sign_message(key, OPEN_ACCOUNT, {"account": account, "ledger": ledger}),
            f"opening {account}",
        )
        return account

    def mint(self, operator: SigningKey, account: str, amount: int) -> str:
        """Issue ``amount`` base units of the network token into ``account``; the transfer id."""
        transfer = uuid7()
        data = {
            "transfer": transfer,
            "account": account,
            "ledger": NETWORK_TOKEN[0],
            "amount": str(amount),
        }
        self._accepted(sign_message(operator, MINT, data), f"minting into {account}")
        return transfer

    def publish_product(self, key: SigningKey, product: Product) -> dict[str, Any]:
        """Publish ``product`` signed by ``key`` (its manufacturer); the node's result.

        Publishing the very same definition again is answered with ``result: exists``.
        """
        message = sign_message(key, PUBLISH, {"definition": product.document()})
        outcome = self._accepted(message, f"publishing {product.id}@{product.version}")
        return outcome.body["result"]

    def publish_factory(self, key: SigningKey, layout: Layout) -> dict[str, Any]:
        """Publish ``layout`` signed by ``key``; the node's result.

        The layout's product, when it was compiled with one, is named as the published
        ``id@version`` (publish the product first). Publishing the very same layout
        again is answered with ``result: exists``.
        """
        message = sign_message(key, PUBLISH_LAYOUT, {"layout": publishable_document(layout)})
        outcome = self._accepted(message, f"publishing layout {layout.id}@{layout.version}")
        return outcome.body["result"]

    def _accepted(self, message: Any, what: str) -> Outcome:
        outcome = self.submit(message)
        if not outcome.accepted:
            raise LiquidfabError(f"{what} was refused: {outcome.body['detail']}")
        return outcome

    def checkpoint(self) -> None:
        """Sign the ledger's chain head, if it moved since the last checkpoint."""
        self.ledger.checkpoint()

    def close(self) -> None:
        self.checkpoint()
        self.dispatcher.close()
        self.database.close()
