"""product.retire through the node: a retired version takes no new orders, and nothing else
changes (its definition, and the orders already placed for it, stay), on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from liquidfab.identity import SigningKey
from liquidfab.product import load_product
from liquidfab.product.messages import PUBLISH, RETIRE
from liquidfab.production.order_messages import ORDER, ORDER_STATUS
from liquidfab.protocol import SettlementLeg, sign_message, uuid7
from support import built_payload, funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
PRODUCT = "org.example.lamp"
CHOICES = {"shade": "paper", "colour": "white", "dimmer": False, "arm_cm": 20, "watts": 4}
PRICE = 39_000_000  # 39 LQD at 6 decimals, in both versions
FUNDS = 100_000_000


def _refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _retire(key: SigningKey, version: str, product: str = PRODUCT, **data):
    return sign_message(key, RETIRE, {"product": product, "version": version, **data})


def _escrow(customer: SigningKey, maker: SigningKey) -> SettlementLeg:
    return SettlementLeg(
        id=uuid7(),
        debit_account=f"{customer.did}/wallet",
        credit_account=f"{maker.did}/wallet",
        ledger="LQD",
        amount=str(PRICE),
        code="order",
        flags=["pending"],
        timeout_seconds=30 * 24 * 3600,
    )


def _order(customer: SigningKey, maker: SigningKey, order_id: str, version: str):
    payload = {"order": order_id, "product": PRODUCT, "version": version, "choices": CHOICES}
    return sign_message(customer, ORDER, payload, settlement=[_escrow(customer, maker)])


def _status(key: SigningKey, order_id: str, state: str, legs=None, **data):
    payload = {"order": order_id, "state": state, **data}
    return sign_message(key, ORDER_STATUS, payload, settlement=legs)


def _balances(client, *keys: SigningKey) -> list[tuple[int, int]]:
    """(balance, pending) per key: pending is debits pending minus credits pending."""
    out = []
    for key in keys:
        a = client.get(f"/v1/ledger/accounts/{key.did}/wallet").json()
        out.append((int(a["balance"]), int(a["debits_pending"]) - int(a["credits_pending"])))
    return out


def _retired(client) -> dict[str, bool]:
    versions = client.get(f"/v1/products/{PRODUCT}").json()["versions"]
    return {v["version"]: v["retired"] for v in versions}


@pytest.fixture
def world(node, client, operator_key):
    """The lamp published as 1.0.0 and 1.1.0 (same price), its maker, a funded customer and
    a registered stranger."""
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", 0)
    customer = funded(node, operator_key, "owner", "Customer", FUNDS)
    stranger = funded(node, operator_key, "manufacturer", "Stranger", 0)
    definition = load_product(LAMP).document()
    assert definition["version"] == "1.0.0"
    _ok(post(client, sign_message(maker, PUBLISH, {"definition": definition})))
    newer = {**definition, "version": "1.1.0"}
    _ok(post(client, sign_message(maker, PUBLISH, {"definition": newer})))
    return maker, customer, stranger


def test_retiring_marks_the_version_and_keeps_its_definition(client, world):
    maker, _, _ = world
    message = _retire(maker, "1.0.0", note="the paper shade is discontinued")
    receipt = _ok(post(client, message))
    assert receipt["result"] == {"product": PRODUCT, "version": "1.0.0", "retired": True}
    assert _retired(client) == {"1.0.0": True, "1.1.0": False}
    version = client.get(f"/v1/products/{PRODUCT}/1.0.0").json()
    assert version["retired"] is True
    assert version["retired_by"] == f"{maker.did} {message.id}"
    assert version["definition"] == load_product(LAMP).document()
    fresh = client.get(f"/v1/products/{PRODUCT}/1.1.0").json()
    assert (fresh["retired"], fresh["retired_us"], fresh["retired_by"]) == (False, None, None)

    again = post(client, message)  # a retry is answered with its first receipt, not a 409
    assert again.status_code == 200 and again.json() == receipt
    assert client.get(f"/v1/products/{PRODUCT}/1.0.0").json() == version


def test_latest_is_the_newest_version_not_retired(client, world):
    maker, _, _ = world
    _ok(post(client, _retire(maker, "1.1.0")))
    assert client.get(f"/v1/products/{PRODUCT}").json()["latest"] == "1.0.0"
    page = client.get(f"/products/{PRODUCT}").text
    assert 'data-testid="version">1.0.0<' in page and "1.1.0</a> (retired)" in page
    assert 'data-testid="retired"' not in page
    assert 'data-testid="retired"' in client.get(f"/products/{PRODUCT}/1.1.0").text
    assert "<td>1.0.0</td>" in client.get("/products").text

    _ok(post(client, _retire(maker, "1.0.0")))  # all retired: the newest is still shown
    assert client.get(f"/v1/products/{PRODUCT}").json()["latest"] == "1.1.0"
    assert client.get(f"/products/{PRODUCT}").status_code == 200


def test_an_order_for_a_retired_version_is_refused_and_changes_nothing(client, database, world):
    maker, customer, _ = world
    _ok(post(client, _retire(maker, "1.0.0")))
    before = database.snapshot()
    body = _refused(post(client, _order(customer, maker, "o-1", "1.0.0")), 409, "product-retired")
    assert f"order {PRODUCT}@1.1.0 instead" in body["detail"]
    assert body["latest"] == "1.1.0"
    assert database.snapshot() == before
    assert _balances(client, customer, maker) == [(FUNDS, 0), (0, 0)]
    assert client.get("/v1/orders/o-1").status_code == 404

    placed = _ok(post(client, _order(customer, maker, "o-1", "1.1.0")))["result"]
    assert (placed["version"], placed["amount"]) == ("1.1.0", str(PRICE))
    assert _balances(client, customer, maker) == [(FUNDS, PRICE), (0, -PRICE)]


def test_with_every_version_retired_the_refusal_offers_none(client, database, world):
    maker, customer, _ = world
    _ok(post(client, _retire(maker, "1.0.0")))
    _ok(post(client, _retire(maker, "1.1.0")))
    before = database.snapshot()
    body = _refused(post(client, _order(customer, maker, "o-1", "1.1.0")), 409, "product-retired")
    assert "no version is offered" in body["detail"] and body["latest"] is None
    assert database.snapshot() == before


def test_a_stranger_cannot_retire(client, database, world):
    maker, customer, stranger = world
    before = database.snapshot()
    body = _refused(post(client, _retire(stranger, "1.0.0")), 403, "unauthorized")
    assert maker.did in body["detail"]
    assert database.snapshot() == before
    assert _retired(client) == {"1.0.0": False, "1.1.0": False}
    _ok(post(client, _order(customer, maker, "o-1", "1.0.0")))  # still on offer


def test_retiring_again_is_a_conflict(client, database, world):
    maker, _, _ = world
    first = _retire(maker, "1.0.0")
    _ok(post(client, first))
    before = database.snapshot()
    body = _refused(post(client, _retire(maker, "1.0.0")), 409, "conflict")
    assert body["retired_by"] == f"{maker.did} {first.id}"
    assert database.snapshot() == before


@pytest.mark.parametrize(
    ("product", "version"), [(PRODUCT, "9.9.9"), ("org.example.none", "1.0.0")]
)
def test_an_unknown_version_is_not_found(client, database, world, product, version):
    maker, _, _ = world
    before = database.snapshot()
    _refused(post(client, _retire(maker, version, product)), 404, "not-found")
    assert database.snapshot() == before


def test_a_retire_carries_no_settlement_nor_unknown_fields(client, database, world):
    maker, customer, _ = world
    before = database.snapshot()
    payload = {"product": PRODUCT, "version": "1.0.0"}
    paid = sign_message(maker, RETIRE, payload, settlement=[_escrow(maker, customer)])
    _refused(post(client, paid), 422, "settlement-unsupported")
    extra = sign_message(maker, RETIRE, {**payload, "reason": "old"})
    _refused(post(client, extra), 422, "schema-invalid")
    assert database.snapshot() == before
    assert _retired(client) == {"1.0.0": False, "1.1.0": False}


def test_orders_placed_before_retirement_still_move(client, world):
    maker, customer, _ = world
    escrow = _ok(post(client, _order(customer, maker, "o-1", "1.0.0")))["result"]["escrow"]
    _ok(post(client, _retire(maker, "1.0.0")))
    for state in ("accepted", "scheduled", "in-production", "built"):
        extra = built_payload(client, "o-1") if state == "built" else {}
        _ok(post(client, _status(maker, "o-1", state, **extra)))
    pending = client.get(f"/v1/ledger/transfers/{escrow}").json()
    release = SettlementLeg(
        id=uuid7(),
        debit_account=pending["debit_account_id"],
        credit_account=pending["credit_account_id"],
        ledger="LQD",
        code="order",
        flags=["post_pending"],
        pending_id=escrow,
    )
    _ok(post(client, _status(customer, "o-1", "delivered", [release])))
    order = client.get("/v1/orders/o-1").json()
    assert (order["state"], order["version"]) == ("delivered", "1.0.0")
    assert _balances(client, customer, maker) == [(FUNDS - PRICE, 0), (PRICE, 0)]
