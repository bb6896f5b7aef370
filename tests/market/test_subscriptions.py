"""Twelve simulated months of a subscription: the node bills each period through the
owner's mandate, a failed charge in month 7 starts the grace period, the entitlement then
lapses and the device disables the app, and re-subscribing restores it. The running
subscription keeps the fee schedule it started under when the operator changes it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from market_support import COACH, DAY_US, Market

from liquidfab.ledger.messages import TRANSFER
from liquidfab.market import fees
from liquidfab.market.billing import run_billing
from liquidfab.market.messages import CANCEL, FEE_SCHEDULE, SUBSCRIBE
from liquidfab.protocol import SettlementLeg, sign_message, uuid7

PRICE = 4_990_000  # 4.99 LQD a month


class Clock:
    """The node's, the license route's and the device's clock, moved by the test."""

    def __init__(self, market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
        self.us = time.time_ns() // 1000
        self.start = self.us
        market.node.dispatcher.clock = lambda: self.us / 1_000_000
        monkeypatch.setattr(market.node, "license_clock", lambda: self.us)

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.us / 1_000_000, UTC)

    def day(self, d: float) -> None:
        self.us = self.start + int(d * DAY_US)


def _send(market: Market, clock: Clock, key, type_: str, data: dict, legs=None) -> dict:
    body = market.send(sign_message(key, type_, data, time=clock.at(), settlement=legs))
    assert "result" in body, body
    return body["result"]


def _move(market: Market, clock: Clock, frm: str, to: str, amount: int) -> None:
    leg = SettlementLeg(id=uuid7(), debit_account=frm, credit_account=to, ledger="LQD",
                        amount=str(amount), code="move")  # fmt: skip
    _send(market, clock, market.owner, TRANSFER, {"memo": "move"}, [leg])


@pytest.fixture
def coach(market: Market):
    assert "result" in market.list_app(market.acme, COACH)
    assert "result" in market.release(market.acme, COACH, "1.0.0", b"riding coach")
    return market


def test_twelve_months_with_a_failed_charge_in_month_seven(coach, monkeypatch):
    market = coach
    folder, device = market.device()
    agent = market.agent(folder)
    clock = Clock(market, monkeypatch)
    operator = market.keystore.get("operator")
    wallet, savings = (
        f"{market.owner.did}/wallet",
        market.node.open_account(market.owner, "savings"),
    )
    mandate = market.mandate(market.owner, PRICE)
    creator_before, maker_before = market.wallet(market.acme), market.wallet(market.maker)
    platform_before = market.platform()
    first = _send(market, clock, market.owner, SUBSCRIBE,
                  {"subscription": "s-1", "app": COACH["app"], "device": device.did,
                   "mandate": mandate})  # fmt: skip
    assert first["fee_version"] == 0
    enabled: dict[int, bool] = {}
    statuses: dict[int, str] = {}
    for day in range(0, 361):
        clock.day(day + 1 / 24)
        if day == 10:  # the operator announces a new split, effective on day 45
            change = {"version": 1, "creator_bp": 8000, "manufacturer_bp": 1200,
                      "platform_bp": 800, "effective_us": clock.start + 45 * DAY_US}  # fmt: skip
            _send(market, clock, operator, FEE_SCHEDULE, change)
        if day == 179:  # the owner's wallet runs dry before month 7's charge
            _move(market, clock, wallet, savings, market.wallet(market.owner) - 1_000_000)
        if day == 190:  # money back, and a new subscription
            _move(market, clock, savings, wallet, market.balance(savings))
            again = _send(market, clock, market.owner, SUBSCRIBE,
                          {"subscription": "s-2", "app": COACH["app"], "device": device.did,
                           "mandate": mandate})  # fmt: skip
            assert again["fee_version"] == 1  # a new subscription: the schedule in force
        run_billing(market.node, clock.us)
        agent.poll(clock.us)
        enabled[day] = agent.app_enabled(COACH["app"])
        subs = market.client.get("/v1/market/subscriptions",
                                 params={"device": device.did}).json()  # fmt: skip
        statuses[day] = "/".join(s["status"] for s in subs)
    # months 1 to 6 paid on time; month 7's charge (day 180) fails: grace for 7 days
    assert statuses[179] == "active" and statuses[180] == "grace" and statuses[186] == "grace"
    assert all(enabled[d] for d in range(0, 187))  # the app keeps working in grace
    assert statuses[187] == "lapsed" and not enabled[187] and not enabled[189]
    assert (
        statuses[190] == "lapsed/active"
        and enabled[190]
        and all(enabled[d] for d in range(190, 361))
    )
    subs = {s["id"]: s for s in market.client.get("/v1/market/subscriptions").json()}
    assert subs["s-1"]["periods_paid"] == 6 and subs["s-1"]["fee_version"] == 0
    assert subs["s-2"]["periods_paid"] == 6 and subs["s-2"]["status"] == "active"
    # the exact split: six charges under version 0 (the running subscription kept it even
    # after version 1 took effect on day 45), six under version 1
    v0 = fees.split(fees.DEFAULT, PRICE)
    v1 = fees.split(fees.FeeSchedule(1, 8000, 1200, 800, 0), PRICE)
    assert market.wallet(market.acme) - creator_before == 6 * v0[0] + 6 * v1[0]
    assert market.wallet(market.maker) - maker_before == 6 * v0[1] + 6 * v1[1]
    assert market.platform() - platform_before == 6 * v0[2] + 6 * v1[2]
    earned = market.client.get(f"/v1/market/creators/{market.acme.did}/earnings").json()
    assert earned["charges"] == 12 and earned["earned"] == 6 * v0[0] + 6 * v1[0]
    assert market.node.ledger.verify().ok


def test_cancelling_ends_the_subscription_at_the_end_of_the_period(coach, monkeypatch):
    market = coach
    folder, device = market.device()
    agent = market.agent(folder)
    clock = Clock(market, monkeypatch)
    mandate = market.mandate(market.owner, PRICE)
    _send(market, clock, market.owner, SUBSCRIBE, {"subscription": "s-1", "app": COACH["app"],
          "device": device.did, "mandate": mandate})  # fmt: skip
    clock.day(3)
    stranger = market.trail
    body = market.send(sign_message(stranger, CANCEL, {"subscription": "s-1"}, time=clock.at()))
    assert body["code"] == "unauthorized"
    ends = _send(market, clock, market.owner, CANCEL, {"subscription": "s-1"})["ends_us"]
    assert ends == clock.start + 30 * DAY_US
    owner = market.wallet(market.owner)
    clock.day(29.9)
    agent.poll(clock.us)
    assert agent.app_enabled(COACH["app"])
    clock.day(30.1)
    assert run_billing(market.node, clock.us) == {"cancelled": 1}
    agent.poll(clock.us)
    assert not agent.app_enabled(COACH["app"])
    assert market.wallet(market.owner) == owner  # nothing charged after cancelling
    clock.day(61)
    assert run_billing(market.node, clock.us) == {}


def test_subscribing_without_a_mandate_or_funds_changes_nothing(coach, monkeypatch):
    market = coach
    _, device = market.device()
    owner = market.wallet(market.owner)
    no_mandate = market.subscribe(COACH["app"], device, str(__import__("uuid").uuid4()))
    assert no_mandate["code"] == "mandate-missing"
    small = market.mandate(market.owner, PRICE - 1)
    assert market.subscribe(COACH["app"], device, small)["code"] == "mandate-missing"
    savings = market.node.open_account(market.owner, "savings")
    clock = Clock(market, monkeypatch)
    _move(market, clock, f"{market.owner.did}/wallet", savings, owner - 100)
    mandate = market.mandate(market.owner, PRICE)
    broke = market.subscribe(COACH["app"], device, mandate)
    assert broke["code"] == "payment-failed", broke
    assert market.client.get("/v1/market/subscriptions").json() == []
    assert market.wallet(market.owner) == 100
    bought = market.buy(COACH["app"], device, legs=[])
    assert bought["code"] == "subscribe"


TRIAL = {**COACH, "app": "@acme-ai/coach-trial",
         "pricing": {"model": "trial-then-paid", "amount": "4.99", "period": "month",
                     "trial_days": 14}}  # fmt: skip


def test_a_trial_then_paid_app_is_free_for_the_trial_then_billed(coach, monkeypatch):
    market = coach
    assert "result" in market.list_app(market.acme, TRIAL)
    market.release(market.acme, TRIAL, "1.0.0", b"coach trial")
    folder, device = market.device()
    agent = market.agent(folder)
    clock = Clock(market, monkeypatch)
    mandate = market.mandate(market.owner, PRICE)
    owner = market.wallet(market.owner)
    started = _send(market, clock, market.owner, SUBSCRIBE, {"subscription": "s-1",
                    "app": TRIAL["app"], "device": device.did, "mandate": mandate})  # fmt: skip
    assert started["model"] == "trial"
    assert started["period_end_us"] == clock.start + 14 * DAY_US
    agent.poll(clock.us)
    assert agent.app_enabled(TRIAL["app"]) and market.wallet(market.owner) == owner
    clock.day(13)
    assert run_billing(market.node, clock.us) == {}  # nothing due in the trial
    clock.day(14.01)
    assert run_billing(market.node, clock.us) == {"active": 1}
    assert market.wallet(market.owner) == owner - PRICE
    agent.poll(clock.us)
    assert agent.app_enabled(TRIAL["app"])
    # a second trial of the same app for the same device is not offered
    market.send(sign_message(market.owner, CANCEL, {"subscription": "s-1"}, time=clock.at()))
    clock.day(44.1)
    assert run_billing(market.node, clock.us) == {"cancelled": 1}
    again = _send(market, clock, market.owner, SUBSCRIBE, {"subscription": "s-2",
                  "app": TRIAL["app"], "device": device.did, "mandate": mandate})  # fmt: skip
    assert again["model"] == "subscription" and market.wallet(market.owner) == owner - 2 * PRICE


def test_subscribing_during_a_bought_trial_ends_the_trial_and_pays(coach, monkeypatch):
    market = coach
    assert "result" in market.list_app(market.acme, TRIAL)
    market.release(market.acme, TRIAL, "1.0.0", b"coach trial")
    _, device = market.device()
    trial = market.buy(TRIAL["app"], device, legs=[])["result"]
    assert trial["model"] == "trial"
    assert market.buy(TRIAL["app"], device, legs=[])["code"] == "conflict"
    owner = market.wallet(market.owner)
    mandate = market.mandate(market.owner, PRICE)
    paid = market.subscribe(TRIAL["app"], device, mandate, "s-1")["result"]
    assert paid["model"] == "subscription" and market.wallet(market.owner) == owner - PRICE
    licenses = market.client.get(f"/v1/devices/{device.did}/licenses").json()
    assert [lic["model"] for lic in licenses["signed"]["licenses"]] == ["subscription"]
