"""Supply negotiated over the protocol: a consumer's reorder policy and suppliers that
answer by themselves.

``SupplierAgent`` is a world supplier's automatic side: it offers its list price for the
parts it sells, finalizes an agreement and ships a lot. ``negotiate`` walks one contract
from ``requested`` to ``completed`` through signed messages submitted to the node, so
every step is checked and settled there exactly as a remote party's would be.
``ReorderPolicy`` says when and how much to ask for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from liquidfab.errors import LiquidfabError
from liquidfab.identity import SigningKey
from liquidfab.production.supply_messages import SUPPLY_REQUEST, SUPPLY_STATUS
from liquidfab.protocol import Envelope, SettlementLeg, sign_message, uuid7
from liquidfab.protocol.dispatcher import Outcome

__all__ = ["ReorderPolicy", "SupplierAgent", "negotiate"]

ESCROW_TIMEOUT = 30 * 24 * 3600


class SupplierAgent:
    """A supplier that answers contracts automatically from a price list (part → price)."""

    def __init__(self, key: SigningKey, prices: Mapping[str, Decimal]) -> None:
        self.key = key
        self.prices = dict(prices)
        self._lots = 0

    @property
    def did(self) -> str:
        return self.key.did

    def offer(self, contract: str, part: str) -> Envelope:
        """Its list price, or a termination for a part it does not sell."""
        if part not in self.prices:
            return self._status(contract, "terminated", note=f"we do not sell {part}")
        return self._status(contract, "offered", unit_price=str(self.prices[part]))

    def finalize(self, contract: str) -> Envelope:
        return self._status(contract, "finalized")

    def ship(self, contract: str, part: str) -> Envelope:
        """Start the delivery: the goods leave in a new lot."""
        self._lots += 1
        digest = hashlib.sha256(f"{self.did}\n{contract}".encode()).hexdigest()[:6].upper()
        return self._status(contract, "started", lot=f"L{self._lots:05d}-{digest}")

    def _status(self, contract: str, state: str, **data: Any) -> Envelope:
        return sign_message(self.key, SUPPLY_STATUS, {"contract": contract, "state": state, **data})


@dataclass(frozen=True)
class ReorderPolicy:
    """Order a part when stock after the coming demand would fall below ``point`` units'
    worth; then ask for at least ``lot`` units' worth (an (s, Q) policy per part)."""

    point: int = 50
    lot: int = 200

    def __post_init__(self) -> None:
        if self.point < 0 or self.lot < 1:
            raise ValueError("a reorder point is >= 0 units and a lot >= 1 unit")

    def quantity(self, per_unit: int, on_hand: int, needed: int) -> int:
        """Thousandths to order now (0: none), given one unit's need, stock and demand."""
        after = on_hand - needed
        if after >= self.point * per_unit:
            return 0
        shortfall = self.point * per_unit - after
        return max(self.lot * per_unit, math.ceil(shortfall))


def negotiate(
    submit: Callable[[Envelope], Outcome],
    consumer: SigningKey,
    agent: SupplierAgent,
    part: str,
    quantity: Decimal,
    *,
    ledger: str = "LQD",
    contract: str | None = None,
) -> dict[str, Any]:
    """Take one contract from request to delivery; the results of its steps by state.

    Raises ``LiquidfabError`` naming the step when the node refuses one, or when the
    supplier terminates instead of offering.
    """
    contract = contract or f"supply-{uuid7()}"
    results: dict[str, Any] = {}

    def send(state: str, message: Envelope) -> dict[str, Any]:
        outcome = submit(message)
        if not outcome.accepted:
            raise LiquidfabError(
                f"supply contract {contract} ({part}): {state} was refused: "
                f"{outcome.body.get('detail')}"
            )
        results[state] = outcome.body["result"]
        return outcome.body["result"]

    request = {
        "contract": contract,
        "supplier": agent.did,
        "part": part,
        "quantity": str(quantity),
        "ledger": ledger,
    }
    send("requested", sign_message(consumer, SUPPLY_REQUEST, request))
    offered = send("offered", agent.offer(contract, part))
    if offered["state"] != "offered":
        raise LiquidfabError(f"supplier {agent.did} does not sell {part}")
    escrow = SettlementLeg(
        id=uuid7(),
        debit_account=f"{consumer.did}/wallet",
        credit_account=f"{agent.did}/wallet",
        ledger=ledger,
        amount=offered["amount"],
        code="supply",
        flags=["pending"],
        timeout_seconds=ESCROW_TIMEOUT,
    )
    agreed = {"contract": contract, "state": "agreed"}
    send("agreed", sign_message(consumer, SUPPLY_STATUS, agreed, settlement=[escrow]))
    send("finalized", agent.finalize(contract))
    send("started", agent.ship(contract, part))
    pay = SettlementLeg(
        id=uuid7(),
        debit_account=escrow.debit_account,
        credit_account=escrow.credit_account,
        ledger=ledger,
        amount=None,
        code="supply",
        flags=["post_pending"],
        pending_id=escrow.id,
    )
    completed = {"contract": contract, "state": "completed"}
    send("completed", sign_message(consumer, SUPPLY_STATUS, completed, settlement=[pay]))
    results["contract"] = contract
    results["amount"] = int(offered["amount"])
    return results
