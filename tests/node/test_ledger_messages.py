"""The ledger's message types and settlements through the node's HTTP API, on both stores."""

from __future__ import annotations

import pytest

from liquidfab.identity import SigningKey
from liquidfab.ledger.messages import MANDATE, MINT, OPEN_ACCOUNT, TRANSFER
from liquidfab.protocol import SettlementLeg, sign_message, uuid7
from support import post, register_message

PROBLEM = "application/problem+json"


def _refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code
    return body


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _leg(debit: str, credit: str, amount: int | None, *flags: str, **kw) -> SettlementLeg:
    return SettlementLeg(
        id=kw.pop("id", None) or uuid7(),
        debit_account=debit,
        credit_account=credit,
        ledger="LQD",
        amount=None if amount is None else str(amount),
        code=kw.pop("code", "test.pay"),
        flags=list(flags),
        **kw,
    )


def _balance(client, account: str) -> int:
    return int(client.get(f"/v1/ledger/accounts/{account}").json()["balance"])


@pytest.fixture
def people(client, operator_key):
    """Three registered owners with funded wallets (1,000 base units each), and the operator."""
    assert post(client, register_message(operator_key, role="operator")).status_code == 201
    keys = [SigningKey.generate() for _ in range(3)]
    for key in keys:
        assert post(client, register_message(key)).status_code == 201
        account = {"account": f"{key.did}/wallet", "ledger": "LQD"}
        _ok(post(client, sign_message(key, OPEN_ACCOUNT, account)))
        mint = {"transfer": uuid7(), "account": f"{key.did}/wallet", "ledger": "LQD"}
        _ok(post(client, sign_message(operator_key, MINT, {**mint, "amount": "1000"})))
    return keys


def _wallet(key: SigningKey) -> str:
    return f"{key.did}/wallet"


@pytest.fixture
def snapshot(database):
    return database.snapshot


def test_open_account_is_the_signers_and_idempotent(client, registered):
    mine = {"account": f"{registered.did}/savings", "ledger": "LQD", "history": True}
    first = _ok(post(client, sign_message(registered, OPEN_ACCOUNT, mine)))
    assert first["result"]["result"] == "ok"
    assert first["result"]["account"]["flags"] == ["debits_must_not_exceed_credits", "history"]
    again = _ok(post(client, sign_message(registered, OPEN_ACCOUNT, mine)))
    assert again["result"]["result"] == "exists"
    other = {"account": "did:key:zSomeoneElse/wallet", "ledger": "LQD"}
    _refused(post(client, sign_message(registered, OPEN_ACCOUNT, other)), 403, "unauthorized")
    unknown = {"account": f"{registered.did}/eur", "ledger": "EUR"}
    _refused(post(client, sign_message(registered, OPEN_ACCOUNT, unknown)), 404, "not-found")
    changed = {**mine, "code": "revenue"}
    _refused(post(client, sign_message(registered, OPEN_ACCOUNT, changed)), 409, "conflict")


def test_mint_is_for_operators_and_moves_supply(client, people, operator_key, snapshot):
    summary = client.get("/v1/ledger").json()
    assert summary["ledgers"][0]["supply"] == "3000"
    before = snapshot()
    data = {"transfer": uuid7(), "account": _wallet(people[0]), "ledger": "LQD", "amount": "5"}
    _refused(post(client, sign_message(people[0], MINT, data)), 403, "unauthorized")
    assert snapshot() == before
    _ok(post(client, sign_message(operator_key, MINT, data)))
    assert client.get("/v1/ledger").json()["ledgers"][0]["supply"] == "3005"


def test_three_leg_linked_split_applies_once(client, people, database):
    buyer, creator, maker = people
    platform = SigningKey.generate()
    assert post(client, register_message(platform, role="manufacturer")).status_code == 201
    account = {"account": f"{platform.did}/fees", "ledger": "LQD", "code": "fees"}
    _ok(post(client, sign_message(platform, OPEN_ACCOUNT, account)))
    legs = [
        _leg(_wallet(buyer), _wallet(creator), 85, "linked"),
        _leg(_wallet(buyer), _wallet(maker), 10, "linked"),
        _leg(_wallet(buyer), f"{platform.did}/fees", 5),
    ]
    message = sign_message(buyer, TRANSFER, {"memo": "an app"}, settlement=legs)
    receipt = _ok(post(client, message))
    assert [t["id"] for t in receipt["result"]["transfers"]] == [leg.id for leg in legs]
    retry = post(client, message)
    assert retry.status_code == 200 and retry.json() == receipt
    assert _balance(client, _wallet(buyer)) == 900
    assert _balance(client, _wallet(creator)) == 1085
    assert _balance(client, _wallet(maker)) == 1010
    assert _balance(client, f"{platform.did}/fees") == 5
    carried = client.get(
        "/v1/ledger/transfers", params={"message_source": buyer.did, "message_id": message.id}
    ).json()
    assert [t["id"] for t in carried] == [leg.id for leg in legs]
    assert client.get("/v1/ledger/verify").json()["ok"] is True


def test_a_settlement_that_overdraws_any_leg_changes_nothing(client, people, snapshot):
    buyer, creator, maker = people
    before = snapshot()
    legs = [
        _leg(_wallet(buyer), _wallet(creator), 600),
        _leg(_wallet(buyer), _wallet(maker), 500),  # 1,100 > 1,000
    ]
    update = {"did": buyer.did, "display_name": "Renamed"}
    body = _refused(
        post(client, sign_message(buyer, "org.liquidfab.identity.update", update, settlement=legs)),
        409,
        "settlement-failed",
    )
    assert (body["leg"], body["result"], body["transfer"]) == (1, "exceeds_credits", legs[1].id)
    assert snapshot() == before  # neither the rename nor the first leg


def test_debiting_someone_elses_account_needs_a_mandate(client, people, snapshot):
    payer, merchant, _ = people
    charge = [_leg(_wallet(payer), _wallet(merchant), 30, code="subscription")]
    before = snapshot()
    body = _refused(
        post(client, sign_message(merchant, TRANSFER, {}, settlement=charge)),
        403,
        "settlement-failed",
    )
    assert body["result"] == "not_authorized"
    assert snapshot() == before
    mandate = {
        "action": "grant",
        "mandate": uuid7(),
        "account": _wallet(payer),
        "grantee": merchant.did,
        "cap": "50",
        "period_seconds": 2_592_000,
    }
    _refused(post(client, sign_message(merchant, MANDATE, mandate)), 403, "unauthorized")
    _ok(post(client, sign_message(payer, MANDATE, mandate)))
    _ok(post(client, sign_message(merchant, TRANSFER, {}, settlement=charge)))
    again = [_leg(_wallet(payer), _wallet(merchant), 30, code="subscription")]
    body = _refused(
        post(client, sign_message(merchant, TRANSFER, {}, settlement=again)),
        403,
        "settlement-failed",
    )
    assert "no room" in body["detail"]  # 30 + 30 > 50 this period
    small = [_leg(_wallet(payer), _wallet(merchant), 20, code="subscription")]
    revoke = {"action": "revoke", "mandate": mandate["mandate"]}
    _ok(post(client, sign_message(payer, MANDATE, revoke)))
    _refused(
        post(client, sign_message(merchant, TRANSFER, {}, settlement=small)),
        403,
        "settlement-failed",
    )
    assert _balance(client, _wallet(payer)) == 970


def test_escrow_is_posted_by_the_payer_and_voided_by_the_payee(client, people):
    buyer, seller, stranger = people
    hold = _leg(_wallet(buyer), _wallet(seller), 400, "pending", timeout_seconds=3600)
    _ok(post(client, sign_message(buyer, TRANSFER, {"memo": "order"}, settlement=[hold])))
    account = client.get(f"/v1/ledger/accounts/{_wallet(buyer)}").json()
    assert (account["balance"], account["debits_pending"]) == ("1000", "400")
    post_leg = _leg(_wallet(buyer), _wallet(seller), 300, "post_pending", pending_id=hold.id)
    body = _refused(
        post(client, sign_message(seller, TRANSFER, {}, settlement=[post_leg])),
        403,
        "settlement-failed",
    )
    assert body["result"] == "not_authorized"
    void_leg = _leg(_wallet(buyer), _wallet(seller), None, "void_pending", pending_id=hold.id)
    _refused(
        post(client, sign_message(buyer, TRANSFER, {}, settlement=[void_leg])),
        403,
        "settlement-failed",
    )
    _refused(
        post(client, sign_message(stranger, TRANSFER, {}, settlement=[void_leg])),
        403,
        "settlement-failed",
    )
    _ok(post(client, sign_message(buyer, TRANSFER, {}, settlement=[post_leg])))  # partial: 300
    assert _balance(client, _wallet(buyer)) == 700
    assert _balance(client, _wallet(seller)) == 1300
    late = _leg(_wallet(buyer), _wallet(seller), None, "void_pending", pending_id=hold.id)
    body = _refused(
        post(client, sign_message(seller, TRANSFER, {}, settlement=[late])),
        409,
        "settlement-failed",
    )
    assert body["result"] == "pending_transfer_already_posted"


def test_treasury_legs_are_for_operators(client, people, node, operator_key, snapshot):
    treasury = node.network_ledger().treasury
    before = snapshot()
    steal = [_leg(treasury, _wallet(people[0]), 1_000_000)]
    body = _refused(
        post(client, sign_message(people[0], TRANSFER, {}, settlement=steal)),
        403,
        "settlement-failed",
    )
    assert body["result"] == "not_authorized"
    assert snapshot() == before
    burn = [_leg(_wallet(people[0]), treasury, 10)]
    _refused(
        post(client, sign_message(people[0], TRANSFER, {}, settlement=burn)),
        403,
        "settlement-failed",
    )


def test_a_transfer_id_cannot_be_reused_by_another_message(client, people, snapshot):
    a, b, _ = people
    leg = _leg(_wallet(a), _wallet(b), 10)
    _ok(post(client, sign_message(a, TRANSFER, {}, settlement=[leg])))
    before = snapshot()
    body = _refused(
        post(client, sign_message(a, TRANSFER, {"memo": "again"}, settlement=[leg])),
        409,
        "settlement-failed",
    )
    assert body["result"] == "exists_with_different_user_data"
    assert snapshot() == before


def test_ledger_reads(client, people):
    a, b, _ = people
    _ok(post(client, sign_message(a, TRANSFER, {}, settlement=[_leg(_wallet(a), _wallet(b), 7)])))
    mine = client.get("/v1/ledger/accounts", params={"owner": a.did}).json()
    assert [x["id"] for x in mine] == [_wallet(a)]
    moves = client.get("/v1/ledger/transfers", params={"account": _wallet(a)}).json()
    assert [m["amount"] for m in moves] == ["7", "1000"]  # newest first
    one = client.get(f"/v1/ledger/transfers/{moves[0]['id']}").json()
    assert one == moves[0]
    assert client.get(f"/v1/ledger/transfers/{uuid7()}").status_code == 404
    assert client.get("/v1/ledger/accounts/did:key:zNobody/wallet").status_code == 404
    assert client.get("/v1/ledger/transfers", params={"message_source": "x"}).status_code == 422
    page = client.get("/ledger")
    assert page.status_code == 200 and "The chain and every balance verify" in page.text
