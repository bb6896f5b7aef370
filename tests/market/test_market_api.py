"""The market's reads and uploads, and its writes under replay and concurrency: an upload
whose hash does not match or that is too large is refused and kept nowhere; a replayed
purchase is answered with its first receipt and charged once; two releases racing for
the same territory role cannot both win."""

from __future__ import annotations

import hashlib
import threading

from market_support import BOOST, COACH, Market

from liquidfab.market.messages import BUY
from liquidfab.market.publishing import publish_message
from liquidfab.node import routes_store
from liquidfab.protocol import SettlementLeg, sign_message, uuid7


def test_uploads_must_match_their_hash_and_size(market: Market, monkeypatch):
    data = b"some release bytes"
    sha = hashlib.sha256(data).hexdigest()
    wrong = market.client.put(f"/v1/market/uploads/{'0' * 64}", content=data)
    assert wrong.status_code == 422 and wrong.json()["code"] == "hash-mismatch"
    empty = market.client.put(f"/v1/market/uploads/{sha}", content=b"")
    assert empty.status_code == 422
    monkeypatch.setattr(routes_store, "MAX_UPLOAD_BYTES", 10)
    big = market.client.put(f"/v1/market/uploads/{sha}", content=data)
    assert big.status_code == 413 and big.json()["code"] == "too-large"
    assert not (market.node.fleet_repository.uploads / sha).exists()
    assert market.client.put("/v1/market/uploads/not-a-hash", content=data).status_code == 422
    monkeypatch.undo()
    ok = market.client.put(f"/v1/market/uploads/{sha}", content=data)
    assert ok.status_code == 201 and ok.json() == {"sha256": sha, "length": len(data)}
    assert (market.node.fleet_repository.uploads / sha).read_bytes() == data


def test_a_replayed_purchase_is_charged_once(market: Market):
    assert "result" in market.list_app(market.trail, BOOST)
    market.release(market.trail, BOOST, "1.0.0", b"boost")
    _, device = market.device()
    legs = [SettlementLeg(id=uuid7(), debit_account=f"{market.owner.did}/wallet",
                          credit_account=leg["credit_account"], ledger="LQD",
                          amount=leg["amount"], code="market", flags=leg["flags"])
            for leg in market.quote(BOOST["app"], device)["legs"]]  # fmt: skip
    data = {"purchase": "p-1", "app": BOOST["app"], "device": device.did}
    message = sign_message(market.owner, BUY, data, settlement=legs)
    owner = market.wallet(market.owner)
    first = market.send(message)
    again = market.send(message)
    assert again == first and "result" in first
    assert market.wallet(market.owner) == owner - 19_990_000
    # the same purchase id in a new message is a conflict, not a second sale
    other = sign_message(market.owner, BUY, data, settlement=[
        leg.model_copy(update={"id": uuid7()}) for leg in legs])  # fmt: skip
    assert market.send(other)["code"] == "conflict"
    assert market.wallet(market.owner) == owner - 19_990_000


def test_two_releases_racing_for_one_role_cannot_both_win(market: Market):
    assert "result" in market.list_app(market.acme, COACH)
    listing = {**COACH}
    messages = []
    for version in ("1.0.0", "1.1.0"):
        data = f"coach {version}".encode()
        assert market.upload(data) == 201
        messages.append(publish_message(market.acme, listing, version, data, None))
    outcomes: list = []
    threads = [threading.Thread(target=lambda m=m: outcomes.append(market.node.submit(m)))
               for m in messages]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(o.body.get("code", "ok") for o in outcomes)
    assert codes == ["ok", "stale-version"], [o.body for o in outcomes]
    releases = market.client.get("/v1/market/apps/@acme-ai/riding-coach").json()["releases"]
    assert len(releases) == 1 and market.role("@acme-ai")["signed"]["version"] == 1


def test_the_store_reads(market: Market):
    assert "result" in market.list_app(market.trail, BOOST)
    assert "result" in market.list_app(market.acme, COACH)
    market.release(market.trail, BOOST, "1.0.0", b"boost")
    apps = market.client.get("/v1/market/apps").json()
    assert [a["app"] for a in apps] == ["@acme-ai/riding-coach", "@trailworks/range-boost"]
    assert [a["latest"] for a in apps] == [None, "1.0.0"]
    found = market.client.get("/v1/market/apps", params={"q": "RANGE"}).json()
    assert [a["app"] for a in found] == ["@trailworks/range-boost"]
    assert (
        market.client.get("/v1/market/apps", params={"territory": "@acme-ai"}).json()[0]["title"]
        == COACH["title"]
    )
    missing = market.client.get("/v1/market/apps/@acme-ai/nothing")
    assert missing.status_code == 404
    assert market.client.get("/v1/market/roles/@acme-ai").status_code == 404  # none released
    _, device = market.device()
    quote = market.quote(BOOST["app"], device)
    assert quote["message"] == "org.liquidfab.market.buy" and len(quote["legs"]) == 3
    assert sum(int(leg["amount"]) for leg in quote["legs"]) == 19_990_000
    assert market.quote(COACH["app"], device)["code"] == "no-release"


def test_a_creators_statement_lists_each_charge_as_settled(market: Market):
    assert "result" in market.list_app(market.trail, BOOST)
    market.release(market.trail, BOOST, "1.0.0", b"boost")
    devices = [market.device(f"bike-{i}")[1] for i in range(3)]
    for device in devices:
        assert "result" in market.buy(BOOST["app"], device)
    url = f"/v1/market/creators/{market.trail.did}/statement"
    whole = market.client.get(url).json()
    assert [c["device"] for c in whole["charges"]] == [d.did for d in devices]
    assert whole["totals"] == {"gross": 3 * 19_990_000, "creator_amount": 3 * 16_991_500,
                               "manufacturer_amount": 3 * 1_999_000,
                               "platform_amount": 3 * 999_500}  # fmt: skip
    middle = whole["charges"][1]["at_us"]
    part = market.client.get(url, params={"from_us": middle}).json()
    assert len(part["charges"]) == 2
    assert market.client.get(url, params={"from_us": -1}).status_code == 422


def test_a_statement_range_beyond_the_store_is_refused(market: Market):
    url = f"/v1/market/creators/{market.trail.did}/statement"
    assert market.client.get(url, params={"from_us": 2**63}).status_code == 422
    assert market.client.get(url, params={"to_us": 2**62}).status_code == 200
