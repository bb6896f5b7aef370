"""Supply contracts in the Dataspace Protocol's states, with escrow, and stock drawn by units,
on both stores."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from liquidfab.errors import LiquidfabError
from liquidfab.identity import SigningKey
from liquidfab.product import load_product
from liquidfab.production import stock, supply, units
from liquidfab.production.order_messages import ORDER, ORDER_STATUS
from liquidfab.production.supply_messages import SUPPLY_REQUEST, SUPPLY_STATUS
from liquidfab.production.supply_run import ReorderPolicy, SupplierAgent, negotiate
from liquidfab.protocol import SettlementLeg, sign_message, uuid7
from support import built_payload, funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
CHOICES = {"shade": "metal", "colour": "white", "dimmer": True, "arm_cm": 30, "watts": 6}
FUNDS = 10_000_000_000
PRICES = {"shade-metal": Decimal("9"), "arm-tube": Decimal("1.5")}


@pytest.fixture
def parties(node, operator_key):
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", FUNDS)
    supplier = funded(node, operator_key, "supplier", "Lumen Parts", 0)
    owner = funded(node, operator_key, "owner", "Customer", FUNDS)
    node.publish_product(maker, load_product(LAMP))
    return maker, SupplierAgent(supplier, PRICES), owner


def _wallet(client, key) -> tuple[int, int]:
    a = client.get(f"/v1/ledger/accounts/{key.did}/wallet").json()
    return int(a["balance"]), int(a["debits_pending"]) - int(a["credits_pending"])


def _status(key, contract: str, state: str, legs=None, **data):
    payload = {"contract": contract, "state": state, **data}
    return sign_message(key, SUPPLY_STATUS, payload, settlement=legs)


def _request(maker, agent, contract="c-1", part="shade-metal", quantity="40"):
    data = {"contract": contract, "supplier": agent.did, "part": part, "quantity": quantity}
    return sign_message(maker, SUPPLY_REQUEST, data)


def _escrow(maker, agent, amount: int) -> SettlementLeg:
    return SettlementLeg(
        id=uuid7(),
        debit_account=f"{maker.did}/wallet",
        credit_account=f"{agent.did}/wallet",
        ledger="LQD",
        amount=str(amount),
        code="supply",
        flags=["pending"],
        timeout_seconds=3600,
    )


def _settle(escrow: SettlementLeg, flag: str) -> SettlementLeg:
    return SettlementLeg(
        id=uuid7(),
        debit_account=escrow.debit_account,
        credit_account=escrow.credit_account,
        ledger="LQD",
        code="supply",
        flags=[flag],
        pending_id=escrow.id,
    )


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["result"]


def _refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text
    return response.json()


def test_a_contract_runs_to_delivery_paying_exactly_the_offer(client, node, database, parties):
    maker, agent, _ = parties
    before = _wallet(client, maker)
    done = negotiate(node.submit, maker, agent, "shade-metal", Decimal(40))
    assert done["amount"] == 360_000_000  # 40 x 9 LQD at six decimals
    assert _wallet(client, maker) == (before[0] - 360_000_000, 0)
    assert _wallet(client, agent.key) == (360_000_000, 0)
    contract = database.read(lambda c: supply.get_contract(c, done["contract"]))
    assert contract["state"] == "completed" and contract["quantity_milli"] == 40_000
    history = database.read(lambda c: supply.events_of(c, done["contract"]))
    assert [(e["state"], e["actor"]) for e in history] == [
        ("requested", maker.did),
        ("offered", agent.did),
        ("agreed", maker.did),
        ("finalized", agent.did),
        ("started", agent.did),
        ("completed", maker.did),
    ]
    assert history[2]["transfer"] == contract["pending_transfer"]
    levels = database.read(lambda c: stock.on_hand(c, maker.did))
    assert levels == {"shade-metal": 40_000}
    assert client.get("/v1/ledger/verify").json()["ok"] is True


def test_each_step_is_signed_by_its_party_in_order(client, node, database, parties):
    maker, agent, owner = parties
    _ok(post(client, _request(maker, agent)))
    snapshot = database.snapshot()
    # the consumer cannot offer, the supplier cannot agree, a stranger cannot do anything
    _refused(post(client, _status(maker, "c-1", "offered", unit_price="9")), 403, "unauthorized")
    _refused(post(client, _status(owner, "c-1", "terminated")), 403, "unauthorized")
    _refused(post(client, _status(agent.key, "c-1", "finalized")), 409, "transition-invalid")
    _refused(post(client, _status(agent.key, "c-1", "offered")), 400, "malformed")
    _refused(post(client, _request(maker, agent)), 409, "conflict")
    _refused(post(client, _status(maker, "c-2", "agreed")), 404, "not-found")
    assert database.snapshot() == snapshot
    offered = _ok(post(client, agent.offer("c-1", "shade-metal")))
    amount = int(offered["amount"])
    # agreeing needs the exact escrow to the supplier
    _refused(post(client, _status(maker, "c-1", "agreed")), 422, "escrow-invalid")
    short = _escrow(maker, agent, amount - 1)
    _refused(post(client, _status(maker, "c-1", "agreed", [short])), 422, "escrow-invalid")
    assert _wallet(client, maker)[1] == 0
    escrow = _escrow(maker, agent, amount)
    _ok(post(client, _status(maker, "c-1", "agreed", [escrow])))
    assert _wallet(client, maker)[1] == amount
    # once in escrow only the supplier terminates, voiding it
    _refused(post(client, _status(maker, "c-1", "terminated")), 403, "unauthorized")
    _refused(post(client, _status(agent.key, "c-1", "terminated")), 422, "escrow-invalid")
    _ok(post(client, _status(agent.key, "c-1", "terminated", [_settle(escrow, "void_pending")])))
    assert _wallet(client, maker) == (FUNDS, 0)
    assert _wallet(client, agent.key) == (0, 0)
    _refused(post(client, agent.finalize("c-1")), 409, "transition-invalid")
    assert database.read(lambda c: stock.on_hand(c, maker.did)) == {}


def test_goods_on_their_way_are_not_terminated_and_complete_once(client, node, parties):
    maker, agent, _ = parties
    _ok(post(client, _request(maker, agent)))
    amount = int(_ok(post(client, agent.offer("c-1", "shade-metal")))["amount"])
    escrow = _escrow(maker, agent, amount)
    _ok(post(client, _status(maker, "c-1", "agreed", [escrow])))
    _ok(post(client, agent.finalize("c-1")))
    _refused(post(client, _status(agent.key, "c-1", "started")), 400, "malformed")
    _ok(post(client, agent.ship("c-1", "shade-metal")))
    void = [_settle(escrow, "void_pending")]
    body = _refused(
        post(client, _status(agent.key, "c-1", "terminated", void)), 409, "transition-invalid"
    )
    assert "goods have left" in body["detail"]
    _refused(post(client, _status(maker, "c-1", "completed")), 422, "escrow-invalid")
    done = _status(maker, "c-1", "completed", [_settle(escrow, "post_pending")])
    _ok(post(client, done))
    assert post(client, done).status_code == 200  # a retry answers, moves nothing again
    assert _wallet(client, agent.key) == (amount, 0)


def test_bad_requests_change_nothing(client, node, database, parties, operator_key):
    maker, agent, owner = parties
    snapshot = database.snapshot()
    _refused(
        post(client, _request(maker, SupplierAgent(SigningKey.generate(), {}))), 404, "not-found"
    )
    _refused(
        post(
            client,
            _request(maker, SupplierAgent(owner, {})),
        ),
        422,
        "not-a-supplier",
    )
    _refused(post(client, _request(maker, agent, quantity="0")), 422, "schema-invalid")
    _refused(post(client, _request(maker, agent, contract="bad id!")), 422, "schema-invalid")
    assert database.snapshot() == snapshot
    # a price the ledger cannot hold exactly, and a consumer who cannot pay
    _ok(post(client, _request(maker, agent, contract="c-2", quantity="1")))
    _refused(
        post(client, _status(agent.key, "c-2", "offered", unit_price="0.0000001")),
        422,
        "price-mismatch",
    )
    poor = funded(node, operator_key, "manufacturer", "Poor Maker", 0)
    with pytest.raises(LiquidfabError, match="agreed was refused"):
        negotiate(node.submit, poor, agent, "shade-metal", Decimal(1))
    assert _wallet(client, poor) == (0, 0)


def test_reorder_policy():
    policy = ReorderPolicy(point=10, lot=100)
    assert policy.quantity(per_unit=1000, on_hand=200_000, needed=50_000) == 0
    assert policy.quantity(per_unit=1000, on_hand=50_000, needed=45_000) == 100_000
    assert policy.quantity(per_unit=1000, on_hand=0, needed=500_000) == 510_000
    with pytest.raises(ValueError):
        ReorderPolicy(point=-1)


def _order(client, maker, owner, order_id: str) -> None:
    leg = SettlementLeg(
        id=uuid7(),
        debit_account=f"{owner.did}/wallet",
        credit_account=f"{maker.did}/wallet",
        ledger="LQD",
        amount="1",
        code="order",
        flags=["pending"],
        timeout_seconds=3600,
    )
    payload = {
        "order": order_id,
        "product": "org.example.lamp",
        "version": "1.0.0",
        "choices": CHOICES,
    }
    draft = post(client, sign_message(owner, ORDER, payload, settlement=[leg]))
    leg = leg.model_copy(update={"id": uuid7(), "amount": draft.json()["amount"]})
    _ok(post(client, sign_message(owner, ORDER, payload, settlement=[leg])))
    for state in ("accepted", "scheduled", "in-production"):
        _ok(post(client, sign_message(maker, ORDER_STATUS, {"order": order_id, "state": state})))


def test_a_built_unit_draws_its_stocked_parts_and_names_their_lots(client, node, database, parties):
    maker, agent, owner = parties
    first = negotiate(node.submit, maker, agent, "shade-metal", Decimal(1))
    second = negotiate(node.submit, maker, agent, "shade-metal", Decimal(2))
    lots = [
        database.read(lambda c, k=k: supply.get_contract(c, k["contract"]))["lot"]
        for k in (first, second)
    ]
    for order in ("o-1", "o-2", "o-3"):
        _order(client, maker, owner, order)
    built = {"order": "o-1", "state": "built", **built_payload(client, "o-1"), "scrapped": 1}
    serial = _ok(post(client, sign_message(maker, ORDER_STATUS, built)))["serial"]
    unit = client.get(f"/v1/units/{serial}/passport")  # public tier: no lots
    assert unit.status_code == 200
    as_built = database.read(lambda c: units.get_unit(c, serial))["as_built"]
    parts = {p["part"]: p for p in as_built["parts"]}
    # one kit for the unit and one for the scrapped one: both from the first lot, then the
    # second; parts never delivered keep a synthesized lot
    assert parts["shade-metal"]["lot"] == f"{lots[0]}+{lots[1]}"
    assert parts["shade-metal"]["lot_source"] == "stock"
    assert all(p.get("lot_source") != "stock" for k, p in parts.items() if k != "shade-metal")
    assert database.read(lambda c: stock.on_hand(c, maker.did)) == {"shade-metal": 1_000}
    # the last shade builds o-2; o-3 finds the stock empty and nothing changes
    _ok(
        post(
            client,
            sign_message(
                maker,
                ORDER_STATUS,
                {"order": "o-2", "state": "built", **built_payload(client, "o-2")},
            ),
        )
    )
    snapshot = database.snapshot()
    body = _refused(
        post(
            client,
            sign_message(
                maker,
                ORDER_STATUS,
                {"order": "o-3", "state": "built", **built_payload(client, "o-3")},
            ),
        ),
        409,
        "stock-short",
    )
    assert body["short"]["shade-metal"] == {"needs_milli": 1000, "on_hand_milli": 0}
    assert database.snapshot() == snapshot
    assert client.get("/v1/orders/o-3").json()["state"] == "in-production"
