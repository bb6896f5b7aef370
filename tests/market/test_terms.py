"""A subscription keeps the terms it started under and charges only what it should:
one live subscription per device and app, its own mandate, its own model and meter
whatever the listing says later; per-use cancelling ends at once; usage cannot outgrow a
charge; a role may not drop a release; the simulation bills only its own subscription."""

from __future__ import annotations

import time

from market_support import COACH, Market
from test_subscriptions import PRICE, TRIAL, Clock, _send
from test_usage import UNIT, VOICE, _open, _usage

from liquidfab.ledger.messages import MANDATE
from liquidfab.market.billing import run_billing
from liquidfab.market.messages import CANCEL, SUBSCRIBE
from liquidfab.market.publishing import next_role
from liquidfab.market.simulate import simulate_subscription
from liquidfab.protocol import sign_message


def _coach(market: Market, listing=COACH) -> None:
    assert "result" in market.list_app(market.acme, listing)
    assert "result" in market.release(market.acme, listing, "1.0.0", b"coach")


def test_one_live_subscription_per_device_and_app(market, monkeypatch):
    _coach(market, TRIAL)
    _, device = market.device()
    clock = Clock(market, monkeypatch)
    mandate = market.mandate(market.owner, 10 * PRICE)
    _send(market, clock, market.owner, SUBSCRIBE, {"subscription": "s-1", "app": TRIAL["app"],
          "device": device.did, "mandate": mandate})  # fmt: skip
    # during the trial, and later while the entitlement has expired but billing is late
    for day in (3, 15):
        clock.day(day)
        data = {"subscription": f"s-{day}", "app": TRIAL["app"], "device": device.did,
                "mandate": mandate}  # fmt: skip
        body = market.send(sign_message(market.owner, SUBSCRIBE, data, time=clock.at()))
        assert body["code"] == "conflict", body
    owner = market.wallet(market.owner)
    assert run_billing(market.node, clock.us) == {"active": 1}
    assert market.wallet(market.owner) == owner - PRICE  # one period, one subscription


def test_a_subscription_pays_through_its_own_mandate(market):
    _coach(market)
    _, a = market.device("a")
    _, b = market.device("b")
    m1, m2 = market.mandate(market.owner, PRICE), market.mandate(market.owner, PRICE)
    assert "result" in market.subscribe(COACH["app"], a, m1, "s-a")
    assert "result" in market.subscribe(COACH["app"], b, m2, "s-b")
    revoke = sign_message(market.owner, MANDATE, {"action": "revoke", "mandate": m1})
    assert "result" in market.send(revoke)
    later = time.time_ns() // 1000 + 30 * 86_400_000_000 + 3_600_000_000
    market.node.dispatcher.clock = lambda: later / 1_000_000
    outcome = run_billing(market.node, later)
    assert outcome == {"grace": 1, "active": 1}, outcome
    subs = {s["id"]: s for s in market.client.get("/v1/market/subscriptions").json()}
    assert subs["s-a"]["status"] == "grace" and subs["s-b"]["status"] == "active"


def test_a_relisted_app_keeps_its_subscribers_terms(market):
    assert "result" in market.list_app(market.acme, VOICE)
    market.release(market.acme, VOICE, "1.0.0", b"voice")
    _, device = market.device()
    mandate = market.mandate(market.owner, 10**12)
    assert "result" in market.subscribe(VOICE["app"], device, mandate, "s-v")
    now = time.time_ns() // 1000
    _usage(market, device, [{"id": "r1", "quantity": 1000, "at_us": now}])
    # the creator turns the per-use app into a monthly one with a counting meter
    monthly = {**VOICE, "pricing": {"model": "subscription", "amount": "49.9", "period": "month"}}
    assert "result" in market.list_app(market.acme, monthly)
    owner = market.wallet(market.owner)
    assert run_billing(market.node) == {"settled": 1}
    assert market.wallet(market.owner) == owner - 1000 * UNIT  # summed, at the old unit price


def test_cancelling_a_per_use_subscription_ends_it_at_once(market):
    assert "result" in market.list_app(market.acme, VOICE)
    market.release(market.acme, VOICE, "1.0.0", b"voice")
    folder, device = market.device()
    mandate = market.mandate(market.owner, 10**12)
    assert "result" in market.subscribe(VOICE["app"], device, mandate, "s-v")
    now = time.time_ns() // 1000
    _usage(market, device, [{"id": "r1", "quantity": 7, "at_us": now}])
    agent = market.agent(folder)
    agent.poll()
    assert agent.app_enabled(VOICE["app"])
    assert "result" in market.send(sign_message(market.owner, CANCEL, {"subscription": "s-v"}))
    after = _usage(market, device, [{"id": "r2", "quantity": 1, "at_us": now}])
    assert after["code"] == "not-entitled"
    owner = market.wallet(market.owner)
    assert run_billing(market.node) == {"settled": 1}  # what was used before is still paid
    assert market.wallet(market.owner) == owner - 7 * UNIT and _open(market) == 0
    agent.poll()
    assert not agent.app_enabled(VOICE["app"])


def test_usage_that_would_outgrow_one_charge_is_refused(market):
    big = {**VOICE, "app": "@acme-ai/big", "pricing": {**VOICE["pricing"], "amount": "100"}}
    assert "result" in market.list_app(market.acme, big)
    market.release(market.acme, big, "1.0.0", b"big")
    _, device = market.device()
    mandate = market.mandate(market.owner, 10**15)
    assert "result" in market.subscribe(big["app"], device, mandate, "s-big")
    now = time.time_ns() // 1000
    records = [{"id": f"r{i}", "quantity": 10**9, "at_us": now} for i in range(100)]
    message = sign_message(device, "org.liquidfab.market.usage",
                           {"app": big["app"], "records": records})  # fmt: skip
    assert market.node.submit(message).body["code"] == "too-large"
    assert _open(market) == 0


def test_a_role_may_not_drop_an_earlier_release(market):
    _coach(market)
    listing = {**COACH}
    data = b"coach 1.1"
    assert market.upload(data) == 201
    from liquidfab.market.listing_messages import release_custom
    from liquidfab.market.messages import PUBLISH

    role = next_role(None, "@acme-ai/riding-coach/1.1.0", data,
                     release_custom(listing, "1.1.0"), market.acme)  # fmt: skip
    role["signed"]["version"] = 2
    from tuf.api.metadata import Metadata

    from liquidfab.fleet.tuf_keys import KeySigner

    md = Metadata.from_dict(role)
    md.signatures.clear()
    md.sign(KeySigner(market.acme))
    payload = {"app": COACH["app"], "version": "1.1.0", "sha256": __import__("hashlib")
               .sha256(data).hexdigest(), "length": len(data), "role": md.to_dict()}  # fmt: skip
    body = market.send(sign_message(market.acme, PUBLISH, payload))
    assert body["code"] == "release-mismatch" and "drops" in body["detail"], body


def test_the_simulation_bills_only_its_own_subscription(market):
    _coach(market)
    _, device = market.device()
    mandate = market.mandate(market.owner, PRICE)
    assert "result" in market.subscribe(COACH["app"], device, mandate, "s-real")
    run = simulate_subscription(market.node, app=COACH["app"], owner=market.owner,
                                maker=market.maker, months=3, fail_month=None)  # fmt: skip
    assert run.exact and run.charges == 4  # days 0, 30, 60 and 90
    subs = {s["id"]: s for s in market.client.get("/v1/market/subscriptions").json()}
    assert subs["s-real"]["periods_paid"] == 1
    last = next(s for s in subs.values() if s["device"] == run.device)
    assert last["cancel_at_end"] is True
