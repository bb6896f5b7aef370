"""Every refusal code: the right status, problem+json, and not one row changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from liquidfab.identity import SigningKey
from liquidfab.ledger.messages import OPEN_ACCOUNT, TRANSFER
from liquidfab.node import Node, create_app
from liquidfab.protocol import BATCH_CONTENT_TYPE, CONTENT_TYPE, Limits, sign_message
from liquidfab.protocol.envelope import Envelope
from liquidfab.protocol.participants import REGISTER, UPDATE
from liquidfab.protocol.settlement import SettlementLeg
from support import failing_commits, post, register_message

PROBLEM = "application/problem+json"


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code
    assert body["type"] == f"urn:liquidfab:problem:{code}"
    assert body["status"] == status
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    return body


@pytest.fixture
def unchanged(database):
    """Asserts, after the test body, that the database holds exactly what it held before."""
    holder = {}

    def start():
        holder["before"] = database.snapshot()

    yield start
    assert "before" in holder, "call unchanged() once the setup is done"
    assert database.snapshot() == holder["before"]


def test_malformed_json(client, unchanged):
    unchanged()
    assert_refused(post(client, b'{"specversion": "1.0",'), 400, "malformed")
    assert_refused(post(client, b'{"a": 1, "a": 2}'), 400, "malformed")
    assert_refused(post(client, b"\xff\xfe"), 400, "malformed")
    assert_refused(post(client, b'{"x": NaN}'), 400, "malformed")


def test_schema_invalid_envelope(client, registered, unchanged):
    unchanged()
    good = register_message(SigningKey.generate()).to_dict()
    for mutate, attribute in [
        (lambda m: m.pop("id"), "id"),
        (lambda m: m.update(specversion="0.3"), "specversion"),
        (lambda m: m.update(source="did:web:example.org"), "source"),
        (lambda m: m.update(time="yesterday"), "time"),
        (lambda m: m.update(Bad_Name="x"), "Bad_Name"),
        (lambda m: m.update(ext=5), "ext"),
        (lambda m: m.pop("signature"), "signature"),
        (lambda m: m.update(sigalg="RS256"), "sigalg"),
        (lambda m: m.update(settlement=None), "settlement"),
        (lambda m: m.update(subject=None), "subject"),
    ]:
        message = dict(good)
        mutate(message)
        body = assert_refused(post(client, json.dumps(message).encode()), 422, "schema-invalid")
        assert attribute in body["detail"]
    assert_refused(post(client, b"[1, 2]"), 422, "schema-invalid")


def test_schema_invalid_payload(client, registered, unchanged):
    unchanged()
    message = sign_message(registered, UPDATE, {"did": registered.did, "role": "creator"})
    body = assert_refused(post(client, message), 422, "schema-invalid")
    assert "role" in body["detail"]
    message = sign_message(registered, UPDATE, {"did": registered.did})
    assert_refused(post(client, message), 422, "schema-invalid")
    message = sign_message(registered, UPDATE, {"did": registered.did, "endpoints": ["ftp://nope"]})
    assert_refused(post(client, message), 422, "schema-invalid")


def test_unknown_type(client, registered, unchanged):
    unchanged()
    message = sign_message(registered, "org.liquidfab.nothing.here", {"x": 1})
    body = assert_refused(post(client, message), 422, "unknown-type")
    assert "/.well-known/liquidfab" in body["detail"]


@pytest.mark.parametrize("offset", [timedelta(seconds=-301), timedelta(seconds=400)])
def test_stale_time(client, registered, unchanged, offset):
    unchanged()
    moment = datetime.now(UTC) + offset
    message = sign_message(
        registered, UPDATE, {"did": registered.did, "display_name": "x"}, time=moment
    )
    assert_refused(post(client, message), 422, "stale-time")


def test_time_inside_window_is_accepted(client, registered):
    moment = datetime.now(UTC) - timedelta(seconds=200)
    message = sign_message(
        registered, UPDATE, {"did": registered.did, "display_name": "x"}, time=moment
    )
    assert post(client, message).status_code == 201


def test_bad_signature(client, registered, unchanged):
    unchanged()
    message = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "a"})
    tampered = message.to_dict()
    tampered["data"] = {"did": registered.did, "display_name": "b"}
    assert_refused(post(client, json.dumps(tampered).encode()), 401, "bad-signature")
    # signed by another key, claiming the registered source
    other = sign_message(SigningKey.generate(), UPDATE, {"did": registered.did})
    forged = message.to_dict()
    forged["signature"] = other.to_dict()["signature"]
    assert_refused(post(client, json.dumps(forged).encode()), 401, "bad-signature")


def test_unsigned(client, unchanged):
    unchanged()
    message = register_message(SigningKey.generate()).to_dict()
    del message["signature"], message["sigalg"]
    assert_refused(post(client, json.dumps(message).encode()), 422, "schema-invalid")


def test_unknown_signer(client, unchanged):
    unchanged()
    stranger = SigningKey.generate()
    message = sign_message(stranger, UPDATE, {"did": stranger.did, "display_name": "x"})
    assert_refused(post(client, message), 403, "unknown-signer")


def test_unauthorized_register_for_another_key(client, unchanged):
    unchanged()
    victim = SigningKey.generate()
    attacker = SigningKey.generate()
    data = {"did": victim.did, "role": "owner", "display_name": "Not me"}
    assert_refused(post(client, sign_message(attacker, REGISTER, data)), 403, "unauthorized")


def test_unauthorized_update_of_another_record(client, registered, unchanged):
    other = SigningKey.generate()
    assert post(client, register_message(other)).status_code == 201
    unchanged()
    message = sign_message(registered, UPDATE, {"did": other.did, "display_name": "Hijacked"})
    assert_refused(post(client, message), 403, "unauthorized")


@pytest.mark.parametrize("role", ["node", "operator"])
def test_unauthorized_reserved_role(client, unchanged, role):
    unchanged()
    key = SigningKey.generate()
    assert_refused(post(client, register_message(key, role=role)), 403, "unauthorized")


def test_operator_may_take_the_operator_role(client, operator_key):
    assert post(client, register_message(operator_key, role="operator")).status_code == 201


def test_already_registered(client, registered, unchanged):
    unchanged()
    again = register_message(registered, name="Second try")
    assert_refused(post(client, again), 409, "already-registered")


def test_replayed_conflict(client, registered, unchanged):
    first = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "One"})
    assert post(client, first).status_code == 201
    unchanged()
    second = sign_message(
        registered, UPDATE, {"did": registered.did, "display_name": "Two"}, id=first.id
    )
    assert_refused(post(client, second), 409, "replayed-conflict")


def test_identical_replay_applies_nothing_and_returns_first_receipt(client, registered, unchanged):
    first = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "One"})
    created = post(client, first)
    assert created.status_code == 201
    unchanged()
    again = post(client, first)
    assert again.status_code == 200
    assert again.headers["liquidfab-duplicate"] == "true"
    assert again.json() == created.json()


def test_too_large(database, node_key, unchanged):
    limits = Limits(max_message_bytes=2048, max_batch_messages=2)
    node = Node(database, node_key, limits=limits)
    from fastapi.testclient import TestClient

    with TestClient(create_app(node)) as client:
        key = SigningKey.generate()
        assert post(client, register_message(key)).status_code == 201
        unchanged()
        big = sign_message(
            key,
            UPDATE,
            {"did": key.did, "display_name": "x" * 190, "endpoints": ["http://" + "a" * 400] * 5},
        )
        assert_refused(post(client, big), 413, "too-large")
        batch = [register_message(SigningKey.generate()).to_dict() for _ in range(3)]
        response = client.post(
            "/v1/messages",
            content=json.dumps(batch).encode(),
            headers={"content-type": BATCH_CONTENT_TYPE},
        )
        assert_refused(response, 413, "too-large")


def test_an_oversized_message_inside_a_batch_is_refused_alone(database, node_key):
    from fastapi.testclient import TestClient

    node = Node(database, node_key, limits=Limits(max_message_bytes=2048))
    with TestClient(create_app(node)) as client:
        key = SigningKey.generate()
        assert post(client, register_message(key)).status_code == 201
        big = sign_message(
            key,
            UPDATE,
            {"did": key.did, "display_name": "x" * 190, "endpoints": ["http://" + "a" * 400] * 5},
        )
        small = register_message(SigningKey.generate())
        response = client.post(
            "/v1/messages",
            content=json.dumps([big.to_dict(), small.to_dict()]).encode(),
            headers={"content-type": BATCH_CONTENT_TYPE},
        )
        assert response.status_code == 207
        oversized, fine = response.json()
        assert (oversized["status"], oversized["code"]) == (413, "too-large")
        assert fine["status"] == "accepted"
        assert client.get(f"/v1/participants/{key.did}").json()["version"] == 1
        assert client.get(f"/v1/messages/{key.did}/{big.id}").status_code == 404


def test_too_many_settlement_legs(database, node_key, unchanged):
    from fastapi.testclient import TestClient

    node = Node(database, node_key, limits=Limits(max_settlement_legs=2))
    with TestClient(create_app(node)) as client:
        key = SigningKey.generate()
        assert post(client, register_message(key)).status_code == 201
        unchanged()
        legs = [
            SettlementLeg(
                id=f"01890a5d-ac96-774b-bcce-b302099a805{i}",
                debit_account="a",
                credit_account="b",
                ledger="LQD",
                amount="5",
                code="test",
            )
            for i in range(3)
        ]
        message = sign_message(key, UPDATE, {"did": key.did, "display_name": "x"}, settlement=legs)
        assert_refused(post(client, message), 413, "too-large")


def test_settlement_on_a_type_that_carries_none(client, registered, unchanged):
    unchanged()
    leg = SettlementLeg(
        id="01890a5d-ac96-774b-bcce-b302099a8057",
        debit_account=f"{registered.did}/wallet",
        credit_account="did:key:zOther/wallet",
        ledger="LQD",
        amount="5",
        code="test",
    )
    account = {"account": f"{registered.did}/wallet", "ledger": "LQD"}
    message = sign_message(registered, OPEN_ACCOUNT, account, settlement=[leg])
    assert_refused(post(client, message), 422, "settlement-unsupported")


def test_settlement_required_by_ledger_transfer(client, registered, unchanged):
    unchanged()
    message = sign_message(registered, TRANSFER, {"memo": "no legs"})
    assert_refused(post(client, message), 422, "settlement-required")


def test_a_failing_leg_refuses_the_whole_message(client, registered, unchanged):
    unchanged()
    leg = SettlementLeg(
        id="01890a5d-ac96-774b-bcce-b302099a8057",
        debit_account=f"{registered.did}/wallet",
        credit_account="did:key:zOther/wallet",
        ledger="LQD",
        amount="5",
        code="test",
    )
    message = sign_message(
        registered, UPDATE, {"did": registered.did, "display_name": "x"}, settlement=[leg]
    )
    body = assert_refused(post(client, message), 409, "settlement-failed")
    assert (body["leg"], body["result"]) == (0, "debit_account_not_found")


def test_unsupported_media_type(client, registered, unchanged):
    unchanged()
    message = register_message(SigningKey.generate())
    response = client.post(
        "/v1/messages", content=message.to_json(), headers={"content-type": "text/plain"}
    )
    assert_refused(response, 415, "unsupported-media-type")
    headers, body = message.to_binary()
    headers["content-type"] = "text/plain"
    response = client.post("/v1/messages", content=body, headers=headers)
    assert_refused(response, 415, "unsupported-media-type")


def test_not_found(client, registered, unchanged):
    unchanged()
    assert_refused(client.get(f"/v1/participants/{SigningKey.generate().did}"), 404, "not-found")
    assert_refused(client.get(f"/v1/messages/{registered.did}/nope"), 404, "not-found")
    assert_refused(client.get("/v1/nothing"), 404, "not-found")


def test_refused_message_in_a_batch_changes_nothing_but_its_neighbours_commit(client, database):
    good_a, good_b = SigningKey.generate(), SigningKey.generate()
    victim = SigningKey.generate()
    bad = sign_message(
        SigningKey.generate(), REGISTER, {"did": victim.did, "role": "owner", "display_name": "x"}
    )
    batch = [
        register_message(good_a).to_dict(),
        bad.to_dict(),
        {"not": "a message"},
        register_message(good_b).to_dict(),
    ]
    response = client.post(
        "/v1/messages",
        content=json.dumps(batch).encode(),
        headers={"content-type": BATCH_CONTENT_TYPE},
    )
    assert response.status_code == 207
    results = response.json()
    assert [r["status"] for r in results] == ["accepted", 403, 422, "accepted"]
    assert [r.get("code") for r in results] == [None, "unauthorized", "schema-invalid", None]
    dids = {p["did"] for p in client.get("/v1/participants").json()}
    assert {good_a.did, good_b.did} <= dids
    assert victim.did not in dids


def test_handler_refusal_rolls_back_its_own_writes(client, registered, database, node):
    """A handler that writes and then refuses leaves no trace (savepoint rollback)."""
    from pydantic import BaseModel

    from liquidfab.db import participants as directory
    from liquidfab.errors import Refused
    from liquidfab.protocol import MessageType

    class Empty(BaseModel):
        pass

    def write_then_refuse(ctx):
        directory.update_participant(ctx.conn, ctx.signer, {"display_name": "half"}, ctx.now_us)
        raise Refused("unauthorized", "refused after writing, on purpose.", 403)

    node.registry.add(MessageType("org.liquidfab.test.half", Empty, write_then_refuse, "test"))
    before = database.snapshot()
    message = sign_message(registered, "org.liquidfab.test.half", {})
    assert_refused(post(client, message), 403, "unauthorized")
    assert database.snapshot() == before


def test_method_not_allowed(client, registered, unchanged):
    unchanged()
    body = assert_refused(client.put("/v1/messages", content=b"{}"), 405, "method-not-allowed")
    assert "PUT" in body["detail"]
    assert client.put("/v1/messages").headers["allow"] == "GET, POST"


def test_store_failure_mid_message_is_503_and_changes_nothing(
    client, registered, database, monkeypatch
):
    """The handler has written when the log insert fails: its writes go, the node answers 503."""
    from liquidfab.db import messages as message_log
    from liquidfab.errors import StoreError

    def failing_insert(conn, **row):
        raise StoreError("disk I/O error (simulated)")

    before = database.snapshot()
    monkeypatch.setattr(message_log, "insert_message", failing_insert)
    message = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "Lost"})
    body = assert_refused(post(client, message), 503, "store-unavailable")
    assert "disk" not in body["detail"]  # the database's own words stay in the node's log
    assert database.snapshot() == before
    monkeypatch.undo()
    assert post(client, message).status_code == 201  # the same message, retried, applies


def test_failed_commit_is_503_and_changes_nothing(client, registered, database, unchanged):
    unchanged()
    with failing_commits(database):
        message = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "Lost"})
        assert_refused(post(client, message), 503, "store-unavailable")


def test_binary_mode_refusals_change_nothing(client, registered, unchanged):
    unchanged()
    message = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "Bin"})
    headers, body = message.to_binary()
    headers["ce-subject"] = "added-after-signing"
    assert_refused(client.post("/v1/messages", content=body, headers=headers), 401, "bad-signature")


def test_envelope_object_round_trip_is_exact(registered):
    message = sign_message(registered, UPDATE, {"did": registered.did, "display_name": "x"})
    again = Envelope.from_dict(json.loads(message.to_json()))
    assert again.digest == message.digest and again.verify()
    assert CONTENT_TYPE == "application/cloudevents+json"
