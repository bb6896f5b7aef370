"""A served e-bike world with a creator's territory, helpers to list, publish and buy
apps, and devices that run the real agent: what the market tests share."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import yaml

from fleet.fleet_support import PRODUCT, Fleet
from liquidfab.identity import SigningKey
from liquidfab.market.messages import BUY, CLAIM, LISTING, SUBSCRIBE
from liquidfab.market.publishing import publish_message
from liquidfab.protocol import SettlementLeg, sign_message, uuid7

DAY_US = 86_400_000_000
COACH = {
    "app": "@acme-ai/riding-coach",
    "kind": "ai-skill",
    "title": "AI riding coach",
    "summary": "Coaches your cadence and assist on the go.",
    "product": PRODUCT,
    "versions": ">=1.0",
    "pricing": {"model": "subscription", "amount": "4.99", "period": "month"},
}
BOOST = {
    "app": "@trailworks/range-boost",
    "kind": "feature",
    "title": "Range boost",
    "summary": "An assist map tuned for range.",
    "product": PRODUCT,
    "versions": "*",
    "pricing": {"model": "one-time", "amount": "19.99"},
}


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ebike"


def copy_world(tmp_path: Path, *, market: bool) -> Path:
    """A copy of the e-bike world; without its market section unless ``market``, so a
    test claims and publishes what it needs itself."""
    folder = tmp_path / "ebike"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("keys", "state"))
    if not market:
        path = folder / "world.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.pop("market", None)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


class Market(Fleet):
    """The fleet helpers plus two creators, each with a territory."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.acme = self._creator("acme", "@acme-ai")
        self.trail = self._creator("trailworks", "@trailworks")

    def _creator(self, name: str, territory: str) -> SigningKey:
        key = self.keystore.get_or_create(f"creator-{name}")
        self.node.register(key, "creator", name)
        self.node.open_account(key)
        assert "result" in self.send(sign_message(key, CLAIM, {"territory": territory}))
        return key

    def list_app(self, key: SigningKey, listing: dict) -> dict:
        return self.send(sign_message(key, LISTING, listing))

    def upload(self, data: bytes) -> int:
        sha = hashlib.sha256(data).hexdigest()
        return self.client.put(f"/v1/market/uploads/{sha}", content=data).status_code

    def role(self, territory: str) -> dict | None:
        r = self.client.get(f"/v1/market/roles/{territory}")
        return r.json() if r.status_code == 200 else None

    def release(self, key: SigningKey, listing: dict, version: str, data: bytes) -> dict:
        assert self.upload(data) == 201
        from liquidfab.market.delegation import territory_of

        current = self.role(territory_of(listing["app"]))
        return self.send(publish_message(key, listing, version, data, current))

    def balance(self, account: str) -> int:
        return int(self.client.get(f"/v1/ledger/accounts/{account}").json()["balance"])

    def wallet(self, key: SigningKey) -> int:
        return self.balance(f"{key.did}/wallet")

    def platform(self) -> int:
        return self.balance(f"{self.node.did}/platform")

    def quote(self, app: str, device: SigningKey) -> dict:
        return self.client.get(f"/v1/market/apps/{app}/quote", params={"device": device.did}).json()

    def buy(self, app: str, device: SigningKey, key: SigningKey | None = None, legs=None) -> dict:
        key = key or self.owner
        if legs is None:
            legs = [
                SettlementLeg(id=uuid7(), debit_account=f"{key.did}/wallet",
                              credit_account=leg["credit_account"], ledger="LQD",
                              amount=leg["amount"], code="market", flags=leg["flags"])
                for leg in self.quote(app, device).get("legs", [])
            ]  # fmt: skip
        data = {"purchase": f"p-{uuid7()}", "app": app, "device": device.did}
        return self.send(sign_message(key, BUY, data, settlement=legs or None))

    def mandate(self, key: SigningKey, cap: int, period_seconds: int = 30 * 86_400) -> str:
        from liquidfab.ledger.messages import MANDATE

        mandate = str(__import__("uuid").uuid4())
        data = {
            "action": "grant",
            "mandate": mandate,
            "account": f"{key.did}/wallet",
            "grantee": self.node.did,
            "cap": str(cap),
            "period_seconds": period_seconds,
        }
        assert "result" in self.send(sign_message(key, MANDATE, data))
        return mandate

    def subscribe(self, app: str, device: SigningKey, mandate: str, sub: str | None = None,
                  key: SigningKey | None = None) -> dict:  # fmt: skip
        data = {"subscription": sub or f"s-{uuid7()}", "app": app, "device": device.did,
                "mandate": mandate}  # fmt: skip
        return self.send(sign_message(key or self.owner, SUBSCRIBE, data))


def twin_apps(market: Market, device: SigningKey) -> dict:
    return market.twin(device)["reported"].get("apps", {})


def dump(body: dict) -> str:
    return json.dumps(body, indent=1)


def tmp_folder(market: Market, name: str) -> Path:
    return market.tmp / name
