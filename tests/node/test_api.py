"""The node's HTTP API on its good paths, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from liquidfab.identity import SigningKey
from liquidfab.protocol import (
    BATCH_CONTENT_TYPE,
    PROTOCOL_VERSION,
    parse_json,
    sign_message,
)
from liquidfab.protocol.participants import REGISTER, UPDATE
from support import post, register_message


def _update(key: SigningKey, **changes):
    return sign_message(key, UPDATE, {"did": key.did, **changes})


def test_register_then_read_back(client):
    key = SigningKey.generate()
    message = register_message(key, role="manufacturer", name="Voltwerk Bikes")
    response = post(client, message)
    assert response.status_code == 201
    receipt = response.json()
    assert receipt["source"] == key.did and receipt["id"] == message.id
    assert receipt["type"] == REGISTER
    assert receipt["digest"] == message.digest
    assert receipt["result"]["participant"]["role"] == "manufacturer"
    assert response.headers["location"] == f"/v1/messages/{key.did}/{message.id}"

    stored = client.get(response.headers["location"])
    assert stored.status_code == 200
    assert stored.json()["message"] == message.to_dict()
    assert stored.json()["receipt"] == receipt

    participant = client.get(f"/v1/participants/{key.did}").json()
    assert participant == {
        "did": key.did,
        "role": "manufacturer",
        "display_name": "Voltwerk Bikes",
        "endpoints": [],
        "version": 1,
        "created_us": receipt["received_us"],
        "updated_us": receipt["received_us"],
    }


def test_update_changes_the_record_and_bumps_its_version(client, registered):
    response = post(client, _update(registered, display_name="Ada", endpoints=["https://a.io/"]))
    assert response.status_code == 201, response.text
    record = client.get(f"/v1/participants/{registered.did}").json()
    assert record["display_name"] == "Ada"
    assert record["endpoints"] == ["https://a.io/"]
    assert record["version"] == 2


def test_participants_filter_by_role(client, registered):
    maker = SigningKey.generate()
    assert post(client, register_message(maker, role="manufacturer")).status_code == 201
    owners = client.get("/v1/participants", params={"role": "owner"}).json()
    assert [p["did"] for p in owners] == [registered.did]
    everyone = {p["did"] for p in client.get("/v1/participants").json()}
    assert {registered.did, maker.did} <= everyone


def test_binary_mode_is_accepted_and_stored_as_the_same_message(client, registered):
    message = _update(registered, display_name="Binary Ada")
    headers, body = message.to_binary()
    response = client.post("/v1/messages", content=body, headers=headers)
    assert response.status_code == 201, response.text
    stored = client.get(response.headers["location"]).json()["message"]
    assert stored == message.to_dict()


def test_batch_returns_a_receipt_per_message_in_order(client, registered):
    others = [SigningKey.generate() for _ in range(3)]
    batch = [register_message(k) for k in others] + [_update(registered, display_name="B")]
    body = b"[" + b",".join(m.to_json() for m in batch) + b"]"
    response = client.post(
        "/v1/messages", content=body, headers={"content-type": BATCH_CONTENT_TYPE}
    )
    assert response.status_code == 207
    results = response.json()
    assert [r["id"] for r in results] == [m.id for m in batch]
    assert all(r["status"] == "accepted" for r in results)


def test_a_batch_may_register_then_use_the_new_identity(client):
    key = SigningKey.generate()
    batch = [register_message(key), _update(key, display_name="Later")]
    body = b"[" + b",".join(m.to_json() for m in batch) + b"]"
    response = client.post(
        "/v1/messages", content=body, headers={"content-type": BATCH_CONTENT_TYPE}
    )
    assert [r["status"] for r in response.json()] == ["accepted", "accepted"]
    assert client.get(f"/v1/participants/{key.did}").json()["display_name"] == "Later"


def test_a_message_repeated_inside_one_batch_applies_once(client, registered, database):
    update = _update(registered, display_name="Once")
    clash = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "Other"},
                         id=update.id)  # fmt: skip
    batch = [update, update, clash]
    body = b"[" + b",".join(m.to_json() for m in batch) + b"]"
    response = client.post(
        "/v1/messages", content=body, headers={"content-type": BATCH_CONTENT_TYPE}
    )
    first, repeat, conflict = response.json()
    assert first["status"] == "accepted"
    assert repeat == first  # the stored first receipt, applied once
    assert conflict["code"] == "replayed-conflict" and conflict["status"] == 409
    participant = client.get(f"/v1/participants/{registered.did}").json()
    assert participant["display_name"] == "Once" and participant["version"] == 2
    assert len(database.snapshot()["messages"]) == 2  # the registration and this update


def test_latest_messages_newest_first(client, registered):
    first = _update(registered, display_name="one")
    second = _update(registered, display_name="two")
    for m in (first, second):
        assert post(client, m).status_code == 201
    latest = client.get("/v1/messages", params={"limit": 2}).json()
    assert [r["message"]["id"] for r in latest] == [second.id, first.id]


def test_well_known_names_versions_types_and_limits(client, node):
    doc = client.get("/.well-known/liquidfab").json()
    assert doc["protocol"] == "liquidfab"
    assert doc["versions"] == [{"version": PROTOCOL_VERSION, "path": "/v1"}]
    assert doc["node"] == node.did
    assert {t["type"] for t in doc["message_types"]} == {
        REGISTER,
        UPDATE,
        "org.liquidfab.ledger.open-account",
        "org.liquidfab.ledger.transfer",
        "org.liquidfab.ledger.mandate",
        "org.liquidfab.ledger.mint",
        "org.liquidfab.product.publish",
        "org.liquidfab.product.retire",
        "org.liquidfab.factory.publish",
        "org.liquidfab.production.order",
        "org.liquidfab.production.order-status",
        "org.liquidfab.production.supply-request",
        "org.liquidfab.production.supply-status",
        "org.liquidfab.fleet.assign",
        "org.liquidfab.fleet.entitlement",
        "org.liquidfab.fleet.entitlement-revoke",
        "org.liquidfab.fleet.register-device",
        "org.liquidfab.fleet.rollout",
        "org.liquidfab.fleet.group",
        "org.liquidfab.fleet.consent",
        "org.liquidfab.fleet.rollout-control",
        "org.liquidfab.fleet.twin-desired",
        "org.liquidfab.fleet.twin-reported",
        "org.liquidfab.market.claim",
        "org.liquidfab.market.transfer",
        "org.liquidfab.market.accept",
        "org.liquidfab.market.publishers",
        "org.liquidfab.market.fee-schedule",
        "org.liquidfab.market.listing",
        "org.liquidfab.market.publish",
        "org.liquidfab.market.buy",
        "org.liquidfab.market.subscribe",
        "org.liquidfab.market.cancel",
        "org.liquidfab.market.bill",
        "org.liquidfab.market.usage",
        "org.liquidfab.market.settle-usage",
    }
    assert doc["limits"]["max_message_bytes"] == node.limits.max_message_bytes


def test_schemas_and_health(client, registered):
    schemas = client.get("/v1/schemas").json()
    assert schemas[REGISTER]["properties"]["role"]
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["participants"] >= 1 and health["messages"] >= 1


def test_openapi_documents_the_envelope_and_problems(client):
    doc = client.get("/openapi.json").json()
    assert "LiquidfabMessage" in doc["components"]["schemas"]
    post_op = doc["paths"]["/v1/messages"]["post"]
    assert set(post_op["requestBody"]["content"]) >= {
        "application/cloudevents+json",
        BATCH_CONTENT_TYPE,
    }
    assert "application/problem+json" in post_op["responses"]["409"]["content"]


def test_the_same_message_from_many_threads_applies_once(client, registered, database):
    """Concurrent identical retries: one 201, the rest the stored receipt, one row."""
    message = _update(registered, display_name="Raced")
    body = message.to_json()
    barrier = threading.Barrier(8)

    def send(_: int):
        barrier.wait()
        return post(client, body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201]
    assert len({r.json()["digest"] for r in responses}) == 1
    assert client.get(f"/v1/participants/{registered.did}").json()["version"] == 2


def test_concurrent_distinct_messages_all_apply(client):
    keys = [SigningKey.generate() for _ in range(16)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda k: post(client, register_message(k)).status_code, keys))
    assert statuses == [201] * 16
    assert client.get("/healthz").json()["participants"] == 16


def test_unknown_attributes_are_kept_and_returned_signed(client, registered):
    message = sign_message(
        registered,
        UPDATE,
        {"did": registered.did, "display_name": "Ext"},
        extensions={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    response = post(client, message)
    assert response.status_code == 201
    stored = client.get(response.headers["location"]).json()["message"]
    assert stored["traceparent"] == message.attributes["traceparent"]
    assert parse_json(message.to_json())["signature"] == stored["signature"]


def _race(first, second, messages):
    """Submit two messages at once through two dispatchers; their (status, code) pairs."""
    barrier = threading.Barrier(2)

    def go(dispatcher, message):
        barrier.wait()
        outcome = dispatcher.submit(message)
        return outcome.status, outcome.body.get("code")

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(go, d, m) for d, m in zip((first, second), messages, strict=True)]
        return sorted(f.result() for f in futures)


def test_a_message_committed_after_the_batch_lookup_is_answered_as_a_retry(
    database_url, monkeypatch
):
    """The race above, made certain: the batch's log lookup misses a message that another
    node has committed, so the handler refuses on that message's own effect. The answer
    is the retry receipt (or the clash), not the handler's refusal."""
    from liquidfab.db import Database
    from liquidfab.db import messages as message_log
    from liquidfab.node.core import build_registry
    from liquidfab.protocol.dispatcher import Dispatcher

    nodes = [Dispatcher(Database.open(database_url), build_registry()) for _ in range(2)]
    try:
        key = SigningKey.generate()
        first = register_message(key, name="a")
        assert nodes[0].submit(first).status == 201
        monkeypatch.setattr(message_log, "get_messages", lambda conn, keys: {})
        again = nodes[1].submit(first)
        assert (again.status, again.duplicate) == (200, True)
        assert again.body["digest"] == first.digest
        clash = nodes[1].submit(register_message(key, id=first.id, name="b"))
        assert (clash.status, clash.body["code"]) == (409, "replayed-conflict")
        other = nodes[1].submit(register_message(key, name="c"))
        assert (other.status, other.body["code"]) == (409, "already-registered")
    finally:
        for node in nodes:
            node.close()
            node.database.close()


def test_two_nodes_on_one_database_racing_on_registrations(database_url):
    """Two nodes (two dispatchers, two engines) on one database: the loser of a race gets
    the answer a retry or a clash would get, never a server error."""
    from liquidfab.db import Database
    from liquidfab.node.core import build_registry
    from liquidfab.protocol.dispatcher import Dispatcher

    nodes = [Dispatcher(Database.open(database_url), build_registry()) for _ in range(2)]
    try:
        for _ in range(10):
            key = SigningKey.generate()
            same = register_message(key)
            assert _race(*nodes, [same, same]) == [(200, None), (201, None)]
            other = SigningKey.generate()
            clash = [register_message(other, id="x", name="a"), register_message(other, id="x")]
            assert _race(*nodes, clash) == [(201, None), (409, "replayed-conflict")]
            third = SigningKey.generate()
            twice = [register_message(third, name="a"), register_message(third, name="b")]
            assert _race(*nodes, twice) == [(201, None), (409, "already-registered")]
    finally:
        for node in nodes:
            node.close()
            node.database.close()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/orders?before_us=0.0",
        "/v1/orders?limit=1e2",
        "/v1/ledger/transfers?before=0.0",
        "/v1/devices?limit=1.0",
        "/v1/rollouts?limit=2.5",
        "/v1/production/runs?limit=1.0",
    ],
)
def test_integer_parameters_refuse_fractions_as_the_schema_says(client, path):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "schema-invalid"
    assert "an integer, without a fraction" in response.json()["detail"]
