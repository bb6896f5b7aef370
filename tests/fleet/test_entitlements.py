"""Features bought for a device and the licenses the device checks offline: payment in the
purchase message, trial and subscription expiry, offline grace, revocation, and a device
that refuses forged, foreign and replayed license lists (one attack per test)."""

from __future__ import annotations

import json
import time

from fleet_support import Fleet

from liquidfab.fleet.entitlements import signed_licenses
from liquidfab.fleet.messages import ENTITLEMENT, ENTITLEMENT_REVOKE
from liquidfab.identity import SigningKey
from liquidfab.protocol import SettlementLeg, sign_message, uuid7

DAY_US = 86_400_000_000


def _leg(fleet: Fleet, amount: int) -> SettlementLeg:
    return SettlementLeg(
        id=uuid7(),
        debit_account=f"{fleet.owner.did}/wallet",
        credit_account=f"{fleet.maker.did}/wallet",
        ledger="LQD",
        amount=str(amount),
        code="feature",
    )


def _buy(fleet: Fleet, device, feature: str, amount: int | None, key=None, **data) -> dict:
    payload = {"entitlement": f"e-{uuid7()}", "device": device.did, "feature": feature, **data}
    legs = [_leg(fleet, amount)] if amount is not None else None
    return fleet.send(sign_message(key or fleet.owner, ENTITLEMENT, payload, settlement=legs))


def _balance(fleet: Fleet, key) -> int:
    return int(fleet.client.get(f"/v1/ledger/accounts/{key.did}/wallet").json()["balance"])


def _now() -> int:
    return time.time_ns() // 1000


def test_a_one_time_feature_is_paid_in_the_purchase_and_enabled_on_the_device(fleet):
    folder, device = fleet.device()
    agent = fleet.agent(folder)
    agent.poll()
    assert not agent.feature_enabled("range-boost")
    owner, maker = _balance(fleet, fleet.owner), _balance(fleet, fleet.maker)
    bought = _buy(fleet, device, "range-boost", 129_000_000)["result"]
    assert (bought["model"], bought["expires_us"], bought["paid"]) == (
        "one-time",
        None,
        "129000000",
    )
    assert _balance(fleet, fleet.owner) == owner - 129_000_000
    assert _balance(fleet, fleet.maker) == maker + 129_000_000
    agent.poll()
    assert agent.feature_enabled("range-boost")
    assert fleet.twin(device)["reported"]["features"] == ["range-boost"]
    assert fleet.client.get("/v1/ledger/verify").json()["ok"] is True


def test_wrong_payments_and_wrong_buyers_change_nothing(fleet):
    _, device = fleet.device()
    owner = _balance(fleet, fleet.owner)
    cases = [
        (_buy(fleet, device, "range-boost", None), "price-mismatch"),
        (_buy(fleet, device, "range-boost", 100_000_000), "price-mismatch"),
        (_buy(fleet, device, "range-boost", None, key=fleet.maker), "unauthorized"),
        (_buy(fleet, device, "range-boost", 129_000_000, key=fleet.maker), "settlement-failed"),
        (_buy(fleet, device, "anti-theft", None), "included"),
        (_buy(fleet, device, "teleport", None), "not-found"),
        (_buy(fleet, device, "ai-riding-coach", 1), "settlement-unexpected"),  # a free trial
    ]
    assert [body.get("code") for body, _ in cases] == [code for _, code in cases]
    assert _balance(fleet, fleet.owner) == owner
    assert "result" in _buy(fleet, device, "range-boost", 129_000_000)
    assert _buy(fleet, device, "range-boost", 129_000_000)["code"] == "conflict"


def test_trials_and_subscriptions_end_on_the_device_when_they_expire(fleet, monkeypatch):
    folder, device = fleet.device()
    trial = _buy(fleet, device, "ai-riding-coach", None)["result"]
    assert trial["model"] == "trial" and trial["paid"] == "0"
    sub = _buy(fleet, device, "fleet-telemetry", 15_800_000, periods=2)["result"]
    assert sub["model"] == "subscription"
    agent = fleet.agent(folder)
    now = _now()
    agent.poll(now_us=now)
    assert agent.state.features == ["ai-riding-coach", "fleet-telemetry"]
    later = now + 31 * DAY_US  # the trial's 30 days are over, on the node's clock too
    monkeypatch.setattr(fleet.node, "license_clock", lambda: later)
    agent.poll(now_us=later)
    assert agent.state.features == ["fleet-telemetry"]
    assert trial["expires_us"] < now + 31 * DAY_US < sub["expires_us"]


def test_offline_a_device_keeps_its_features_for_the_grace_period_only(fleet):
    folder, device = fleet.device()
    _buy(fleet, device, "range-boost", 129_000_000)
    agent = fleet.agent(folder)
    agent.poll()
    assert agent.feature_enabled("range-boost")
    agent.fetch = lambda path: None  # the node is out of reach from now on
    agent.poll(now_us=_now() + 6 * DAY_US)
    assert agent.feature_enabled("range-boost")
    agent.poll(now_us=_now() + 8 * DAY_US)
    assert not agent.feature_enabled("range-boost")


def test_a_revoked_entitlement_disables_the_feature(fleet):
    folder, device = fleet.device()
    bought = _buy(fleet, device, "range-boost", 129_000_000)["result"]
    agent = fleet.agent(folder)
    agent.poll()
    assert fleet.send(sign_message(fleet.owner, ENTITLEMENT_REVOKE,
                                   {"entitlement": bought["entitlement"], "reason": "x"})
                      )["code"] == "unauthorized"  # fmt: skip
    revoke = {"entitlement": bought["entitlement"], "reason": "chargeback"}
    assert "result" in fleet.send(sign_message(fleet.maker, ENTITLEMENT_REVOKE, revoke))
    assert fleet.send(sign_message(fleet.maker, ENTITLEMENT_REVOKE, revoke | {"reason": "y"})
                      )["code"] == "conflict"  # fmt: skip
    agent.poll()
    assert not agent.feature_enabled("range-boost")


def _serve(agent, envelope) -> None:
    """Stand between the agent and its node: serve ``envelope`` as the license list, and a
    poll answer whose licenses marker moved, so the agent fetches it."""
    real = agent.fetch

    def fetch(path: str) -> bytes | None:
        if path.endswith("/licenses"):
            return json.dumps(envelope).encode()
        if path.endswith("/poll"):
            hint = json.loads(real(path))
            return json.dumps({**hint, "licenses": hint["licenses"] + 1}).encode()
        return real(path)

    agent.fetch = fetch


def test_a_forged_license_list_is_refused_and_enables_nothing(fleet):
    folder, device = fleet.device()
    agent = fleet.agent(folder)
    forged = signed_licenses(
        SigningKey.generate(),
        device.did,
        [
            {
                "id": "e-x",
                "feature": "range-boost",
                "model": "one-time",
                "issued_us": 1,
                "expires_us": None,
            }
        ],
        _now(),
    )
    forged["signed"]["issuer"] = fleet.node.did  # claims to be the node
    _serve(agent, forged)
    agent.poll()
    assert not agent.feature_enabled("range-boost")
    assert agent.state.license_error.startswith("forged")
    assert fleet.twin(device)["reported"]["license_error"].startswith("forged")


def test_a_license_list_for_another_device_is_refused(fleet):
    folder, _ = fleet.device("mine")
    _, other = fleet.device("theirs")
    _buy(fleet, other, "range-boost", 129_000_000)
    theirs = fleet.client.get(f"/v1/devices/{other.did}/licenses").json()
    agent = fleet.agent(folder)
    _serve(agent, theirs)
    agent.poll()
    assert not agent.feature_enabled("range-boost")
    assert agent.state.license_error.startswith("other-device")


def test_an_older_license_list_replayed_is_refused(fleet):
    folder, device = fleet.device()
    bought = _buy(fleet, device, "range-boost", 129_000_000)["result"]
    old = fleet.client.get(f"/v1/devices/{device.did}/licenses").json()
    revoke = {"entitlement": bought["entitlement"], "reason": "refund"}
    fleet.send(sign_message(fleet.maker, ENTITLEMENT_REVOKE, revoke))
    agent = fleet.agent(folder)
    agent.poll()  # the current list: revoked, nothing enabled
    assert not agent.feature_enabled("range-boost")
    _serve(agent, old)  # an attacker replays the list from before the revocation
    agent.poll()
    assert not agent.feature_enabled("range-boost")
    assert agent.state.license_error.startswith("replayed")
