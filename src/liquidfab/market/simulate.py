"""Months of a subscription lived through in seconds: the node's clock moves a day at a
time, the node bills, and a real device agent polls (``liquidfab market simulate``).

The owner subscribes a new bike to an app through a mandate. Before the charge of
``fail_month`` their wallet runs dry, so the charge fails: grace, then lapse, the device
disabling the app. A few days later the money is back and the owner subscribes again,
which restores the app. Every day records the subscription's status and whether the app
runs on the device; the end checks the three wallets against the charges and verifies
the ledger. The run writes into the world's store, so ``liquidfab ledger verify`` can
check it again afterwards; it bills only its own subscriptions, and at the end cancels
the last one and revokes its mandate, so nothing charges the owner for it later.
"""

from __future__ import annotations

import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liquidfab.errors import LiquidfabError
from liquidfab.fleet.agent import Agent, provision
from liquidfab.fleet.messages import REGISTER_DEVICE
from liquidfab.identity import SigningKey
from liquidfab.ledger.messages import MANDATE, TRANSFER
from liquidfab.market import fees, listings
from liquidfab.market.billing import run_billing
from liquidfab.market.listings import Pricing
from liquidfab.market.messages import CANCEL, SUBSCRIBE
from liquidfab.market.purchase_messages import GRACE_DAYS
from liquidfab.market.territories import get_territory
from liquidfab.node import create_app
from liquidfab.product import catalog
from liquidfab.protocol import CONTENT_TYPE, SettlementLeg, sign_message, uuid7

__all__ = ["SubscriptionRun", "simulate_subscription"]

DAY_US = 86_400_000_000


@dataclass
class SubscriptionRun:
    """What a simulated subscription came to."""

    app: str
    device: str
    days: int
    status: list[str] = field(default_factory=list)  # per day: the subscriptions' statuses
    enabled: list[bool] = field(default_factory=list)  # per day: the app runs on the device
    charges: int = 0
    charged: int = 0  # base units taken from the owner
    received: dict[str, int] = field(default_factory=dict)  # per wallet: base units gained
    expected: dict[str, int] = field(default_factory=dict)  # per wallet: from the charges
    ledger_ok: bool = False

    @property
    def exact(self) -> bool:
        return self.received == self.expected

    def first(self, status: str) -> int | None:
        return next((d for d, s in enumerate(self.status) if s.endswith(status)), None)


class _Sim:
    def __init__(self, node: Any, start_us: int) -> None:
        self.node = node
        self.us = start_us
        with warnings.catch_warnings():  # the in-process client's own deprecation notice
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient
        self.client = TestClient(create_app(node))

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.us / 1_000_000, UTC)

    def send(self, key: SigningKey, kind: str, data: Any, legs: Any = None) -> dict[str, Any]:
        outcome = self.node.submit(sign_message(key, kind, data, time=self.at(), settlement=legs))
        if not outcome.accepted:
            raise LiquidfabError(f"{kind} was refused: {outcome.body['detail']}")
        return outcome.body["result"]

    def fetch(self, path: str) -> bytes | None:
        response = self.client.get(path)
        return response.content if response.status_code == 200 else None

    def post(self, message: Any) -> dict[str, Any]:
        body = message.to_json()
        headers = {"content-type": CONTENT_TYPE}
        return self.client.post("/v1/messages", content=body, headers=headers).json()

    def balance(self, account: str) -> int:
        return int(self.client.get(f"/v1/ledger/accounts/{account}").json()["balance"])


def simulate_subscription(
    node: Any,
    *,
    app: str,
    owner: SigningKey,
    maker: SigningKey,
    months: int = 12,
    fail_month: int | None = 7,
    folder: Path | None = None,
) -> SubscriptionRun:
    """Live ``months`` of ``owner``'s subscription to ``app`` on a new device (see the
    module); the node's clocks are moved for the run and put back after it."""
    listing = node.database.read(lambda c: listings.get_listing(c, app))
    if listing is None:
        raise LiquidfabError(f"no app {app} is listed")
    pricing = Pricing.model_validate(listing["pricing"])
    if pricing.model != "subscription":
        raise LiquidfabError(f"{app} is not sold by subscription ({pricing.model})")
    clocks = (node.dispatcher.clock, node.license_clock)
    sim = _Sim(node, time.time_ns() // 1000)
    node.dispatcher.clock = lambda: sim.us / 1_000_000
    node.license_clock = lambda: sim.us
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return _run(sim, listing, pricing, owner, maker, months, fail_month,
                        folder or Path(tmp))  # fmt: skip
    finally:
        node.dispatcher.clock, node.license_clock = clocks
        sim.client.close()


def _run(
    sim: _Sim,
    listing: dict[str, Any],
    pricing: Pricing,
    owner: SigningKey,
    maker: SigningKey,
    months: int,
    fail_month: int | None,
    folder: Path,
) -> SubscriptionRun:
    node, app, price = sim.node, listing["app"], pricing.units()
    key = SigningKey.generate()
    version = listing["versions"]
    product = listing["product"]
    latest = [v["version"] for v in node.database.read(lambda c: catalog.versions_of(c, product))]
    chosen = next(v for v in reversed(latest) if listings.spec_matches(version, v))
    sim.send(maker, REGISTER_DEVICE, {"did": key.did, "product": product, "version": chosen,
                                      "owner": owner.did})  # fmt: skip
    provision(folder / "device", device_seed=key.seed, director=node.did, product=product,
              hardware="sim", root=sim.fetch("/tuf/metadata/1.root.json") or b"")  # fmt: skip
    agent = Agent(folder / "device", fetch=sim.fetch, send=sim.post)
    wallet = f"{owner.did}/wallet"
    savings = f"{owner.did}/savings"
    if not node.ledger.lookup_accounts([savings]):
        node.open_account(owner, "savings")
    mandate = str(uuid.uuid4())
    sim.send(owner, MANDATE, {"action": "grant", "mandate": mandate, "account": wallet,
                              "grantee": node.did, "cap": str(price),
                              "period_seconds": pricing.period_seconds})  # fmt: skip
    creator = node.database.read(lambda c: get_territory(c, listing["territory"]))["owner"]
    payees = {"creator": f"{creator}/wallet", "manufacturer": f"{maker.did}/wallet",
              "platform": f"{node.did}/platform"}  # fmt: skip
    before = {role: sim.balance(account) for role, account in payees.items()}
    spent_before = sim.balance(wallet) + sim.balance(savings)
    run = SubscriptionRun(app, key.did, months * 30)
    period_days = pricing.period_seconds // 86_400
    dry = (fail_month - 1) * period_days - 1 if fail_month else None
    back = dry + 1 + GRACE_DAYS + 3 if dry is not None else None
    current = f"s-{uuid7()}"
    sim.send(owner, SUBSCRIBE, {"subscription": current, "app": app,
                                "device": key.did, "mandate": mandate})  # fmt: skip
    start = sim.us
    for day in range(run.days + 1):
        sim.us = start + day * DAY_US + 3_600_000_000
        if day == dry:
            _move(sim, owner, wallet, savings, sim.balance(wallet) - price // 2)
        if day == back:
            _move(sim, owner, savings, wallet, sim.balance(savings))
            current = f"s-{uuid7()}"
            sim.send(owner, SUBSCRIBE, {"subscription": current, "app": app,
                                        "device": key.did, "mandate": mandate})  # fmt: skip
        run_billing(node, sim.us, only=current)  # the store's other subscriptions wait
        agent.poll(sim.us)
        subs = sim.client.get("/v1/market/subscriptions", params={"device": key.did}).json()
        run.status.append("/".join(s["status"] for s in subs))
        run.enabled.append(agent.app_enabled(app))
    subs = sim.client.get("/v1/market/subscriptions", params={"device": key.did}).json()
    run.charges = sum(s["periods_paid"] for s in subs)
    run.charged = spent_before - sim.balance(wallet) - sim.balance(savings)
    run.received = {role: sim.balance(a) - before[role] for role, a in payees.items()}
    run.expected = dict.fromkeys(payees, 0)
    for s in subs:
        schedule = node.database.read(lambda c, v=s["fee_version"]: fees.version(c, v))
        for role, amount in zip(payees, fees.split(schedule, s["price"]), strict=True):
            run.expected[role] += amount * s["periods_paid"]
    # the simulated bike's subscription ends here: nothing charges the owner for it later
    sim.send(owner, CANCEL, {"subscription": current})
    sim.send(owner, MANDATE, {"action": "revoke", "mandate": mandate})
    run.ledger_ok = node.ledger.verify().ok
    return run


def _move(sim: _Sim, owner: SigningKey, frm: str, to: str, amount: int) -> None:
    if amount <= 0:
        return
    leg = SettlementLeg(id=uuid7(), debit_account=frm, credit_account=to, ledger="LQD",
                        amount=str(amount), code="move")  # fmt: skip
    sim.send(owner, TRANSFER, {"memo": "the simulation moves the owner's money"}, [leg])
