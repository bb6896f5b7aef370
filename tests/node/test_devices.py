"""The device registry and twins through signed messages and the fleet API, on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from liquidfab.fleet.messages import REGISTER_DEVICE, TWIN_DESIRED, TWIN_REPORTED
from liquidfab.identity import SigningKey
from liquidfab.product import load_product
from liquidfab.protocol import sign_message, uuid7
from support import built_lamp_unit, funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
PRODUCT, VERSION = "org.example.lamp", "1.0.0"


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["result"]


def _refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text
    return response.json()


@pytest.fixture
def world(node, operator_key):
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", 0)
    owner = funded(node, operator_key, "owner", "Owner", 10**9)
    stranger = funded(node, operator_key, "owner", "Stranger", 0)
    node.publish_product(maker, load_product(LAMP))
    return maker, owner, stranger


def _register(maker, device: SigningKey, owner=None, **data):
    payload = {"did": device.did, "product": PRODUCT, "version": VERSION, **data}
    if owner is not None:
        payload["owner"] = owner.did
    return sign_message(maker, REGISTER_DEVICE, payload)


def _write(key, kind: str, device: SigningKey, version: int, state: dict):
    data = {"device": device.did, "version": version, "state": state}
    return sign_message(key, kind, data)


def test_a_built_unit_registers_with_its_owner_and_serial(client, world):
    maker, owner, stranger = world
    serial, did = built_lamp_unit(client, maker, owner)
    payload = {"did": did, "product": PRODUCT, "version": VERSION, "serial": serial}
    result = _ok(post(client, sign_message(maker, REGISTER_DEVICE, payload)))
    assert (result["owner"], result["serial"], result["twin_version"]) == (owner.did, serial, 0)
    device = client.get(f"/v1/devices/{did}").json()
    assert device["manufacturer"] == maker.did and device["owner"] == owner.did
    # the unit's facts cannot be bent
    other = SigningKey.generate()
    wrong = {"did": other.did, "product": PRODUCT, "version": VERSION, "serial": serial}
    _refused(post(client, sign_message(maker, REGISTER_DEVICE, wrong)), 422, "unit-mismatch")
    mine = {**payload, "did": other.did, "owner": stranger.did}
    _refused(post(client, sign_message(maker, REGISTER_DEVICE, mine)), 422, "unit-mismatch")
    _refused(post(client, sign_message(maker, REGISTER_DEVICE, payload)), 409, "conflict")


def test_registration_refusals_change_nothing(client, database, world):
    maker, owner, stranger = world
    device = SigningKey.generate()
    before = database.snapshot()
    _refused(post(client, _register(stranger, device, owner)), 403, "unauthorized")
    _refused(post(client, _register(maker, device)), 400, "malformed")  # no owner
    _refused(post(client, _register(maker, device, owner, version="9.9.9")), 404, "not-found")
    _refused(post(client, _register(maker, device, owner, serial="LAMP-1")), 404, "not-found")
    bad = {"did": "did:key:zNope", "product": PRODUCT, "version": VERSION, "owner": owner.did}
    _refused(post(client, sign_message(maker, REGISTER_DEVICE, bad)), 400, "malformed")
    ghost = {"did": device.did, "product": PRODUCT, "version": VERSION, "owner": uuid7()}
    _refused(post(client, sign_message(maker, REGISTER_DEVICE, ghost)), 404, "not-found")
    assert database.snapshot() == before
    assert client.get(f"/v1/devices/{device.did}").status_code == 404


def test_the_twin_refuses_stale_writes_and_computes_the_delta(client, database, world):
    maker, owner, _ = world
    device = SigningKey.generate()
    _ok(post(client, _register(maker, device, owner, attributes={"region": "eu"})))
    desired = {"firmware": "1.1.0", "lights": {"auto": True, "level": 3}}
    result = _ok(post(client, _write(owner, TWIN_DESIRED, device, 0, desired)))
    assert result["twin_version"] == 1 and result["delta"] == desired
    # a writer that read version 0 is refused and nothing changes
    before = database.snapshot()
    body = _refused(
        post(client, _write(maker, TWIN_DESIRED, device, 0, {"firmware": "2.0.0"})),
        409,
        "stale-version",
    )
    assert body["current"] == 1
    assert database.snapshot() == before
    # the device reports with its own key (it is not a registered participant)
    reported = {"firmware": "1.1.0", "lights": {"auto": True, "level": 1}, "battery": 0.8}
    result = _ok(post(client, _write(device, TWIN_REPORTED, device, 1, reported)))
    assert result["delta"] == {"lights": {"level": 3}}
    twin = client.get(f"/v1/devices/{device.did}/twin").json()
    assert twin["twin_version"] == 2 and twin["reported"]["battery"] == 0.8
    assert twin["delta"] == {"lights": {"level": 3}}
    # null removes a key; the manufacturer may set the desired state too
    result = _ok(post(client, _write(maker, TWIN_DESIRED, device, 2, {"lights": None})))
    assert result["desired"] == {"firmware": "1.1.0"} and result["delta"] == {}


def test_only_the_right_writers_write_and_documents_stay_small(client, database, world):
    maker, owner, stranger = world
    device = SigningKey.generate()
    _ok(post(client, _register(maker, device, owner)))
    before = database.snapshot()
    _refused(post(client, _write(stranger, TWIN_DESIRED, device, 0, {"a": 1})), 403, "unauthorized")
    _refused(post(client, _write(owner, TWIN_REPORTED, device, 0, {"a": 1})), 403, "unauthorized")
    impostor = SigningKey.generate()  # another device's key cannot report for this one
    _refused(
        post(client, _write(impostor, TWIN_REPORTED, device, 0, {"a": 1})), 403, "unauthorized"
    )
    big = {f"k{i}": "x" * 100 for i in range(90)}
    _refused(post(client, _write(owner, TWIN_DESIRED, device, 0, big)), 413, "too-large")
    deep: dict = {}
    node = deep
    for _ in range(8):
        node["n"] = {}
        node = node["n"]
    _refused(post(client, _write(owner, TWIN_DESIRED, device, 0, deep)), 413, "too-large")
    nobody = SigningKey.generate()
    _refused(post(client, _write(owner, TWIN_DESIRED, nobody, 0, {"a": 1})), 404, "not-found")
    assert database.snapshot() == before


def test_devices_are_found_by_product_owner_and_attributes(client, world):
    maker, owner, stranger = world
    keys = [SigningKey.generate() for _ in range(5)]
    for i, key in enumerate(keys):
        attributes = {"region": "eu" if i % 2 == 0 else "us", "battery": 500 + i}
        who = owner if i < 3 else stranger
        _ok(post(client, _register(maker, key, who, attributes=attributes)))
    eu = client.get("/v1/devices", params={"attr": "region=eu"}).json()
    assert sorted(d["did"] for d in eu) == sorted(k.did for k in keys[0::2])
    both = client.get("/v1/devices", params=[("attr", "region=eu"), ("attr", "battery=504")])
    assert [d["did"] for d in both.json()] == [keys[4].did]
    mine = client.get("/v1/devices", params={"owner": stranger.did}).json()
    assert sorted(d["did"] for d in mine) == sorted(k.did for k in keys[3:])
    first = client.get("/v1/devices", params={"limit": 2}).json()
    rest = client.get("/v1/devices", params={"after": first[-1]["did"]}).json()
    assert len(first) == 2 and len(rest) == 3 and first[-1]["did"] < rest[0]["did"]
    assert client.get("/v1/devices", params={"attr": "nonsense"}).status_code == 400
    assert client.get("/v1/devices", params={"product": "none"}).json() == []
