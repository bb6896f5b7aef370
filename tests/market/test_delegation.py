"""Only a territory's keys sign software inside it, and devices check this themselves:
the TUF delegation from the offline targets role to the online market role to each
territory's role, walked by python-tuf on the device. Each test tricks the node into
storing something it must never accept and shows the device refusing it."""

from __future__ import annotations

import hashlib

from market_support import BOOST, Market
from sqlalchemy import insert, update
from tuf.api.metadata import Metadata

from liquidfab.db.tables import entitlements, market_releases
from liquidfab.market.delegation import role_name, store_role
from liquidfab.market.listing_messages import release_custom
from liquidfab.market.publishing import next_role

ACME_BOOST = {**BOOST, "app": "@acme-ai/boost"}


def _bought(market: Market):
    assert "result" in market.list_app(market.acme, ACME_BOOST)
    assert "result" in market.release(market.acme, ACME_BOOST, "1.0.0", b"acme boost")
    folder, device = market.device()
    agent = market.agent(folder)
    assert "result" in market.buy("@acme-ai/boost", device)
    agent.poll()
    assert agent.app_enabled("@acme-ai/boost")
    return folder, device, agent


def _smuggle(market: Market, role: str, signer, version: str, data: bytes) -> str:
    """What a tricked node would do: store a role and a release without any check, then
    mark the device's licenses changed so it fetches them."""
    target = f"@acme-ai/boost/{version}"
    current = market.role("@trailworks" if role.endswith("trailworks") else "@acme-ai")
    custom = release_custom({**ACME_BOOST, "kind": "feature"}, version)
    md = Metadata.from_dict(next_role(current, target, data, custom, signer))
    assert market.upload(data) == 201
    now = __import__("time").time_ns() // 1000

    def write(conn):
        store_role(conn, role, md, now)
        conn.execute(insert(market_releases).values(
            app="@acme-ai/boost", version=version, target=target,
            sha256=hashlib.sha256(data).hexdigest(), length=len(data),
            published_by=signer.did, published_us=now))  # fmt: skip
        conn.execute(update(entitlements).values(changed_us=now))

    market.node.database.write(write)
    market.node.dispatcher.listeners[-1]([("market", "smuggled")])  # the sync runs
    market.node.polls.forget([("device", d) for d in market.node.polls._answers])
    return target


def test_a_release_listed_in_another_territorys_role_is_refused_by_the_device(market):
    folder, device, agent = _bought(market)
    # trailworks' own role, signed by trailworks' key, lists a release of @acme-ai/boost
    target = _smuggle(market, role_name("@trailworks"), market.trail, "6.6.6", b"evil")
    licenses = market.client.get(f"/v1/devices/{device.did}/licenses").json()
    assert licenses["signed"]["licenses"][0]["target"] == target  # the node was fooled
    agent.poll()
    assert "no key of @acme-ai signed" in agent.state.app_errors["@acme-ai/boost"]
    assert agent.state.apps["@acme-ai/boost"]["version"] == "1.0.0"  # the old one runs on
    assert agent.app_enabled("@acme-ai/boost")
    package = folder / "apps" / "acme-ai" / "boost" / "package"
    assert package.read_bytes() == b"acme boost"
    reported = market.twin(device)["reported"]
    assert "@acme-ai/boost" in reported["app_errors"]


def test_a_territorys_role_signed_by_another_creator_is_refused_by_the_device(market):
    folder, _, agent = _bought(market)
    # the node stores @acme-ai's role as trailworks signed it, with a new release
    _smuggle(market, role_name("@acme-ai"), market.trail, "6.6.6", b"evil")
    agent.poll()
    assert "market.acme-ai" in agent.state.app_errors["@acme-ai/boost"]
    assert (folder / "apps" / "acme-ai" / "boost" / "package").read_bytes() == b"acme boost"


def test_the_node_refuses_a_role_that_breaks_the_rules(market):
    assert "result" in market.list_app(market.acme, ACME_BOOST)
    data = b"acme boost"
    assert market.upload(data) == 201
    sha = hashlib.sha256(data).hexdigest()
    custom = release_custom(ACME_BOOST, "1.0.0")
    target = "@acme-ai/boost/1.0.0"

    def publish(role: dict, **over) -> dict:
        from liquidfab.market.messages import PUBLISH
        from liquidfab.protocol import sign_message

        payload = {"app": "@acme-ai/boost", "version": "1.0.0", "sha256": sha,
                   "length": len(data), "role": role, **over}  # fmt: skip
        return market.send(sign_message(over.pop("key", market.acme), PUBLISH, payload))

    by_trail = next_role(None, target, data, custom, market.trail)
    outside = next_role(None, "@trailworks/boost/1.0.0", data, custom, market.acme)
    wrong_bytes = next_role(None, target, b"other bytes", custom, market.acme)
    wrong_custom = next_role(None, target, data, {**custom, "product": "x"}, market.acme)
    two = next_role(next_role(None, "@acme-ai/boost/0.9.0", data, custom, market.acme),
                    target, data, custom, market.acme)  # fmt: skip
    cases = [
        (publish(by_trail), "unauthorized"),
        (publish(outside), "outside-territory"),
        (publish(wrong_bytes), "release-mismatch"),
        (publish(wrong_custom), "release-mismatch"),
        (publish(two), "stale-version"),  # version 2 while the territory holds none
        (publish({"signed": {}}), "malformed"),
        (publish(next_role(None, target, data, custom, market.acme), sha256="0" * 64),
         "not-uploaded"),
        (publish(next_role(None, target, data, custom, market.acme), version="1.0"),
         "release-mismatch"),
    ]  # fmt: skip
    assert [b.get("code") for b, _ in cases] == [c for _, c in cases], cases
    assert market.role("@acme-ai") is None
    good = publish(next_role(None, target, data, custom, market.acme))
    assert good["result"]["role_version"] == 1
    again = publish(next_role(market.role("@acme-ai"), target, data, custom, market.acme))
    assert again["code"] == "conflict"  # a version is released once
