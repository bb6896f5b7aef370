"""The official CloudEvents SDK reads our messages as the events we mean.

The checks themselves live in tests/cloudevents_check.py, shared with the node's tests.
"""

import json
from pathlib import Path

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat

from cloudevents_check import assert_parses_as_cloudevent, envelope_from_http, sdk_attributes_core
from liquidfab.identity import SigningKey
from liquidfab.protocol import CONTENT_TYPE, Envelope, SettlementLeg, sign_message

# messages --------------------------------------------------------------------

ALICE = SigningKey(bytes(range(32)))
BOB = SigningKey(bytes(range(100, 132)))


def _messages() -> dict[str, Envelope]:
    t = "2026-01-15T09:30:00.000Z"
    register = {
        "did": ALICE.did,
        "role": "manufacturer",
        "display_name": "Alice Bikes GmbH",
        "endpoints": ["https://alice.example/liquidfab"],
    }
    leg = SettlementLeg(
        id="0194a4f0-5200-7b10-8e77-aa00bb11cc05",
        debit_account=f"{BOB.did}/wallet",
        credit_account=f"{ALICE.did}/wallet",
        ledger="LQD",
        amount="1250000",
        code="market.sale",
        flags=["linked"],
    )
    return {
        "register": sign_message(
            ALICE, "org.liquidfab.identity.register", register, subject=ALICE.did, time=t
        ),
        "update": sign_message(
            ALICE,
            "org.liquidfab.identity.update",
            {"did": ALICE.did, "display_name": "Alice Bikes AG"},
            time=t,
        ),
        "extension": sign_message(
            BOB,
            "org.liquidfab.identity.register",
            {"did": BOB.did, "role": "owner", "display_name": "Zo\u00eb \U0001f6b2"},
            time="2026-01-15T10:30:00.5+01:00",
            subject='Zo\u00eb\'s bike \u2014 100% "mine"',
            extensions={"traceparent": "00-abc-01", "zone": "eu-central/\u00e4 50%"},
        ),
        "settlement": sign_message(
            BOB,
            "org.liquidfab.market.purchase",
            {"listing": "alice/assist", "price": 1.25, "\U0001f600": [1e21, -0.0]},
            time=t,
            settlement=[leg],
        ),
        "no-data": sign_message(BOB, "org.liquidfab.test.ping", time="2026-01-15T09:30:00Z"),
    }


MESSAGES = _messages()
VECTORS_DIR = Path(__file__).resolve().parents[2] / "docs" / "vectors"
for _path in sorted(VECTORS_DIR.glob("*.json")):
    _vector = json.loads(_path.read_text(encoding="utf-8"))
    if _vector["expect"] == "valid":
        MESSAGES[f"vector-{_path.stem}"] = Envelope.from_dict(_vector["message"])


# tests -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MESSAGES)
def test_sdk_reads_structured_mode(name):
    env = MESSAGES[name]
    assert_parses_as_cloudevent(env.to_json(), {"Content-Type": CONTENT_TYPE})


@pytest.mark.parametrize("name", MESSAGES)
def test_sdk_reads_binary_mode(name):
    headers, body = MESSAGES[name].to_binary()
    assert_parses_as_cloudevent(body, headers)


def test_sdk_sees_our_extension_attributes():
    env = MESSAGES["settlement"]
    event = ce_http.from_http(
        ce_http.HTTPMessage(headers={"content-type": CONTENT_TYPE}, body=env.to_json()),
        JSONFormat(),
    )
    assert event.get_extension("sigalg") == "Ed25519"
    assert event.get_extension("signature") == env.attributes["signature"]
    assert json.loads(event.get_extension("settlement"))[0]["amount"] == "1250000"
    unknown = MESSAGES["extension"]
    headers, body = unknown.to_binary()
    event = ce_http.from_http(ce_http.HTTPMessage(headers=headers, body=body), JSONFormat())
    assert event.get_extension("zone") == "eu-central/\u00e4 50%"
    assert event.get_subject() == unknown.subject


def _relay(env: Envelope, mode: str) -> Envelope:
    """``env`` read by the SDK from structured mode, written again by the SDK in ``mode``."""
    event = ce_http.from_http(
        ce_http.HTTPMessage(headers={"content-type": CONTENT_TYPE}, body=env.to_json()),
        JSONFormat(),
    )
    write = ce_http.to_binary if mode == "binary" else ce_http.to_structured
    out = write(event, JSONFormat())
    return envelope_from_http(out.body, out.headers)


@pytest.mark.parametrize("name", ["register", "extension", "settlement", "no-data"])
@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_message_relayed_through_the_sdk_still_verifies(name, mode):
    """Re-encoded by the SDK (percent-encoding, its own JSON), a message keeps its signature
    as long as the SDK renders ``time`` back to the same string: whole seconds in UTC."""
    original = MESSAGES[name]
    env = sign_message(
        SigningKey(bytes(32)),
        original.type,
        original.data,
        subject=original.subject,
        time="2026-01-15T09:30:00Z",
        settlement=original.settlement,
        extensions=original.extensions,
    )
    relayed = _relay(env, mode)
    assert relayed.to_dict() == env.to_dict()
    assert relayed.digest == env.digest
    assert relayed.verify()


@pytest.mark.parametrize("name", MESSAGES)
def test_sdk_relay_breaks_the_signature_only_by_rewriting_time(name):
    """The SDK parses ``time`` into a datetime and renders it its own way (".000Z" becomes
    "Z", "+01:00" stays): the reason the spec asks relays to forward attribute strings."""
    env = MESSAGES[name]
    relayed = _relay(env, "binary")
    assert {k: v for k, v in relayed.attributes.items() if k != "time"} == {
        k: v for k, v in env.attributes.items() if k != "time"
    }
    assert relayed.moment == env.moment
    assert relayed.verify() == (relayed.time == env.time)


def test_tampered_message_is_still_a_cloudevent_but_does_not_verify():
    message = MESSAGES["register"].to_dict()
    message["data"] = {**message["data"], "display_name": "Mallory"}
    body = json.dumps(message).encode()
    with pytest.raises(AssertionError, match="does not verify"):
        assert_parses_as_cloudevent(body)
    attributes, data = sdk_attributes_core(body, {"content-type": CONTENT_TYPE})
    assert data["display_name"] == "Mallory"
    assert attributes["signature"] == message["signature"]
