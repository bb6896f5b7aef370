"""Helpers shared by tests: signing and posting messages to a test client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from fastapi.testclient import TestClient

from liquidfab.identity import SigningKey
from liquidfab.protocol import CONTENT_TYPE, sign_message
from liquidfab.protocol.participants import REGISTER


def register_message(key: SigningKey, role: str = "owner", name: str = "Someone", **kw):
    data = {"did": key.did, "role": role, "display_name": name, "endpoints": []}
    return sign_message(key, REGISTER, data, **kw)


def post(client: TestClient, message, **headers):
    body = message.to_json() if hasattr(message, "to_json") else message
    return client.post(
        "/v1/messages", content=body, headers={"content-type": CONTENT_TYPE, **headers}
    )


REQUIRE_SERVICES = os.environ.get("LIQUIDFAB_REQUIRE_SERVICES") == "1"


def service_missing(what: str, why: object) -> NoReturn:
    """Skip the test, or fail it when LIQUIDFAB_REQUIRE_SERVICES=1 (CI sets it)."""
    message = f"{what} is not available ({why})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; LIQUIDFAB_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@contextmanager
def failing_commits(database) -> Iterator[None]:
    """Every write transaction of ``database`` runs its work, then fails as a commit would."""
    from liquidfab.errors import StoreError

    real_write = database.write

    def write_then_fail(fn):
        def run_then_break(conn):
            fn(conn)
            raise StoreError("the commit failed (simulated)")

        return real_write(run_then_break)

    database.write = write_then_fail
    try:
        yield
    finally:
        database.write = real_write


def built_payload(client: TestClient, order_id: str, *, seed: int = 7) -> dict:
    """What a line sends with ``built``: the record of a successful build of the order's
    program on simulated stations, and the did of a fresh device key."""
    import asyncio

    from liquidfab.production import BuildProgram, Executor, SimulatedStation

    program = BuildProgram.model_validate(client.get(f"/v1/orders/{order_id}").json()["program"])
    stations = {s: SimulatedStation(s, seed=seed) for s in program.stations}
    record = asyncio.run(Executor(stations).build(program))
    return {"build": record.model_dump(mode="json"), "device_did": SigningKey.generate().did}


def funded(node, operator_key: SigningKey, role: str, name: str, amount: int) -> SigningKey:
    """A new participant registered with ``role``, its wallet open and holding ``amount``."""
    key = SigningKey.generate()
    node.register(key, role, name)
    node.open_account(key)
    if amount:
        node.mint(operator_key, f"{key.did}/wallet", amount)
    return key


def built_lamp_unit(client: TestClient, maker: SigningKey, owner: SigningKey) -> tuple[str, str]:
    """An order of ``owner`` for the test lamp (``tests/product/lamp.yaml``, published by
    ``maker``) placed with its escrow and built into a unit; its serial and device did."""
    from liquidfab.production.order_messages import ORDER, ORDER_STATUS
    from liquidfab.protocol import SettlementLeg, uuid7

    leg = SettlementLeg(
        id=uuid7(),
        debit_account=f"{owner.did}/wallet",
        credit_account=f"{maker.did}/wallet",
        ledger="LQD",
        amount="39000000",  # the lamp's base price: these choices add nothing
        code="order",
        flags=["pending"],
        timeout_seconds=3600,
    )
    choices = {"shade": "paper", "colour": "white", "dimmer": False, "arm_cm": 20, "watts": 4}
    order = {"order": "o-1", "product": "org.example.lamp", "version": "1.0.0", "choices": choices}
    for message in [
        sign_message(owner, ORDER, order, settlement=[leg]),
        *(sign_message(maker, ORDER_STATUS, {"order": "o-1", "state": s})
          for s in ("accepted", "scheduled", "in-production")),
    ]:  # fmt: skip
        response = post(client, message)
        assert response.status_code == 201, response.text
    built = {"order": "o-1", "state": "built", **built_payload(client, "o-1")}
    response = post(client, sign_message(maker, ORDER_STATUS, built))
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    return result["serial"], result["device_did"]
