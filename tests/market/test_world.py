"""The acceptance run in the example world as `liquidfab up` opens it, on SQLite and on
PostgreSQL: Acme AI has claimed @acme-ai and published @acme-ai/riding-coach, Trailcraft
@trailcraft/range-boost; an owner buys for a bike, the device installs through the
delegation, the three wallets receive exactly the split, and a second creator cannot
publish into @acme-ai, neither at the node nor at the device."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from market_support import copy_world, twin_apps

from fleet.fleet_support import Fleet
from liquidfab.market import fees
from liquidfab.market.listing_messages import release_custom
from liquidfab.market.messages import LISTING, PUBLISH
from liquidfab.market.publishing import next_role
from liquidfab.market.simulate import simulate_subscription
from liquidfab.node import create_app, open_world_node
from liquidfab.protocol import SettlementLeg, sign_message, uuid7


@pytest.fixture
def world_market(tmp_path, database_url):
    folder = copy_world(tmp_path, market=True)
    node = open_world_node(folder, database_url)
    with TestClient(create_app(node)) as client:
        yield Fleet(folder, node, client, tmp_path)
    node.close()


def test_the_example_world_sells_apps_end_to_end(world_market):
    w = world_market
    acme, trail = w.keystore.get("acme"), w.keystore.get("trailcraft")
    apps = {a["app"]: a for a in w.client.get("/v1/market/apps").json()}
    assert apps["@acme-ai/riding-coach"]["latest"] == "1.0.0"
    assert apps["@acme-ai/riding-coach"]["pricing"]["model"] == "subscription"
    assert apps["@trailcraft/range-boost"]["latest"] == "1.0.0"
    assert w.client.get("/v1/territories/@acme-ai").json()["owner"] == acme.did
    # an owner buys the range boost for a bike
    folder, device = w.device()
    agent = w.agent(folder)
    agent.poll()
    quote = w.client.get("/v1/market/apps/@trailcraft/range-boost/quote",
                         params={"device": device.did}).json()  # fmt: skip
    legs = [SettlementLeg(id=uuid7(), debit_account=f"{w.owner.did}/wallet",
                          credit_account=leg["credit_account"], ledger="LQD",
                          amount=leg["amount"], code="market", flags=leg["flags"])
            for leg in quote["legs"]]  # fmt: skip

    def balance(account: str) -> int:
        return int(w.client.get(f"/v1/ledger/accounts/{account}").json()["balance"])

    wallets = [f"{trail.did}/wallet", f"{w.maker.did}/wallet", f"{w.node.did}/platform"]
    before = [balance(a) for a in wallets]
    data = {"purchase": "p-1", "app": "@trailcraft/range-boost", "device": device.did}
    assert "result" in w.send(sign_message(w.owner, "org.liquidfab.market.buy", data,
                                           settlement=legs))  # fmt: skip
    split = fees.split(fees.DEFAULT, 19_990_000)
    assert [balance(a) - b for a, b in zip(wallets, before, strict=True)] == list(split)
    agent.poll()
    assert agent.app_enabled("@trailcraft/range-boost")
    assert twin_apps(w, device)["@trailcraft/range-boost"] == {"version": "1.0.0", "enabled": True}
    # Trailcraft tries to publish @acme-ai/xx: refused at the node …
    intruder = {"app": "@acme-ai/xx", "kind": "feature", "title": "X", "product":
                "com.voltwerk.trail", "pricing": {"model": "free"}}  # fmt: skip
    assert w.send(sign_message(trail, LISTING, intruder))["code"] == "unauthorized"
    bytes_ = b"not acme's"
    sha = hashlib.sha256(bytes_).hexdigest()
    assert w.client.put(f"/v1/market/uploads/{sha}", content=bytes_).status_code == 201
    listing = {**intruder, "app": "@acme-ai/riding-coach"}
    role = next_role(w.client.get("/v1/market/roles/@acme-ai").json(),
                     "@acme-ai/riding-coach/6.6.6", bytes_,
                     release_custom({**listing, "kind": "ai-skill"}, "6.6.6"), trail)  # fmt: skip
    publish = {"app": "@acme-ai/riding-coach", "version": "6.6.6", "sha256": sha,
               "length": len(bytes_), "role": role}  # fmt: skip
    assert w.send(sign_message(trail, PUBLISH, publish))["code"] == "unauthorized"
    assert w.client.get("/v1/market/apps/@acme-ai/riding-coach").json()["latest"] == "1.0.0"
    # … and at the device: tests/market/test_delegation.py stores such a release as a
    # tricked node would, and the device refuses it through the delegation
    assert w.client.get("/v1/ledger/verify").json()["ok"] is True


def test_a_year_of_a_subscription_in_the_example_world(world_market):
    # the same run as `liquidfab market simulate`, on SQLite and on PostgreSQL
    w = world_market
    run = simulate_subscription(w.node, app="@acme-ai/riding-coach", owner=w.owner,
                                maker=w.maker, months=12, fail_month=7)  # fmt: skip
    assert (run.first("grace"), run.first("lapsed")) == (180, 187)
    assert run.enabled[186] and not run.enabled[187] and run.enabled[190]
    assert run.charges == 12 and run.charged == 12 * 4_990_000
    assert run.exact and run.ledger_ok
