"""``liquidfab market`` against a copy of the e-bike world's node, served over real HTTP
in this process (``browser_support.serve_world``, as the order CLI's tests do), with the
market helpers (``Market``) reaching the same node through an HTTP client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
import yaml
from market_support import BOOST, COACH, Market
from typer.testing import CliRunner

from browser_support import EXAMPLE_WORLD, serve_world
from liquidfab.cli import app
from liquidfab.ledger import mandates
from liquidfab.market import fees

runner = CliRunner()
PRICE = 19_990_000  # BOOST, in base units
MONTH = 4_990_000  # COACH, a month


@pytest.fixture
def market(tmp_path) -> Iterator[Market]:
    """The world served without its market section (as ``conftest.served``), so each
    test claims and publishes what it needs through ``Market``."""
    source = tmp_path / "source" / EXAMPLE_WORLD.name
    shutil.copytree(EXAMPLE_WORLD, source, ignore=shutil.ignore_patterns("keys", "state"))
    config = yaml.safe_load((source / "world.yaml").read_text(encoding="utf-8"))
    config.pop("market", None)
    (source / "world.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with (
        serve_world(source, tmp_path / "served") as world,
        httpx.Client(base_url=world.url) as client,
    ):
        yield Market(world.folder, world.node, client, tmp_path)


def invoke(market: Market, *args: str):
    """The command with the served node and the world's keystore."""
    extra = ["--node", str(market.client.base_url)]
    if "--key" in args:
        extra += ["-k", str(market.folder / "keys")]
    return runner.invoke(app, ["market", *args, *extra], env={"COLUMNS": "250"})


def test_claim_and_a_confusable_claim_is_refused_clearly(market):
    ada = market.owner
    claimed = invoke(market, "claim", "@ada-apps", "--key", "ada")
    assert claimed.exit_code == 0, claimed.output
    assert f"claimed @ada-apps for {ada.did}" in claimed.output
    assert market.client.get("/v1/territories/@ada-apps").json()["owner"] == ada.did

    twin = invoke(market, "claim", "@ada-app5", "--key", "creator-trailworks")
    assert twin.exit_code == 2, twin.output
    assert "error: confusable: @ada-app5 could be mistaken for @ada-apps" in twin.output
    assert market.client.get("/v1/territories/@ada-app5").status_code == 404
    unknown_key = invoke(market, "claim", "@nobody", "--key", "nobody")
    assert unknown_key.exit_code == 1 and "error:" in unknown_key.output


def test_publish_from_a_listing_file_then_list_it(market):
    listing, artifact = market.tmp / "boost.yaml", market.tmp / "boost-1.0.0.bin"
    listing.write_text(yaml.safe_dump(BOOST), encoding="utf-8")
    artifact.write_bytes(b"range boost 1.0.0")
    args = ["publish", "--key", "creator-trailworks", "--listing", str(listing)]

    first = invoke(market, *args, "--version", "1.0.0", "--file", str(artifact))
    assert first.exit_code == 0, first.output
    assert "listed @trailworks/range-boost" in first.output
    assert "published @trailworks/range-boost/1.0.0: 17 bytes" in first.output
    assert "@trailworks role version 1" in first.output
    artifact.write_bytes(b"range boost 1.1.0")
    second = invoke(market, *args, "--version", "1.1.0", "--file", str(artifact))
    assert second.exit_code == 0, second.output
    assert "updated @trailworks/range-boost" in second.output
    assert "role version 2" in second.output
    assert market.role("@trailworks")["signed"]["version"] == 2

    listed = invoke(market, "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "@trailworks/range-boost" in line)
    for cell in ("Range boost", "feature", "19.99 LQD", "1.1.0"):
        assert cell in row, listed.output
    assert "1 app" in listed.output
    elsewhere = invoke(market, "list", "--territory", "@acme-ai")
    assert "range-boost" not in elsewhere.output and "0 apps" in elsewhere.output
    found = invoke(market, "list", "-q", "assist map")
    assert "@trailworks/range-boost" in found.output

    intruder = invoke(market, "publish", "--key", "creator-acme", "--listing", str(listing),
                      "--version", "9.9.9", "--file", str(artifact))  # fmt: skip
    assert intruder.exit_code == 2 and "unauthorized" in intruder.output
    assert market.role("@trailworks")["signed"]["version"] == 2


def test_buy_moves_the_split_into_three_wallets(market):
    market.list_app(market.trail, BOOST)
    market.release(market.trail, BOOST, "1.0.0", b"range boost")
    _, device = market.device()
    before = (market.wallet(market.owner), market.wallet(market.trail),
              market.wallet(market.maker), market.platform())  # fmt: skip

    bought = invoke(market, "buy", "--app", "@trailworks/range-boost", "--device", device.did,
                    "--key", "ada")  # fmt: skip
    assert bought.exit_code == 0, bought.output
    creator, maker, platform = fees.split(fees.DEFAULT, PRICE)
    assert "bought @trailworks/range-boost" in bought.output and "19.99 LQD" in bought.output
    assert "creator 16.9915 LQD, manufacturer 1.999 LQD, platform 0.9995 LQD" in bought.output
    assert market.wallet(market.owner) == before[0] - PRICE
    assert market.wallet(market.trail) == before[1] + creator
    assert market.wallet(market.maker) == before[2] + maker
    assert market.platform() == before[3] + platform

    again = invoke(market, "buy", "--app", "@trailworks/range-boost", "--device", device.did,
                   "--key", "ada")  # fmt: skip
    assert again.exit_code == 2 and "conflict: the device holds" in again.output
    assert market.wallet(market.owner) == before[0] - PRICE
    assert market.client.get("/v1/ledger/verify").json()["ok"] is True


def test_buy_points_a_subscription_app_to_subscribe(market):
    market.list_app(market.acme, COACH)
    market.release(market.acme, COACH, "1.0.0", b"coach")
    _, device = market.device()
    owner = market.wallet(market.owner)
    wrong = invoke(market, "buy", "--app", "@acme-ai/riding-coach", "--device", device.did,
                   "--key", "ada")  # fmt: skip
    assert wrong.exit_code == 1 and "liquidfab market subscribe" in wrong.output
    not_an_app = invoke(market, "buy", "--app", "riding-coach", "--device", device.did,
                        "--key", "ada")  # fmt: skip
    assert not_an_app.exit_code == 1 and "@territory/app" in not_an_app.output
    assert market.wallet(market.owner) == owner


def test_subscribe_then_cancel(market):
    market.list_app(market.acme, COACH)
    market.release(market.acme, COACH, "1.0.0", b"coach")
    _, device = market.device()
    owner, acme = market.wallet(market.owner), market.wallet(market.acme)

    subscribed = invoke(market, "subscribe", "--app", "@acme-ai/riding-coach",
                        "--device", device.did, "--key", "ada")  # fmt: skip
    assert subscribed.exit_code == 0, subscribed.output
    (sub,) = market.client.get("/v1/market/subscriptions", params={"device": device.did}).json()
    started = f"subscription {sub['id']} to @acme-ai/riding-coach started (subscription)"
    assert started in subscribed.output
    assert "up to 4.99 LQD every 30 days" in subscribed.output
    assert sub["status"] == "active" and sub["periods_paid"] == 1 and sub["price"] == MONTH
    assert market.wallet(market.owner) == owner - MONTH
    assert market.wallet(market.acme) == acme + fees.split(fees.DEFAULT, MONTH)[0]
    twice = invoke(market, "subscribe", "--app", "@acme-ai/riding-coach",
                   "--device", device.did, "--key", "ada")  # fmt: skip
    assert twice.exit_code == 2 and "conflict: the device is subscribed" in twice.output
    wallet = f"{market.owner.did}/wallet"
    granted = market.node.database.read(lambda c: mandates.mandates_of(c, wallet))
    # the refused subscription's mandate is revoked again; the first one stays live
    assert [m["id"] for m in granted if not m["revoked"]] == [sub["mandate"]]
    assert market.wallet(market.owner) == owner - MONTH

    cancelled = invoke(market, "cancel", "--subscription", sub["id"], "--key", "ada")
    assert cancelled.exit_code == 0, cancelled.output
    assert f"subscription {sub['id']} cancelled; it ends" in cancelled.output
    (sub,) = market.client.get("/v1/market/subscriptions", params={"device": device.did}).json()
    assert sub["cancel_at_end"] is True
    twice = invoke(market, "cancel", "--subscription", sub["id"], "--key", "ada")
    assert twice.exit_code == 2 and "is ending already" in twice.output
    stranger = invoke(market, "cancel", "--subscription", sub["id"], "--key", "creator-acme")
    assert stranger.exit_code == 2 and "unauthorized" in stranger.output


def test_earnings_prints_the_creators_total(market):
    market.list_app(market.trail, BOOST)
    market.release(market.trail, BOOST, "1.0.0", b"range boost")
    _, device = market.device()
    empty = invoke(market, "earnings", "--key", "creator-trailworks")
    assert empty.exit_code == 0 and "earned 0 LQD from 0 charges" in empty.output
    assert "result" in market.buy("@trailworks/range-boost", device)

    by_key = invoke(market, "earnings", "--key", "creator-trailworks")
    assert by_key.exit_code == 0, by_key.output
    assert f"{market.trail.did} earned 16.9915 LQD from 1 charge" in by_key.output
    row = next(line for line in by_key.output.splitlines() if "@trailworks/range-boost" in line)
    assert "19.99 LQD" in row and "16.9915 LQD" in row
    by_did = invoke(market, "earnings", "--creator", market.trail.did)
    assert by_did.exit_code == 0 and "earned 16.9915 LQD" in by_did.output
    neither = invoke(market, "earnings")
    assert neither.exit_code == 1 and "--creator" in neither.output


def test_a_per_use_app_needs_a_cap(market):
    pricing = {"model": "per-use", "amount": "0.05", "meter": {"unit": "minute"}}
    voice = {**COACH, "app": "@acme-ai/voice", "pricing": pricing}
    assert "result" in market.list_app(market.acme, voice)
    market.release(market.acme, voice, "1.0.0", b"voice")
    _, device = market.device()
    owner = market.wallet(market.owner)
    args = ["subscribe", "--app", "@acme-ai/voice", "--device", device.did, "--key", "ada"]

    uncapped = invoke(market, *args)
    assert uncapped.exit_code == 1 and "--cap" in uncapped.output
    capped = invoke(market, *args, "--cap", "12.5")
    assert capped.exit_code == 0, capped.output
    assert "(per-use)" in capped.output and "up to 12.5 LQD every 30 days" in capped.output
    (sub,) = market.client.get("/v1/market/subscriptions", params={"device": device.did}).json()
    mandate = market.node.database.read(lambda c: mandates.get_mandate(c, sub["mandate"]))
    assert int(mandate["cap"]) == 12_500_000
    assert market.wallet(market.owner) == owner  # charged as it is used, not up front
    listed = invoke(market, "list", "--territory", "@acme-ai")
    assert "0.05 LQD per minute" in listed.output
