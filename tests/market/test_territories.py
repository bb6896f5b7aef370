"""Territories: the first claim wins, confusable names are refused, a transfer needs
both parties' signatures, and only the owner names co-publishers. Every refusal changes
nothing."""

from __future__ import annotations

import pytest

from liquidfab.market.messages import ACCEPT, CLAIM, PUBLISHERS, TRANSFER
from liquidfab.market.names import name_problem, skeleton
from liquidfab.protocol import CONTENT_TYPE, sign_message


def _send(client, key, type_, data) -> dict:
    message = sign_message(key, type_, data)
    response = client.post(
        "/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
    )
    return response.json()


def _unchanged(node, action) -> dict:
    """Run ``action``; assert it changed no territory; its answer."""
    before = node.database.snapshot()["territories"]
    answer = action()
    assert node.database.snapshot()["territories"] == before
    return answer


def test_the_first_claim_wins(world):
    node, client, keys = world
    acme, other = keys.get("ada"), keys.get("voltwerk")
    assert _send(client, acme, CLAIM, {"territory": "@acme-ai"})["result"] == {
        "territory": "@acme-ai", "owner": acme.did}  # fmt: skip
    taken = _unchanged(node, lambda: _send(client, other, CLAIM, {"territory": "@acme-ai"}))
    assert taken["code"] == "conflict" and acme.did in taken["detail"]
    row = client.get("/v1/territories/@acme-ai").json()
    assert row["owner"] == acme.did and row["publishers"] == [] and row["skeleton"] == "acmeal"
    assert [t["name"] for t in client.get("/v1/territories").json()] == ["@acme-ai"]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("@acmeai", "confusable"),  # a separator dropped
        ("@acme-a1", "confusable"),  # 1 for i
        ("@acrne-ai", "confusable"),  # rn for m
        ("@Acme-AI", "malformed"),  # case: names are lowercase
        ("@\u0430cme-ai", "malformed"),  # a Cyrillic a: other scripts are refused
        ("@acme_ai", "malformed"),
        ("@acme--ai", "malformed"),
        ("acme-ai", "malformed"),
        ("@a", "malformed"),
    ],
)
def test_names_confusable_with_a_claimed_one_are_refused(world, name, code):
    node, client, keys = world
    _send(client, keys.get("ada"), CLAIM, {"territory": "@acme-ai"})
    refused = _unchanged(node, lambda: _send(client, keys.get("voltwerk"), CLAIM,
                                             {"territory": name}))  # fmt: skip
    assert refused["code"] == code, refused
    if code == "confusable":
        assert refused["existing"] == "@acme-ai"


def test_skeletons_fold_what_looks_alike():
    assert skeleton("@acme-ai") == skeleton("@acmeal") == skeleton("@acme-a1")
    assert skeleton("@trailworks") == skeleton("@trai1vvorks")
    assert skeleton("@trailworks") != skeleton("@trail-work")
    assert name_problem("@trailworks") is None
    assert name_problem("@" + "a" * 39) is None  # 2 to 39 characters after the @
    assert name_problem("@" + "a" * 40) is not None


def test_a_transfer_needs_both_signatures(world):
    node, client, keys = world
    owner, buyer, stranger = keys.get("ada"), keys.get("voltwerk"), keys.get("trailcraft")
    _send(client, owner, CLAIM, {"territory": "@trailworks"})
    _send(client, owner, PUBLISHERS, {"territory": "@trailworks", "add": [stranger.did]})
    not_offered = _unchanged(node, lambda: _send(client, buyer, ACCEPT,
                                                 {"territory": "@trailworks"}))  # fmt: skip
    assert not_offered["code"] == "unauthorized"
    by_stranger = _unchanged(node, lambda: _send(client, stranger, TRANSFER, {
        "territory": "@trailworks", "to": stranger.did}))  # fmt: skip
    assert by_stranger["code"] == "unauthorized"
    offered = _send(client, owner, TRANSFER, {"territory": "@trailworks", "to": buyer.did})
    assert offered["result"]["offered_to"] == buyer.did
    wrong = _unchanged(node, lambda: _send(client, stranger, ACCEPT,
                                           {"territory": "@trailworks"}))  # fmt: skip
    assert wrong["code"] == "unauthorized"
    assert client.get("/v1/territories/@trailworks").json()["owner"] == owner.did
    taken = _send(client, buyer, ACCEPT, {"territory": "@trailworks"})["result"]
    assert taken == {"territory": "@trailworks", "owner": buyer.did, "previous": owner.did}
    row = client.get("/v1/territories/@trailworks").json()
    assert row["owner"] == buyer.did and row["offered_to"] is None and row["publishers"] == []
    again = _unchanged(node, lambda: _send(client, buyer, ACCEPT, {"territory": "@trailworks"}))
    assert again["code"] == "unauthorized"  # an acceptance is not replayed into a second one


def test_an_offer_can_be_withdrawn(world):
    node, client, keys = world
    owner, buyer = keys.get("ada"), keys.get("voltwerk")
    _send(client, owner, CLAIM, {"territory": "@trailworks"})
    _send(client, owner, TRANSFER, {"territory": "@trailworks", "to": buyer.did})
    _send(client, owner, TRANSFER, {"territory": "@trailworks", "to": None})
    late = _unchanged(node, lambda: _send(client, buyer, ACCEPT, {"territory": "@trailworks"}))
    assert late["code"] == "unauthorized"


def test_only_the_owner_names_co_publishers(world):
    node, client, keys = world
    owner, helper, stranger = keys.get("ada"), keys.get("voltwerk"), keys.get("trailcraft")
    _send(client, owner, CLAIM, {"territory": "@acme-ai"})
    added = _send(client, owner, PUBLISHERS, {"territory": "@acme-ai", "add": [helper.did]})
    assert added["result"]["publishers"] == [helper.did]
    by_helper = _unchanged(node, lambda: _send(client, helper, PUBLISHERS, {
        "territory": "@acme-ai", "add": [stranger.did]}))  # fmt: skip
    assert by_helper["code"] == "unauthorized"
    nobody = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    unknown = _unchanged(node, lambda: _send(client, owner, PUBLISHERS, {
        "territory": "@acme-ai", "add": [nobody]}))  # fmt: skip
    assert unknown["code"] == "not-found"
    removed = _send(client, owner, PUBLISHERS, {"territory": "@acme-ai", "remove": [helper.did]})
    assert removed["result"]["publishers"] == []


def test_a_replayed_claim_is_the_same_receipt(world):
    _, client, keys = world
    claim = sign_message(keys.get("ada"), CLAIM, {"territory": "@acme-ai"})
    headers = {"content-type": CONTENT_TYPE}
    first = client.post("/v1/messages", content=claim.to_json(), headers=headers)
    again = client.post("/v1/messages", content=claim.to_json(), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["seq"] == first.json()["seq"]
    assert len(client.get("/v1/territories").json()) == 1


def test_an_unknown_territory_is_a_404(world):
    _, client, _ = world
    assert client.get("/v1/territories/@nobody").status_code == 404
