"""Orders as signed messages with escrow, through the node's HTTP API, on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from liquidfab.identity import SigningKey
from liquidfab.ledger.messages import TRANSFER
from liquidfab.product import load_product
from liquidfab.production import compile_program
from liquidfab.production.order_messages import ORDER, ORDER_STATUS
from liquidfab.protocol import SettlementLeg, sign_message, uuid7
from support import built_payload, funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
PRODUCT, VERSION = "org.example.lamp", "1.0.0"
CHOICES = {"shade": "paper", "colour": "white", "dimmer": False, "arm_cm": 20, "watts": 4}
PRICE = 39_000_000  # 39 LQD (base price, no rules apply) at 6 decimals
FUNDS = 100_000_000
PROBLEM = "application/problem+json"


def _refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code, body
    return body


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _wallet(key: SigningKey) -> str:
    return f"{key.did}/wallet"


def _escrow(payer: SigningKey, payee: SigningKey, amount: int = PRICE, **kw) -> SettlementLeg:
    return SettlementLeg(
        id=uuid7(),
        debit_account=kw.pop("debit", _wallet(payer)),
        credit_account=_wallet(payee),
        ledger="LQD",
        amount=str(amount),
        code="order",
        flags=kw.pop("flags", ["pending"]),
        timeout_seconds=kw.pop("timeout_seconds", 30 * 24 * 3600),
        **kw,
    )


def _settle(client, escrow: str, flag: str, amount: int | None = None) -> SettlementLeg:
    """A post or void of the escrow ``escrow``, naming its accounts as the ledger holds them."""
    pending = client.get(f"/v1/ledger/transfers/{escrow}").json()
    return SettlementLeg(
        id=uuid7(),
        debit_account=pending["debit_account_id"],
        credit_account=pending["credit_account_id"],
        ledger="LQD",
        amount=None if amount is None else str(amount),
        code="order",
        flags=[flag],
        pending_id=escrow,
    )


def _account(client, key: SigningKey) -> dict:
    return client.get(f"/v1/ledger/accounts/{_wallet(key)}").json()


def _balances(client, *keys: SigningKey) -> list[tuple[int, int]]:
    """(balance, pending) per key: pending is debits pending minus credits pending."""
    out = []
    for key in keys:
        a = _account(client, key)
        out.append((int(a["balance"]), int(a["debits_pending"]) - int(a["credits_pending"])))
    return out


@pytest.fixture
def world(node, client, operator_key):
    """A published lamp, its maker (empty wallet), a funded customer and a funded stranger."""
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", 0)
    customer = funded(node, operator_key, "owner", "Customer", FUNDS)
    stranger = funded(node, operator_key, "owner", "Stranger", FUNDS)
    node.publish_product(maker, load_product(LAMP))
    return maker, customer, stranger


@pytest.fixture
def unchanged(database):
    holder = {}
    yield lambda: holder.setdefault("before", database.snapshot())
    assert "before" in holder
    assert database.snapshot() == holder["before"]


def _order(customer, maker, order_id: str, *, legs=None, **data):
    payload = {"order": order_id, "product": PRODUCT, "version": VERSION, "choices": CHOICES}
    payload.update(data)
    if legs is None:
        legs = [_escrow(customer, maker)]
    return sign_message(customer, ORDER, payload, settlement=legs or None)


def _status(key, order_id: str, state: str, legs=None, **data):
    return sign_message(
        key, ORDER_STATUS, {"order": order_id, "state": state, **data}, settlement=legs
    )


def _place(client, world, order_id: str = "o-1") -> dict:
    maker, customer, _ = world
    return _ok(post(client, _order(customer, maker, order_id)))["result"]


def _advance(client, maker, order_id: str, *states: str) -> None:
    for state in states:
        extra = built_payload(client, order_id) if state == "built" else {}
        _ok(post(client, _status(maker, order_id, state, **extra)))


def test_the_happy_path_posts_exactly_the_price_to_the_manufacturer(client, world):
    maker, customer, _ = world
    placed = _place(client, world)
    assert placed["state"] == "placed" and placed["manufacturer"] == maker.did
    assert (placed["price"], placed["amount"], placed["ledger"]) == ("39", str(PRICE), "LQD")
    program = compile_program(load_product(LAMP), CHOICES, order_id="o-1")
    assert placed["program_digest"] == program.digest()
    assert _balances(client, customer, maker) == [(FUNDS, PRICE), (0, -PRICE)]

    _advance(client, maker, "o-1", "accepted", "scheduled", "in-production", "built")
    assert _balances(client, customer, maker) == [(FUNDS, PRICE), (0, -PRICE)]
    delivered = _status(
        customer, "o-1", "delivered", [_settle(client, placed["escrow"], "post_pending")]
    )
    receipt = _ok(post(client, delivered))
    assert receipt["result"]["state"] == "delivered"
    assert _balances(client, customer, maker) == [(FUNDS - PRICE, 0), (PRICE, 0)]
    again = post(client, delivered)  # a retry is answered, not applied again
    assert again.status_code == 200 and again.json() == receipt
    assert _balances(client, customer, maker) == [(FUNDS - PRICE, 0), (PRICE, 0)]

    order = client.get("/v1/orders/o-1").json()
    assert order["state"] == "delivered" and order["customer"] == customer.did
    assert order["program_digest"] == program.digest()
    assert order["program"]["steps"][0]["station"] == "assembly"
    history = [(e["state"], e["actor"]) for e in order["history"]]
    assert history == [
        ("placed", customer.did),
        ("accepted", maker.did),
        ("scheduled", maker.did),
        ("in-production", maker.did),
        ("built", maker.did),
        ("delivered", customer.did),
    ]
    assert order["history"][0]["transfer"] == order["pending_transfer"] == placed["escrow"]
    assert [o["id"] for o in client.get("/v1/orders", params={"state": "delivered"}).json()] == [
        "o-1"
    ]
    assert client.get("/v1/orders", params={"state": "placed"}).json() == []
    assert client.get("/v1/ledger/verify").json()["ok"] is True


def test_orders_are_listed_newest_first_and_filtered(client, world):
    maker, customer, stranger = world
    _place(client, world, "o-1")
    _ok(post(client, _order(stranger, maker, "o-2")))
    _advance(client, maker, "o-2", "accepted")
    listed = client.get("/v1/orders").json()
    assert [o["id"] for o in listed] == ["o-2", "o-1"]
    by_customer = client.get("/v1/orders", params={"customer": customer.did}).json()
    assert [o["id"] for o in by_customer] == ["o-1"]
    accepted = client.get("/v1/orders", params={"state": "accepted"}).json()
    assert [(o["id"], o["state"]) for o in accepted] == [("o-2", "accepted")]
    assert client.get("/v1/orders", params={"state": "lost"}).status_code == 422
    _refused(client.get("/v1/orders/nope"), 404, "not-found")


def test_an_invalid_configuration_is_refused_with_its_conflict_and_no_escrow(
    client, world, unchanged
):
    maker, customer, _ = world
    unchanged()
    choices = {**CHOICES, "shade": "glass", "colour": "brass"}
    body = _refused(
        post(client, _order(customer, maker, "o-1", choices=choices)), 422, "configuration-invalid"
    )
    assert "rass" in body["detail"]
    assert body["conflict"]["sentences"]
    assert _balances(client, customer, maker) == [(FUNDS, 0), (0, 0)]


@pytest.mark.parametrize(
    ("choices", "features", "path"),
    [
        ({k: v for k, v in CHOICES.items() if k != "watts"}, [], "watts"),
        ({**CHOICES, "laser": True}, [], "laser"),
        ({**CHOICES, "watts": "4.25"}, [], "watts"),
        (CHOICES, ["circadian"], "features.circadian"),  # needs the dimmer
    ],
)
def test_incomplete_or_unknown_choices_are_refused(
    client, world, unchanged, choices, features, path
):
    maker, customer, _ = world
    unchanged()
    message = _order(customer, maker, "o-1", choices=choices, features=features)
    body = _refused(post(client, message), 422, "configuration-invalid")
    assert path in [p["path"] for p in body["problems"]]


def test_insufficient_funds_refuses_the_order(client, node, operator_key, world, unchanged):
    maker, _, _ = world
    poor = funded(node, operator_key, "owner", "Poor", PRICE - 1)
    unchanged()
    body = _refused(post(client, _order(poor, maker, "o-1")), 409, "settlement-failed")
    assert body["result"] == "exceeds_credits"
    assert client.get("/v1/orders/o-1").status_code == 404


def test_a_wrong_price_is_refused(client, world, unchanged):
    maker, customer, _ = world
    unchanged()
    for amount in (PRICE - 1, PRICE + 1_000_000):
        message = _order(customer, maker, "o-1", legs=[_escrow(customer, maker, amount)])
        body = _refused(post(client, message), 422, "price-mismatch")
        assert body["amount"] == str(PRICE) and body["price"] == "39"


def test_a_dearer_configuration_costs_its_price(client, world):
    maker, customer, _ = world
    choices = {**CHOICES, "shade": "glass", "dimmer": True, "watts": 6, "arm_cm": 40}
    price = (39 + 12 + 9 + 5) * 1_000_000
    legs = [_escrow(customer, maker, price)]
    placed = _ok(post(client, _order(customer, maker, "o-1", choices=choices, legs=legs)))
    assert placed["result"]["price"] == "65"
    assert _balances(client, customer) == [(FUNDS, price)]


def test_an_order_without_escrow_is_refused(client, world, unchanged):
    maker, customer, _ = world
    unchanged()
    body = _refused(post(client, _order(customer, maker, "o-1", legs=[])), 422, "escrow-required")
    assert (body["amount"], body["payee"]) == (str(PRICE), maker.did)
    paid_outright = _escrow(customer, maker, flags=[], timeout_seconds=None)
    message = _order(customer, maker, "o-1", legs=[paid_outright])
    _refused(post(client, message), 422, "escrow-required")
    no_timeout = _escrow(customer, maker, timeout_seconds=None)
    message = _order(customer, maker, "o-1", legs=[no_timeout])
    assert "timeout" in _refused(post(client, message), 422, "escrow-invalid")["detail"]
    two = [_escrow(customer, maker), _escrow(customer, maker, 1)]
    _refused(post(client, _order(customer, maker, "o-1", legs=two)), 422, "escrow-invalid")


def test_the_escrow_must_pay_the_manufacturer_from_the_customer(client, world, unchanged):
    maker, customer, stranger = world
    unchanged()
    to_stranger = _escrow(customer, stranger)
    body = _refused(
        post(client, _order(customer, maker, "o-1", legs=[to_stranger])), 422, "escrow-invalid"
    )
    assert body["payee"] == maker.did
    _refused(  # the ledger refuses to debit someone else's wallet without a mandate
        post(client, _order(customer, maker, "o-1", legs=[_escrow(stranger, maker)])),
        403,
        "settlement-failed",
    )


def test_a_duplicate_order_id_is_refused(client, world):
    maker, customer, stranger = world
    _place(client, world, "o-1")
    before = _balances(client, customer, stranger, maker)
    _refused(post(client, _order(customer, maker, "o-1")), 409, "conflict")
    _refused(post(client, _order(stranger, maker, "o-1")), 409, "conflict")
    assert _balances(client, customer, stranger, maker) == before
    assert len(client.get("/v1/orders").json()) == 1


def test_an_escrow_backs_one_order_only(client, world):
    maker, customer, _ = world
    leg = _escrow(customer, maker)
    _ok(post(client, _order(customer, maker, "o-1", legs=[leg])))
    before = _balances(client, customer, maker)
    # the ledger ties a transfer id to the message that made it
    body = _refused(
        post(client, _order(customer, maker, "o-2", legs=[leg])), 409, "settlement-failed"
    )
    assert body["result"] == "exists_with_different_user_data"
    assert _balances(client, customer, maker) == before
    assert client.get("/v1/orders/o-2").status_code == 404


def test_a_replayed_order_message_is_applied_once(client, world):
    maker, customer, _ = world
    message = _order(customer, maker, "o-1")
    first = _ok(post(client, message))
    again = post(client, message)
    assert again.status_code == 200 and again.json() == first
    assert _balances(client, customer) == [(FUNDS, PRICE)]
    accepted = _status(maker, "o-1", "accepted")
    _ok(post(client, accepted))
    assert post(client, accepted).status_code == 200
    assert [e["state"] for e in client.get("/v1/orders/o-1").json()["history"]] == [
        "placed",
        "accepted",
    ]


@pytest.mark.parametrize(
    ("product", "version"), [(PRODUCT, "9.9.9"), ("org.example.none", "1.0.0")]
)
def test_an_unknown_product_version_is_not_found(client, world, unchanged, product, version):
    maker, customer, _ = world
    unchanged()
    message = _order(customer, maker, "o-1", product=product, version=version)
    assert "GET /v1/products" in _refused(post(client, message), 404, "not-found")["detail"]


def test_out_of_order_transitions_change_nothing(client, world, unchanged):
    maker, customer, _ = world
    placed = _place(client, world)
    unchanged()
    for state in ("scheduled", "in-production", "built"):
        body = _refused(post(client, _status(maker, "o-1", state)), 409, "transition-invalid")
        assert body["state"] == "placed"
    post_leg = [_settle(client, placed["escrow"], "post_pending")]
    _refused(
        post(client, _status(customer, "o-1", "delivered", post_leg)), 409, "transition-invalid"
    )
    _refused(post(client, _status(maker, "nope", "accepted")), 404, "not-found")


def test_only_the_right_signer_moves_each_state(client, world, unchanged):
    maker, customer, stranger = world
    placed = _place(client, world)
    _advance(client, maker, "o-1", "accepted", "scheduled", "in-production", "built")
    unchanged()
    _refused(post(client, _status(customer, "o-1", "accepted")), 403, "unauthorized")
    _refused(post(client, _status(stranger, "o-1", "accepted")), 403, "unauthorized")
    _refused(post(client, _status(stranger, "o-1", "cancel-requested")), 403, "unauthorized")
    post_leg = [_settle(client, placed["escrow"], "post_pending")]
    # the manufacturer cannot confirm delivery: the ledger lets only the payer post
    body = _refused(
        post(client, _status(maker, "o-1", "delivered", post_leg)), 403, "settlement-failed"
    )
    assert body["result"] == "not_authorized"
    assert _balances(client, customer, maker) == [(FUNDS, PRICE), (0, -PRICE)]


def test_delivery_posts_the_whole_escrow_of_this_order(client, world, unchanged):
    maker, customer, stranger = world
    placed = _place(client, world)
    _ok(post(client, _order(stranger, maker, "o-2")))
    other = client.get("/v1/orders/o-2").json()["pending_transfer"]
    _advance(client, maker, "o-1", "accepted", "scheduled", "in-production", "built")
    unchanged()
    _refused(post(client, _status(customer, "o-1", "delivered")), 422, "escrow-invalid")
    part = [_settle(client, placed["escrow"], "post_pending", PRICE // 2)]
    _refused(post(client, _status(customer, "o-1", "delivered", part)), 422, "escrow-invalid")
    wrong = [
        _settle(client, other, "post_pending")
    ]  # not the customer's escrow: the ledger says no
    _refused(post(client, _status(customer, "o-1", "delivered", wrong)), 403, "settlement-failed")
    _refused(post(client, _status(maker, "o-1", "built")), 409, "transition-invalid")


def test_steps_that_move_no_value_carry_no_settlement(client, world, unchanged):
    maker, customer, _ = world
    _place(client, world)
    unchanged()
    pay = SettlementLeg(
        id=uuid7(),
        debit_account=_wallet(maker),
        credit_account=_wallet(customer),
        ledger="LQD",
        amount="0",
        code="order",
    )
    _refused(post(client, _status(maker, "o-1", "accepted", [pay])), 422, "settlement-unexpected")


def test_cancel_before_production_voids_the_escrow(client, world):
    maker, customer, stranger = world
    placed = _place(client, world)
    _advance(client, maker, "o-1", "accepted", "scheduled")
    _ok(post(client, _status(customer, "o-1", "cancel-requested", note="changed my mind")))
    assert client.get("/v1/orders/o-1").json()["state"] == "cancel-requested"
    _refused(post(client, _status(maker, "o-1", "in-production")), 409, "transition-invalid")
    void = [_settle(client, placed["escrow"], "void_pending")]
    # the customer cannot void it (the payee does), nor cancel outright
    _refused(post(client, _status(customer, "o-1", "cancelled", void)), 403, "settlement-failed")
    _refused(post(client, _status(customer, "o-1", "cancelled")), 403, "unauthorized")
    _ok(post(client, _status(maker, "o-1", "cancelled", void)))
    assert _balances(client, customer, maker) == [(FUNDS, 0), (0, 0)]
    order = client.get("/v1/orders/o-1").json()
    assert order["state"] == "cancelled"
    assert [e["state"] for e in order["history"]][-2:] == ["cancel-requested", "cancelled"]
    assert order["history"][-1]["transfer"] == void[0].id
    # the manufacturer may also decline an order outright, voiding its escrow
    _ok(post(client, _order(stranger, maker, "o-2")))
    escrow = client.get("/v1/orders/o-2").json()["pending_transfer"]
    _refused(post(client, _status(maker, "o-2", "cancelled")), 422, "escrow-invalid")
    _ok(post(client, _status(maker, "o-2", "cancelled", [_settle(client, escrow, "void_pending")])))
    assert _balances(client, stranger) == [(FUNDS, 0)]
    _refused(post(client, _status(maker, "o-2", "accepted")), 409, "transition-invalid")
    assert client.get("/v1/ledger/verify").json()["ok"] is True


def test_cancel_after_production_started_is_refused(client, world, unchanged):
    maker, customer, _ = world
    placed = _place(client, world)
    _advance(client, maker, "o-1", "accepted", "scheduled", "in-production")
    unchanged()
    body = _refused(
        post(client, _status(customer, "o-1", "cancel-requested")), 409, "cancel-after-production"
    )
    assert body["state"] == "in-production"
    void = [_settle(client, placed["escrow"], "void_pending")]
    _refused(post(client, _status(maker, "o-1", "cancelled", void)), 409, "cancel-after-production")
    assert _balances(client, customer, maker) == [(FUNDS, PRICE), (0, -PRICE)]


def test_the_escrow_is_the_ledgers_a_plain_transfer_may_not_touch_it_twice(client, world):
    maker, customer, _ = world
    placed = _place(client, world)
    _advance(client, maker, "o-1", "accepted", "scheduled", "in-production", "built")
    legs = [_settle(client, placed["escrow"], "post_pending")]
    _ok(post(client, _status(customer, "o-1", "delivered", legs)))
    again = [_settle(client, placed["escrow"], "post_pending")]
    body = _refused(
        post(client, sign_message(customer, TRANSFER, {}, settlement=again)),
        409,
        "settlement-failed",
    )
    assert body["result"] == "pending_transfer_already_posted"
    assert _balances(client, customer, maker) == [(FUNDS - PRICE, 0), (PRICE, 0)]
