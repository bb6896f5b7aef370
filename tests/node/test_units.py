"""Built units: serial, as-built record, device identity and tiered passports, on both stores."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from liquidfab.db.tables import units as units_table
from liquidfab.errors import Refused
from liquidfab.identity import SigningKey
from liquidfab.node.routes_units import SIGNATURE_HEADER, read_signature_bytes
from liquidfab.product import load_product
from liquidfab.product.aas import verify_environment
from liquidfab.production import BuildProgram, SimulatedStation, orders
from liquidfab.production.executor import BuildRecord, Executor
from liquidfab.production.order_messages import ORDER, ORDER_STATUS
from liquidfab.production.units import (
    get_unit,
    product_code,
    record_unit,
    synthesized_lot,
    unit_environment,
    unit_for_order,
)
from liquidfab.protocol import SettlementLeg, sign_message, uuid7
from support import funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
PRODUCT, VERSION = "org.example.lamp", "1.0.0"
CHOICES = {"shade": "metal", "colour": "white", "dimmer": True, "arm_cm": 30, "watts": 6}
FUNDS = 1_000_000_000
SERIAL = re.compile(r"^LAMP-\d{8}-\d{6}$")


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
def world(node, operator_key):
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", 0)
    customer = funded(node, operator_key, "owner", "Customer", FUNDS)
    stranger = funded(node, operator_key, "owner", "Stranger", FUNDS)
    node.publish_product(maker, load_product(LAMP))
    return maker, customer, stranger


def _place(client, maker, customer, order_id: str, choices=CHOICES) -> dict:
    payload = {"order": order_id, "product": PRODUCT, "version": VERSION, "choices": choices}
    draft = post(client, sign_message(customer, ORDER, payload, settlement=[_leg(customer, maker)]))
    if draft.status_code == 422 and draft.json()["code"] == "price-mismatch":
        amount = int(draft.json()["amount"])
        draft = post(
            client,
            sign_message(customer, ORDER, payload, settlement=[_leg(customer, maker, amount)]),
        )
    return _ok(draft)["result"]


def _leg(payer, payee, amount: int = 1) -> SettlementLeg:
    return SettlementLeg(
        id=uuid7(),
        debit_account=f"{payer.did}/wallet",
        credit_account=f"{payee.did}/wallet",
        ledger="LQD",
        amount=str(amount),
        code="order",
        flags=["pending"],
        timeout_seconds=30 * 24 * 3600,
    )


def _advance(client, maker, order_id: str, *states: str) -> None:
    for state in states:
        message = sign_message(maker, ORDER_STATUS, {"order": order_id, "state": state})
        _ok(post(client, message))


def _build(client, order_id: str) -> BuildRecord:
    program = BuildProgram.model_validate(client.get(f"/v1/orders/{order_id}").json()["program"])
    stations = {s: SimulatedStation(s, seed=7) for s in program.stations}
    return asyncio.run(Executor(stations).build(program))


def _mark_built(database, order_id: str) -> None:
    """The order as the built step leaves it, without the unit the step records, so
    ``record_unit`` itself can be tried."""
    database.write(lambda c: orders.set_state(c, order_id, "built", int(time.time() * 1e6)))


def _built(client, maker, customer, order_id: str = "o-1", choices=CHOICES, *, database=None):
    _place(client, maker, customer, order_id, choices)
    _advance(client, maker, order_id, "accepted", "scheduled", "in-production")
    _mark_built(database, order_id)
    return _build(client, order_id)


def _record(database, order_id, record, **kw):
    return database.write(lambda c: record_unit(c, order_id, record, **kw))


def _signed(key: SigningKey, node_did: str, serial: str, *, created=None, path=None) -> dict:
    created = int(time.time()) if created is None else created
    path = path or f"/v1/units/{serial}/passport"
    sig = key.sign(read_signature_bytes(node_did, "GET", path, created))
    text = base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    return {SIGNATURE_HEADER: f"did={key.did}; created={created}; sig={text}"}


def _passport(client, serial: str, headers=None) -> dict:
    return _ok(client.get(f"/v1/units/{serial}/passport", headers=headers or {}))


# --- recording ------------------------------------------------------------------------------


def test_a_built_order_gets_one_unit_whose_as_built_matches_its_order(client, database, world):
    maker, customer, _ = world
    record = _built(client, maker, customer, "o-1", database=database)
    assert record.ok
    made = _record(database, "o-1", record)
    serial = made.unit["serial"]
    assert SERIAL.match(serial) and serial.endswith("-000001")

    order = client.get("/v1/orders/o-1").json()
    unit = database.read(lambda c: get_unit(c, serial))
    assert unit is not None and unit["order_id"] == "o-1"
    assert database.read(lambda c: unit_for_order(c, "o-1"))["serial"] == serial
    as_built = unit["as_built"]
    assert unit["program_digest"] == as_built["program_digest"] == order["program_digest"]
    assert as_built["choices"] == order["choices"] == CHOICES
    assert as_built["features"] == order["features"]
    assert [r["step"] for r in as_built["station_results"]] == list(
        range(len(order["program"]["steps"]))
    )
    assert all(r["program_digest"] == order["program_digest"] for r in as_built["station_results"])
    # parts: every purchased part carries its supplier and a deterministic lot
    purchased = [p for p in as_built["parts"] if "supplier" in p]
    assert purchased and {p["part"] for p in purchased} >= {"shade-metal", "dimmer-module"}
    day = serial.split("-")[1]
    for p in purchased:
        assert p["lot"] == synthesized_lot(p["supplier_did"], p["part"], day)
    # the device identity: the did is kept, the bundle's key is its private half
    seed = base64.urlsafe_b64decode(made.bundle["private_key_seed"] + "=")
    assert SigningKey(seed).did == unit["device_did"] == made.bundle["device_did"]
    assert "private" not in repr(made) and made.bundle["private_key_seed"] not in repr(made)
    # the passport is a valid AAS with the as-built filled
    environment = database.read(lambda c: unit_environment(c, unit))
    assert verify_environment(environment) == []
    assert environment == database.read(lambda c: unit_environment(c, get_unit(c, serial)))

    # a second order of the same product: the next sequence; a unit per order only
    second = _built(client, maker, customer, "o-2", database=database)
    assert _record(database, "o-2", second).unit["serial"].endswith("-000002")
    with pytest.raises(Refused) as again:
        _record(database, "o-1", record)
    assert again.value.code == "conflict"
    assert database.read(lambda c: len(c.execute(select(units_table)).all())) == 2


def test_the_private_key_is_never_stored(client, database, world):
    maker, customer, _ = world
    made = _record(database, "o-1", _built(client, maker, customer, "o-1", database=database))
    seed = base64.urlsafe_b64decode(made.bundle["private_key_seed"] + "=")
    forms = {
        made.bundle["private_key_seed"],
        base64.b64encode(seed).decode(),
        base64.b64encode(seed).decode().rstrip("="),
        seed.hex(),
        seed.hex().upper(),
    }
    snapshot = database.snapshot()
    assert snapshot["units"], "the unit is in the snapshot"
    cells = 0
    for table, rows in snapshot.items():
        for row in rows:
            for value in row.values():
                cells += 1
                text = value if isinstance(value, str) else repr(value)
                assert not any(f in text for f in forms), f"private key in {table}"
                if isinstance(value, bytes):
                    assert seed not in value, f"raw private key in {table}"
    assert cells > 0


def test_only_a_built_order_with_its_own_program_gets_a_unit(client, database, world):
    maker, customer, _ = world
    _place(client, maker, customer, "o-1")
    _advance(client, maker, "o-1", "accepted", "scheduled", "in-production")
    record = _build(client, "o-1")
    with pytest.raises(Refused) as early:
        _record(database, "o-1", record)
    assert early.value.code == "transition-invalid"
    _mark_built(database, "o-1")
    wrong = record.model_copy(update={"program_digest": "0" * 64})
    with pytest.raises(Refused) as mismatch:
        _record(database, "o-1", wrong)
    assert mismatch.value.code == "as-built-mismatch"
    failed = BuildRecord(
        program_digest=record.program_digest,
        ok=False,
        results=record.results[:1],
        failed_step=1,
        reason="torque out of tolerance",
    )
    with pytest.raises(Refused) as bad:
        _record(database, "o-1", failed)
    assert bad.value.code == "build-failed"
    with pytest.raises(Refused) as unknown:
        _record(database, "nope", record)
    assert unknown.value.code == "not-found"
    assert database.read(lambda c: c.execute(select(units_table)).all()) == []
    # given lots are kept as given
    made = _record(database, "o-1", record, lots={"shade-metal": "LUMEN-2026-0042"})
    lot = next(p for p in made.unit["as_built"]["parts"] if p["part"] == "shade-metal")
    assert (lot["lot"], lot["lot_source"]) == ("LUMEN-2026-0042", "stock")


def _built_message(maker, order_id: str, record: BuildRecord, device: str, **kw):
    data = {
        "order": order_id,
        "state": "built",
        "build": record.model_dump(mode="json"),
        "device_did": device,
        **kw,
    }
    return sign_message(maker, ORDER_STATUS, data)


def test_the_built_step_records_the_unit_with_the_stations_device_did(client, database, world):
    maker, customer, _ = world
    _place(client, maker, customer, "o-1")
    _advance(client, maker, "o-1", "accepted", "scheduled", "in-production")
    record = _build(client, "o-1")
    device = SigningKey.generate()
    result = _ok(post(client, _built_message(maker, "o-1", record, device.did)))["result"]
    assert result["state"] == "built" and SERIAL.match(result["serial"])
    unit = database.read(lambda c: unit_for_order(c, "o-1"))
    assert unit["serial"] == result["serial"] and unit["device_did"] == device.did
    assert unit["as_built"]["station_results"] == [
        r.model_dump(mode="json") for r in record.results
    ]
    # the node never saw a private key: nothing stored holds the device's seed
    seed = base64.urlsafe_b64encode(device.seed).rstrip(b"=").decode()
    assert seed not in database.snapshot().__repr__()


def test_a_built_step_without_a_good_build_changes_nothing(client, database, world):
    maker, customer, _ = world
    _place(client, maker, customer, "o-1")
    _place(client, maker, customer, "o-2")
    for order in ("o-1", "o-2"):
        _advance(client, maker, order, "accepted", "scheduled", "in-production")
    record = _build(client, "o-1")
    failed = BuildRecord(
        program_digest=record.program_digest,
        ok=False,
        results=record.results[:1],
        failed_step=1,
        reason="torque out of tolerance",
    )
    other = _build(client, "o-2")
    did = SigningKey.generate().did
    before = database.snapshot()
    cases = [
        (sign_message(maker, ORDER_STATUS, {"order": "o-1", "state": "built"}), 422),
        (_built_message(maker, "o-1", failed, did), 409),
        (
            _built_message(
                maker, "o-1", record.model_copy(update={"program_digest": "0" * 64}), did
            ),
            409,
        ),
        (_built_message(maker, "o-1", record, "did:key:zNotAKey"), 400),
    ]
    codes = []
    for message, status in cases:
        response = post(client, message)
        assert response.status_code == status, response.text
        codes.append(response.json()["code"])
    assert codes == ["build-required", "build-failed", "as-built-mismatch", "malformed"]
    # a build record on another step is refused too
    stray = sign_message(
        maker,
        ORDER_STATUS,
        {"order": "o-2", "state": "accepted", "build": other.model_dump(mode="json")},
    )
    assert post(client, stray).status_code in (400, 409)
    assert database.snapshot() == before
    assert client.get("/v1/orders/o-1").json()["state"] == "in-production"
    # one device key is one unit: a second unit cannot claim it
    _ok(post(client, _built_message(maker, "o-1", record, did)))
    taken = post(client, _built_message(maker, "o-2", other, did))
    assert taken.status_code == 409 and taken.json()["code"] == "conflict", taken.text
    assert client.get("/v1/orders/o-2").json()["state"] == "in-production"


def test_product_codes():
    assert product_code("org.example.lamp") == "LAMP"
    assert product_code("org.example.e-bike_2") == "EBIKE2"
    assert product_code("...") == "UNIT"


# --- passports by tier ------------------------------------------------------------------


@pytest.fixture
def unit(client, database, world):
    maker, customer, _ = world
    return _record(database, "o-1", _built(client, maker, customer, "o-1", database=database)).unit


PUBLIC = {"serial", "tier", "product", "version", "manufacturer", "device_did", "built_at", "aas"}
OWNER = PUBLIC | {"order", "customer", "choices", "features", "as_built"}
ALL_SUBMODELS = {
    "Nameplate",
    "Configuration",
    "AsBuiltBillOfMaterial",
    "SoftwareFeatures",
    "AsBuilt",
}


def _submodels(body) -> set[str]:
    return {s["idShort"] for s in body["aas"]["submodels"]}


def _as_built_elements(body) -> set[str]:
    sm = next(s for s in body["aas"]["submodels"] if s["idShort"] == "AsBuilt")
    return {e["idShort"] for e in sm["submodelElements"]}


def test_the_public_tier_shows_the_nameplate_only(client, unit, world):
    maker, _, _ = world
    body = _passport(client, unit["serial"])
    assert set(body) == PUBLIC and body["tier"] == "public"
    assert (body["product"], body["version"]) == (PRODUCT, VERSION)
    assert body["manufacturer"] == maker.did and body["device_did"] == unit["device_did"]
    assert _submodels(body) == {"Nameplate"}
    shell = body["aas"]["assetAdministrationShells"][0]
    assert len(shell["submodels"]) == 1
    assert verify_environment(body["aas"]) == []
    text = str(body)
    lots = [p["lot"] for p in unit["as_built"]["parts"] if "lot" in p]
    for secret in ("shade-metal", "metal", "Configuration", "StationResults", "o-1", *lots):
        assert secret not in text, secret


def test_the_owner_tier_shows_configuration_and_as_built_without_lots(client, node, unit, world):
    _, customer, _ = world
    body = _passport(client, unit["serial"], _signed(customer, node.did, unit["serial"]))
    assert set(body) == OWNER and body["tier"] == "owner"
    assert body["choices"] == CHOICES and body["customer"] == customer.did
    assert body["as_built"]["program_digest"] == unit["program_digest"]
    assert set(body["as_built"]) == {"status", "program_digest", "parts"}
    for part in body["as_built"]["parts"]:
        assert set(part) == {"part", "name", "quantity", "unit"}
    assert _submodels(body) == ALL_SUBMODELS
    assert _as_built_elements(body) == {"Status", "Program", "DeviceDid", "BuiltAt"}
    text = str(body)
    lots = [p["lot"] for p in unit["as_built"]["parts"] if "lot" in p]
    assert lots and not any(lot in text for lot in lots)
    assert verify_environment(body["aas"]) == []


def test_the_authority_tier_shows_everything(client, node, database, operator_key, unit, world):
    maker, _, _ = world
    for key in (operator_key, maker, node.key):
        body = _passport(client, unit["serial"], _signed(key, node.did, unit["serial"]))
        assert body["tier"] == "authority"
        assert set(body) == OWNER
        assert body["as_built"]["station_results"] == unit["as_built"]["station_results"]
        lots = [p["lot"] for p in body["as_built"]["parts"] if "supplier" in p]
        assert lots and all(lots)
        assert "StationResults" in _as_built_elements(body)
        assert _submodels(body) == ALL_SUBMODELS
        assert body["aas"] == database.read(lambda c: unit_environment(c, unit))


def test_unproven_tiers_fall_back_to_public(client, node, unit, world):
    _, customer, stranger = world
    serial = unit["serial"]
    forged = _signed(stranger, node.did, serial)
    forged[SIGNATURE_HEADER] = forged[SIGNATURE_HEADER].replace(stranger.did, customer.did)
    stale = _signed(customer, node.did, serial, created=int(time.time()) - 3600)
    other_path = _signed(customer, node.did, serial, path="/v1/units/OTHER-1/passport")
    other_node = _signed(customer, SigningKey.generate().did, serial)
    cases = {
        "forged": forged,
        "stale": stale,
        "future": _signed(customer, node.did, serial, created=int(time.time()) + 3600),
        "another path": other_path,
        "another node": other_node,
        "non-owner": _signed(stranger, node.did, serial),
        "unregistered": _signed(SigningKey.generate(), node.did, serial),
        "garbage": {SIGNATURE_HEADER: "did=x; created=abc; sig=!!"},
        "missing field": {SIGNATURE_HEADER: f"did={customer.did}; created=1"},
    }
    for what, headers in cases.items():
        body = _passport(client, serial, headers)
        assert body["tier"] == "public", what
        assert set(body) == PUBLIC, what


def test_an_unknown_serial_is_not_found(client, node, unit, world):
    _, customer, _ = world
    missing = client.get("/v1/units/LAMP-20000101-999999/passport")
    assert missing.status_code == 404 and missing.json()["code"] == "not-found"
    signed = _signed(customer, node.did, "LAMP-20000101-999999")
    assert client.get("/v1/units/LAMP-20000101-999999/passport", headers=signed).status_code == 404
    assert client.get("/v1/units/bad%20serial/passport").status_code == 422
