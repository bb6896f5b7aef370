"""End to end: a creator lists and publishes an app into their territory, an owner buys
it for a bike, the split lands in three wallets at once, and the device installs the app
through the TUF delegation. Every refusal changes nothing."""

from __future__ import annotations

from market_support import BOOST, COACH, Market, twin_apps

from fleet.fleet_support import PRODUCT
from liquidfab.market import fees
from liquidfab.product import catalog, product_from_data


def _listed(market: Market) -> None:
    assert market.list_app(market.acme, COACH)["result"]["created"] is True
    assert market.list_app(market.trail, BOOST)["result"]["created"] is True


def test_a_one_time_app_is_split_at_sale_and_installed_through_the_delegation(market):
    _listed(market)
    body = market.release(market.trail, BOOST, "1.0.0", b"range boost 1.0.0")
    assert body["result"]["target"] == "@trailworks/range-boost/1.0.0", body
    folder, device = market.device()
    agent = market.agent(folder)
    agent.poll()
    before = (market.wallet(market.owner), market.wallet(market.trail),
              market.wallet(market.maker), market.platform())  # fmt: skip
    bought = market.buy("@trailworks/range-boost", device)["result"]
    price = 19_990_000
    creator, maker, platform = fees.split(fees.DEFAULT, price)
    assert bought["split"] == {"creator": str(creator), "manufacturer": str(maker),
                               "platform": str(platform)}  # fmt: skip
    assert (creator, maker, platform) == (16_991_500, 1_999_000, 999_500)
    assert market.wallet(market.owner) == before[0] - price
    assert market.wallet(market.trail) == before[1] + creator
    assert market.wallet(market.maker) == before[2] + maker
    assert market.platform() == before[3] + platform
    agent.poll()
    assert agent.app_enabled("@trailworks/range-boost")
    installed = folder / "apps" / "trailworks" / "range-boost" / "package"
    assert installed.read_bytes() == b"range boost 1.0.0"
    assert twin_apps(market, device) == {
        "@trailworks/range-boost": {"version": "1.0.0", "enabled": True}
    }
    earned = market.client.get(f"/v1/market/creators/{market.trail.did}/earnings").json()
    assert earned["earned"] == creator and earned["apps"]["@trailworks/range-boost"]["charges"] == 1
    assert market.client.get("/v1/ledger/verify").json()["ok"] is True


def test_a_new_release_reaches_devices_that_own_the_app(market):
    _listed(market)
    market.release(market.trail, BOOST, "1.0.0", b"one")
    folder, device = market.device()
    agent = market.agent(folder)
    assert "result" in market.buy("@trailworks/range-boost", device)
    agent.poll()
    assert market.release(market.trail, BOOST, "1.1.0", b"two")["result"]["role_version"] == 2
    # the license names the newest release; the node bumps the device's licenses marker
    agent.poll()
    assert agent.state.apps["@trailworks/range-boost"]["version"] == "1.1.0"
    assert (folder / "apps" / "trailworks" / "range-boost" / "package").read_bytes() == b"two"


def test_publishing_into_another_territory_is_refused_and_changes_nothing(market):
    _listed(market)
    market.release(market.acme, COACH, "1.0.0", b"coach")
    role = market.role("@acme-ai")
    # trailworks lists and publishes @acme-ai/xx: it is not acme's owner or co-publisher
    intruder = {**COACH, "app": "@acme-ai/xx"}
    assert market.list_app(market.trail, intruder)["code"] == "unauthorized"
    assert market.release(market.trail, COACH, "9.9.9", b"evil")["code"] == "unauthorized"
    assert market.role("@acme-ai") == role
    assert market.client.get("/v1/market/apps/@acme-ai/riding-coach").json()["latest"] == "1.0.0"


def test_bad_purchases_change_nothing(market):
    _listed(market)
    market.release(market.trail, BOOST, "1.0.0", b"boost")
    _, device = market.device()
    owner = market.wallet(market.owner)
    legs = market.quote("@trailworks/range-boost", device)["legs"]
    cheap = [{**leg, "amount": "1"} for leg in legs]
    from liquidfab.protocol import SettlementLeg, uuid7

    def as_legs(items, debit=market.owner.did, flags=True):
        return [SettlementLeg(id=uuid7(), debit_account=f"{debit}/wallet",
                              credit_account=i["credit_account"], ledger="LQD",
                              amount=i["amount"], code="market",
                              flags=i["flags"] if flags else [])
                for i in items]  # fmt: skip

    cases = [
        (market.buy("@trailworks/range-boost", device, legs=[]), "price-mismatch"),
        (market.buy("@trailworks/range-boost", device, legs=as_legs(cheap)), "price-mismatch"),
        (market.buy("@trailworks/range-boost", device, legs=as_legs(legs, flags=False)),
         "price-mismatch"),
        (market.buy("@trailworks/range-boost", device, key=market.maker, legs=[]), "unauthorized"),
        (market.buy("@trailworks/nothing", device, legs=[]), "not-found"),
        (market.buy("@acme-ai/riding-coach", device, legs=[]), "no-release"),
    ]  # fmt: skip
    assert [b.get("code") for b, _ in cases] == [c for _, c in cases]
    assert market.wallet(market.owner) == owner
    assert (
        market.client.get(f"/v1/devices/{device.did}/licenses").json()["signed"]["licenses"] == []
    )


def test_buying_with_insufficient_funds_changes_nothing(market):
    _listed(market)
    expensive = {**BOOST, "app": "@trailworks/turbo", "pricing": {"model": "one-time",
                                                                  "amount": "999999"}}  # fmt: skip
    assert "result" in market.list_app(market.trail, expensive)
    market.release(market.trail, expensive, "1.0.0", b"turbo")
    _, device = market.device()
    before = (market.wallet(market.owner), market.wallet(market.trail), market.platform())
    body = market.buy("@trailworks/turbo", device)
    assert body["code"] == "settlement-failed" and "exceeds" in body["detail"], body
    assert (market.wallet(market.owner), market.wallet(market.trail), market.platform()) == before
    assert (
        market.client.get(f"/v1/devices/{device.did}/licenses").json()["signed"]["licenses"] == []
    )


def test_an_app_for_other_product_versions_is_incompatible_and_changes_nothing(market):
    # the maker publishes version 9.0.0 of the bike; an app made for it alone
    row = market.node.database.read(lambda c: catalog.get_version(c, PRODUCT, market.version))
    definition = {**row["definition"], "version": "9.0.0"}
    market.node.publish_product(market.maker, product_from_data(definition))
    nine = {**BOOST, "app": "@trailworks/nine", "versions": ">=9"}
    assert "result" in market.list_app(market.trail, nine)
    market.release(market.trail, nine, "1.0.0", b"nine")
    _, device = market.device()  # a bike of the current version
    owner = market.wallet(market.owner)
    body = market.buy("@trailworks/nine", device, legs=[])
    assert body["code"] == "incompatible" and ">=9" in body["detail"], body
    assert market.wallet(market.owner) == owner
    assert (
        market.client.get(f"/v1/devices/{device.did}/licenses").json()["signed"]["licenses"] == []
    )


def test_bad_listings_are_refused(market):
    cases = [
        ({**BOOST, "versions": "<0.1"}, "not-found"),  # no published version matches
        ({**BOOST, "versions": "not a spec"}, "malformed"),
        ({**BOOST, "requires": "warp_drive"}, "malformed"),  # no such option
        ({**BOOST, "requires": "battery_wh + 1"}, "malformed"),  # not a condition
        ({**BOOST, "kind": "virus"}, "malformed"),
        ({**BOOST, "app": "@nobody-here/app"}, "not-found"),  # an unclaimed territory
        ({**BOOST, "pricing": {"model": "one-time", "amount": "0"}}, "schema-invalid"),
        ({**BOOST, "pricing": {"model": "subscription", "amount": "1"}}, "schema-invalid"),
    ]
    assert [market.list_app(market.trail, b).get("code") for b, _ in cases] == [c for _, c in cases]
    assert market.client.get("/v1/market/apps").json() == []
    good = {**BOOST, "requires": "battery_wh >= 500"}
    assert market.list_app(market.trail, good)["result"]["created"] is True


def _built_device(market: Market, motor: str, n: int):
    """A device registered from a built unit with ``motor`` (the unit is stored as the
    line would store it: the cheapest valid configuration with that motor)."""
    from sqlalchemy import insert

    from liquidfab.db.tables import units
    from liquidfab.fleet.messages import REGISTER_DEVICE
    from liquidfab.identity import SigningKey
    from liquidfab.production.published import published_product
    from liquidfab.protocol import sign_message

    row = market.node.database.read(lambda c: catalog.get_version(c, PRODUCT, market.version))
    _, configurator = published_product(row)
    choices = configurator.complete({"motor": motor}).resolved.to_dict()["choices"]
    key = SigningKey.generate()
    serial = f"TRAIL-20261124-{n:06d}"
    unit = {"serial": serial, "order_id": f"o-{n}", "code": "TRAIL", "sequence": n,
            "product_id": PRODUCT, "version": market.version, "manufacturer": market.maker.did,
            "customer": market.owner.did, "device_did": key.did, "program_digest": "x",
            "as_built": {"choices": choices}, "built_us": 0}  # fmt: skip
    market.node.database.write(lambda c: c.execute(insert(units), unit))
    data = {"did": key.did, "product": PRODUCT, "version": market.version, "serial": serial}
    assert "result" in market.send(sign_message(market.maker, REGISTER_DEVICE, data))
    return key


def test_what_an_app_requires_is_checked_against_the_unit_as_built(market):
    coach = {**COACH, "app": "@acme-ai/coach", "requires": "mid_drive",
             "pricing": {"model": "one-time", "amount": "1"}}  # fmt: skip
    assert "result" in market.list_app(market.acme, coach)
    market.release(market.acme, coach, "1.0.0", b"coach")
    hub = _built_device(market, "hub-rear-250", 1)
    mid = _built_device(market, "mid-250", 2)
    owner = market.wallet(market.owner)
    body = market.quote("@acme-ai/coach", hub)
    assert body["code"] == "incompatible" and "mid_drive" in body["detail"], body
    assert market.buy("@acme-ai/coach", hub, legs=[])["code"] == "incompatible"
    assert market.wallet(market.owner) == owner
    assert "result" in market.buy("@acme-ai/coach", mid)
    assert market.wallet(market.owner) == owner - 1_000_000
