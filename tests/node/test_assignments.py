"""Director assignments: signed by the node per device, counters that only grow, and the
device-side check that refuses every assignment it should, one attack per test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from liquidfab.fleet.director import AssignmentRefused, sign_assignment, verify_assignment
from liquidfab.fleet.messages import ASSIGN, REGISTER_DEVICE
from liquidfab.identity import SigningKey
from liquidfab.product import load_product
from liquidfab.protocol import sign_message
from support import funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
PRODUCT, VERSION = "org.example.lamp", "1.0.0"
IMAGE = b"lamp firmware 2.0"
SHA = hashlib.sha256(IMAGE).hexdigest()
CUSTOM = {"product": PRODUCT, "hardware": "mcu-a", "version": "2.0.0", "kind": "firmware"}
TUF = {"lamp/fw-2.0.bin": (SHA, len(IMAGE))}  # what the device's verified targets say


@pytest.fixture
def world(node, operator_key):
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", 0)
    owner = funded(node, operator_key, "owner", "Owner", 0)
    node.publish_product(maker, load_product(LAMP))
    return maker, owner


def _device(client, maker, owner, **attributes) -> SigningKey:
    device = SigningKey.generate()
    data = {"did": device.did, "product": PRODUCT, "version": VERSION, "owner": owner.did,
            "attributes": attributes}  # fmt: skip
    assert post(client, sign_message(maker, REGISTER_DEVICE, data)).status_code == 201
    return device


def _assign(key, device: SigningKey, **over):
    data = {"device": device.did, "target": "lamp/fw-2.0.bin", "sha256": SHA,
            "length": len(IMAGE), "custom": dict(CUSTOM), **over}  # fmt: skip
    return sign_message(key, ASSIGN, data)


def _check(node, device, envelope, **over):
    facts = {"director": node.did, "device": device.did, "hardware": "mcu-a",
             "product": PRODUCT, "last_counter": 0, "target_hashes": TUF, **over}  # fmt: skip
    return verify_assignment(envelope, **facts)


def test_the_node_signs_each_devices_assignment_with_a_growing_counter(client, node, world):
    maker, owner = world
    device = _device(client, maker, owner, hardware="mcu-a")
    assert post(client, _assign(maker, device)).json()["result"]["counter"] == 1
    first = client.get(f"/v1/devices/{device.did}/assignment").json()
    assert _check(node, device, first)["counter"] == 1
    assert post(client, _assign(maker, device)).json()["result"]["counter"] == 2
    second = client.get(f"/v1/devices/{device.did}/assignment").json()
    assert _check(node, device, second, last_counter=1)["target"] == "lamp/fw-2.0.bin"
    assert client.get(f"/v1/devices/{SigningKey.generate().did}/assignment").status_code == 404


def test_a_replayed_or_older_assignment_is_refused(client, node, world):
    maker, owner = world
    device = _device(client, maker, owner)
    post(client, _assign(maker, device))
    old = client.get(f"/v1/devices/{device.did}/assignment").json()
    post(client, _assign(maker, device))
    with pytest.raises(AssignmentRefused) as refused:
        _check(node, device, old, last_counter=2)  # the device accepted counter 2 already
    assert refused.value.reason == "replayed"


def test_an_assignment_for_another_device_is_refused(client, node, world):
    maker, owner = world
    device, other = _device(client, maker, owner), _device(client, maker, owner)
    post(client, _assign(maker, other))
    theirs = client.get(f"/v1/devices/{other.did}/assignment").json()
    with pytest.raises(AssignmentRefused) as refused:
        _check(node, device, theirs)
    assert refused.value.reason == "other-device"


def test_a_target_for_other_hardware_is_refused_by_the_device(client, node, world):
    maker, owner = world
    device = _device(client, maker, owner)  # no hardware attribute: the node cannot tell
    post(client, _assign(maker, device, custom={**CUSTOM, "hardware": "mcu-b"}))
    envelope = client.get(f"/v1/devices/{device.did}/assignment").json()
    with pytest.raises(AssignmentRefused) as refused:
        _check(node, device, envelope)
    assert refused.value.reason == "incompatible"


def test_a_forged_assignment_is_refused(client, node, world):
    maker, owner = world
    device = _device(client, maker, owner)
    post(client, _assign(maker, device))
    envelope = client.get(f"/v1/devices/{device.did}/assignment").json()
    tampered = {**envelope, "signed": {**envelope["signed"], "target": "lamp/evil.bin"}}
    with pytest.raises(AssignmentRefused) as refused:
        _check(node, device, tampered, target_hashes={"lamp/evil.bin": (SHA, len(IMAGE))})
    assert refused.value.reason == "bad-signature"
    # an attacker's key claiming to be the director
    row = {**envelope["signed"], "custom": CUSTOM}
    forged = sign_assignment(SigningKey.generate(), row)
    with pytest.raises(AssignmentRefused) as other:
        _check(node, device, forged)
    assert other.value.reason == "wrong-director"
    forged["signed"]["director"] = node.did
    with pytest.raises(AssignmentRefused) as bad:
        _check(node, device, forged)
    assert bad.value.reason == "bad-signature"
    with pytest.raises(AssignmentRefused):
        _check(node, device, {"signed": "x"})


def test_an_assignment_the_repository_does_not_back_is_refused(client, node, world):
    maker, owner = world
    device = _device(client, maker, owner)
    post(client, _assign(maker, device))
    envelope = client.get(f"/v1/devices/{device.did}/assignment").json()
    with pytest.raises(AssignmentRefused) as mixed:
        _check(node, device, envelope, target_hashes={"lamp/fw-2.0.bin": ("0" * 64, 17)})
    assert mixed.value.reason == "mix-and-match"
    with pytest.raises(AssignmentRefused) as unknown:
        _check(node, device, envelope, target_hashes={})
    assert unknown.value.reason == "unknown-target"


def test_assigning_is_for_the_manufacturer_and_must_fit(client, database, node, world):
    maker, owner = world
    device = _device(client, maker, owner, hardware="mcu-a")
    before = database.snapshot()
    cases = [
        (_assign(owner, device), 403, "unauthorized"),
        (_assign(maker, device, custom={**CUSTOM, "hardware": "mcu-b"}), 422, "incompatible"),
        (_assign(maker, device, custom={**CUSTOM, "product": "other"}), 422, "incompatible"),
        (_assign(maker, device, custom={"product": PRODUCT}), 400, "malformed"),
        (_assign(maker, SigningKey.generate()), 404, "not-found"),
        (_assign(maker, device, sha256="xyz"), 422, "schema-invalid"),
    ]
    for message, status, code in cases:
        response = post(client, message)
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert database.snapshot() == before
