"""The envelope: what is signed, what breaks a signature, and what a message may not be."""

import base64
import json
import time
import uuid
from urllib.parse import unquote

import pytest

from liquidfab.errors import ProtocolError
from liquidfab.identity import SigningKey
from liquidfab.protocol import (
    DEFAULT_LIMITS,
    Envelope,
    SettlementLeg,
    canonical_bytes,
    parse_json,
    sign_message,
    uuid7,
)

ALICE = SigningKey(bytes(range(32)))
BOB = SigningKey(bytes(range(1, 33)))
TYPE = "org.liquidfab.market.purchase"


def _leg(n: int = 1, amount: str = "100") -> SettlementLeg:
    return SettlementLeg(
        id=f"0194a4f0-5200-7b10-8e77-{n:012x}",
        debit_account="alice/wallet",
        credit_account="carol/wallet",
        ledger="LQD",
        amount=amount,
        code="market.sale",
    )


def _full(**overrides) -> Envelope:
    """A message with every kind of attribute: data, subject, an extension, settlement."""
    args = {
        "data": {"listing": "carol/app", "qty": 2, "note": "Zo\u00eb \U0001f6b2"},
        "subject": "carol/app",
        "id": "0194a4f0-5200-7b10-8e77-aa00bb11cc04",
        "time": "2026-01-15T09:30:00.000Z",
        "settlement": [_leg(1), _leg(2, "250")],
        "extensions": {"traceparent": "00-abc-01", "zone": "eu"},
    }
    args.update(overrides)
    return sign_message(ALICE, TYPE, **args)


def _received(message: dict) -> Envelope:
    """The message as a receiver parses it (schema-checked, signature not yet checked)."""
    return Envelope.from_dict(message)


# round trip ------------------------------------------------------------------


def test_sign_verify_round_trip():
    env = _full()
    assert env.verify()
    assert env.source == ALICE.did
    assert env.attributes["sigalg"] == "Ed25519"
    assert env.attributes["datacontenttype"] == "application/json"
    again = Envelope.from_dict(parse_json(env.to_json()))
    assert again.verify()
    assert again.digest == env.digest
    assert again.to_dict() == env.to_dict()


def test_signed_bytes_are_jcs_of_all_but_signature():
    env = _full()
    unsigned = {k: v for k, v in env.to_dict().items() if k != "signature"}
    assert env.signed_bytes == canonical_bytes(unsigned)
    assert b'"signature"' not in env.signed_bytes
    assert b'"traceparent":"00-abc-01"' in env.signed_bytes
    assert b'"settlement":"[' in env.signed_bytes


def test_minimal_message_without_data_or_subject_verifies():
    env = sign_message(ALICE, "org.liquidfab.test.ping", time="2026-01-15T09:30:00Z")
    assert "data" not in env.attributes
    assert "subject" not in env.attributes
    assert env.verify()


def test_sign_message_time_defaults_to_now_in_utc_whole_seconds():
    env = sign_message(ALICE, "org.liquidfab.test.ping")
    assert env.time.endswith("Z")
    assert len(env.time) == len("2026-01-15T09:30:00Z")
    assert abs(env.moment.timestamp() - time.time()) < 5


def test_signature_from_another_key_fails():
    env = _full()
    forged = env.to_dict()
    other = sign_message(BOB, TYPE, env.data, id=env.id, time=env.time)
    forged["signature"] = other.attributes["signature"]
    assert not _received(forged).verify()


# tampering -------------------------------------------------------------------


def _replace_settlement(m):
    legs = json.loads(m["settlement"])
    legs[1]["amount"] = "2500"
    m["settlement"] = json.dumps(legs)


TAMPER = {
    "data": lambda m: m["data"].update(qty=3),
    "data-nested-unicode": lambda m: m["data"].update(note="Zoe \U0001f6b2"),
    "time": lambda m: m.update(time="2026-01-15T09:30:00.001Z"),
    "time-same-instant-other-form": lambda m: m.update(time="2026-01-15T09:30:00Z"),
    "type": lambda m: m.update(type="org.liquidfab.market.refund"),
    "id": lambda m: m.update(id="0194a4f0-5200-7b10-8e77-aa00bb11cc05"),
    "subject": lambda m: m.update(subject="carol/other"),
    "source": lambda m: m.update(source=BOB.did),
    "unknown-extension": lambda m: m.update(zone="us"),
    "settlement": _replace_settlement,
    "settlement-same-legs-other-spelling": lambda m: m.update(
        settlement=json.dumps(json.loads(m["settlement"]), indent=1)
    ),
    "remove-subject": lambda m: m.pop("subject"),
    "remove-extension": lambda m: m.pop("traceparent"),
    "remove-settlement": lambda m: m.pop("settlement"),
    "remove-data": lambda m: m.pop("data"),
    "remove-datacontenttype": lambda m: m.pop("datacontenttype"),
    "add-extension": lambda m: m.update(extra="1"),
    "add-dataschema": lambda m: m.update(dataschema="https://example.org/schema.json"),
    "data-null-instead-of-object": lambda m: m.update(data=None),
}


@pytest.mark.parametrize("change", TAMPER)
def test_any_change_breaks_the_signature(change):
    env = _full()
    message = json.loads(json.dumps(env.to_dict()))
    TAMPER[change](message)
    tampered = _received(message)  # still a well-formed message
    assert tampered.digest != env.digest
    assert not tampered.verify()


def test_member_order_and_whitespace_do_not_matter():
    env = _full()
    reordered = dict(reversed(list(env.to_dict().items())))
    pretty = json.dumps(reordered, indent=4, ensure_ascii=True)
    again = _received(parse_json(pretty))
    assert again.verify()
    assert again.digest == env.digest


# extensions ------------------------------------------------------------------


def test_unknown_extensions_are_kept_and_covered():
    env = _full()
    assert env.extensions == {"traceparent": "00-abc-01", "zone": "eu"}
    assert env.to_dict()["zone"] == "eu"
    received = _received(json.loads(env.to_json()))
    assert received.extensions == env.extensions
    assert received.verify()
    assert b'"zone":"eu"' in received.signed_bytes


def test_extensions_cannot_shadow_core_attributes():
    with pytest.raises(ProtocolError) as e:
        sign_message(ALICE, TYPE, {}, extensions={"subject": "x"})
    assert e.value.code == "schema-invalid"


# binary mode -----------------------------------------------------------------


def _binary_round_trip(env: Envelope) -> Envelope:
    headers, body = env.to_binary()
    for name, value in headers.items():
        assert name == name.lower()
        value.encode("ascii")  # header values travel as ASCII
        assert value == value.strip()
    return Envelope.from_binary(headers, parse_json(body) if body else None)


def test_binary_mode_round_trip():
    env = _full()
    headers, body = env.to_binary()
    assert headers["content-type"] == "application/json"
    assert "ce-data" not in headers and "ce-datacontenttype" not in headers
    assert parse_json(body) == env.data
    back = _binary_round_trip(env)
    assert back.to_dict() == env.to_dict()
    assert back.digest == env.digest
    assert back.verify()


def test_binary_mode_percent_encodes_non_ascii_and_specials():
    env = _full(
        subject="Zo\u00eb's bike \u2014 \u21167 \U0001f6b2",
        extensions={"note": 'caf\u00e9 100% "quoted" , ; \\ end', "lead": " spaced "},
    )
    headers, _ = env.to_binary()
    assert headers["ce-subject"] == "Zo%C3%AB's%20bike%20%E2%80%94%20%E2%84%967%20%F0%9F%9A%B2"
    assert "%25" in headers["ce-note"] and "%22" in headers["ce-note"]
    assert headers["ce-lead"] == "%20spaced%20"
    assert unquote(headers["ce-note"]) == env.attributes["note"]
    back = _binary_round_trip(env)
    assert back.subject == env.subject
    assert back.extensions == env.extensions
    assert back.digest == env.digest
    assert back.verify()


def test_binary_mode_without_data():
    env = sign_message(ALICE, "org.liquidfab.test.ping", time="2026-01-15T09:30:00Z")
    assert env.to_binary()[1] == b""
    back = _binary_round_trip(env)
    assert back.digest == env.digest
    assert back.verify()


def test_binary_mode_content_type_parameters_are_ignored():
    env = _full()
    headers, body = env.to_binary()
    headers["Content-Type"] = headers.pop("content-type") + "; charset=utf-8"
    back = Envelope.from_binary(headers, parse_json(body))
    assert back.verify()


def test_binary_mode_refuses_a_message_it_cannot_carry_losslessly():
    attributes = {k: v for k, v in _full().to_dict().items() if k != "signature"}
    del attributes["datacontenttype"]  # optional in CloudEvents and in our schema
    signature = ALICE.sign(canonical_bytes(attributes))
    attributes["signature"] = base64.urlsafe_b64encode(signature).decode().rstrip("=")
    original = Envelope.from_dict(attributes)
    assert original.verify()
    with pytest.raises(ProtocolError, match="structured mode"):
        original.to_binary()
    null_data = sign_message(ALICE, "org.liquidfab.test.ping")
    null_data.attributes["data"] = None
    with pytest.raises(ProtocolError, match="structured mode"):
        null_data.to_binary()


def test_binary_mode_header_that_is_not_utf8_is_malformed():
    headers, body = _full().to_binary()
    headers["ce-subject"] = "%FF"
    with pytest.raises(ProtocolError) as e:
        Envelope.from_binary(headers, parse_json(body))
    assert e.value.code == "malformed"


# schema errors ---------------------------------------------------------------


def _message(**changes) -> dict:
    message = _full().to_dict()
    for name, value in changes.items():
        if value is _DROP:
            message.pop(name)
        else:
            message[name] = value
    return message


_DROP = object()

SCHEMA_ERRORS = {
    "missing-id": ({"id": _DROP}, "'id'"),
    "missing-source": ({"source": _DROP}, "'source'"),
    "missing-signature": ({"signature": _DROP}, "'signature'"),
    "missing-sigalg": ({"sigalg": _DROP}, "'sigalg'"),
    "bad-specversion": ({"specversion": "0.3"}, "'specversion'"),
    "bad-source": ({"source": "https://example.org/alice"}, "'source'"),
    "source-not-ed25519-shape": ({"source": "did:web:example.org"}, "'source'"),
    "bad-type": ({"type": "com.example.thing.happened"}, "'type'"),
    "type-one-segment": ({"type": "org.liquidfab.identity"}, "'type'"),
    "time-without-zone": ({"time": "2026-01-15T09:30:00"}, "'time'"),
    "time-not-a-date": ({"time": "2026-02-30T09:30:00Z"}, "'time'"),
    "time-as-number": ({"time": 1768469400}, "'time'"),
    "bad-extension-name": ({"trace_id": "x"}, "'trace_id'"),
    "extension-name-uppercase": ({"Zone": "x"}, "'Zone'"),
    "extension-name-too-long": ({"a" * 21: "x"}, "'" + "a" * 21 + "'"),
    "non-string-extension": ({"zone": 5}, "'zone'"),
    "extension-object": ({"zone": {"a": "b"}}, "'zone'"),
    "data-base64": ({"data_base64": "AAAA"}, "data_base64"),
    "wrong-datacontenttype": ({"datacontenttype": "text/plain"}, "'datacontenttype'"),
    "datacontenttype-with-charset": (
        {"datacontenttype": "application/json; charset=utf-8"},
        "'datacontenttype'",
    ),
    "bad-sigalg": ({"sigalg": "RS256"}, "'sigalg'"),
    "signature-standard-base64": ({"signature": "+" * 86}, "'signature'"),
    "signature-padded": ({"signature": "A" * 86 + "=="}, "'signature'"),
    "signature-too-short": ({"signature": "A" * 85}, "'signature'"),
    "empty-subject": ({"subject": ""}, "'subject'"),
    "subject-with-newline": ({"subject": "a\nb"}, "'subject'"),
    "id-with-control-char": ({"id": "a\x00b"}, "'id'"),
    "id-too-long": ({"id": "x" * 201}, "'id'"),
    "non-string-subject": ({"subject": 7}, "'subject'"),
}


@pytest.mark.parametrize("case", SCHEMA_ERRORS)
def test_schema_errors_name_the_attribute(case):
    changes, named = SCHEMA_ERRORS[case]
    with pytest.raises(ProtocolError) as e:
        Envelope.from_dict(_message(**changes))
    assert e.value.code == "schema-invalid"
    assert e.value.status == 422
    assert named in e.value.detail


@pytest.mark.parametrize("value", [[], "message", None, 42])
def test_a_message_must_be_an_object(value):
    with pytest.raises(ProtocolError) as e:
        Envelope.from_dict(value)
    assert e.value.code == "schema-invalid"


def test_data_nested_too_deeply_is_refused():
    deep: object = 1
    for _ in range(DEFAULT_LIMITS.max_json_depth + 1):
        deep = [deep]
    with pytest.raises(ProtocolError) as e:
        Envelope.from_dict(_message(data=deep))
    assert e.value.code == "schema-invalid"


def test_time_may_carry_an_offset_and_nine_fraction_digits():
    env = Envelope.from_dict(_message(time="2026-01-15T10:30:00.123456789+01:00"))
    assert env.moment.timestamp() == pytest.approx(1768469400.123456)


# settlement ------------------------------------------------------------------


def test_settlement_is_decoded_into_legs():
    env = _full()
    assert [leg.amount for leg in env.settlement] == ["100", "250"]
    assert Envelope.from_dict(env.to_dict()).settlement == env.settlement
    assert _full(settlement=None).settlement == []


def test_too_many_settlement_legs_is_too_large():
    legs = [_leg(n) for n in range(DEFAULT_LIMITS.max_settlement_legs + 1)]
    with pytest.raises(ProtocolError) as e:
        _full(settlement=legs)
    assert e.value.code == "too-large"
    assert e.value.status == 413
    message = _message(settlement=json.dumps([leg.model_dump(exclude_none=True) for leg in legs]))
    with pytest.raises(ProtocolError) as e:
        Envelope.from_dict(message)
    assert e.value.code == "too-large"


def test_max_settlement_legs_is_accepted():
    legs = [_leg(n) for n in range(DEFAULT_LIMITS.max_settlement_legs)]
    assert len(_full(settlement=legs).settlement) == DEFAULT_LIMITS.max_settlement_legs


_GOOD_LEG = _leg(1).model_dump(exclude_none=True)

MALFORMED_SETTLEMENT = {
    "empty-array": "[]",
    "object-not-array": json.dumps(_GOOD_LEG),
    "empty-leg": "[{}]",
    "leg-not-object": '["x"]',
    "amount-as-number": json.dumps([{**_GOOD_LEG, "amount": 100}]),
    "amount-leading-zero": json.dumps([{**_GOOD_LEG, "amount": "0100"}]),
    "amount-negative": json.dumps([{**_GOOD_LEG, "amount": "-1"}]),
    "amount-fraction": json.dumps([{**_GOOD_LEG, "amount": "1.5"}]),
    "amount-over-128-bits": json.dumps([{**_GOOD_LEG, "amount": "1" * 40}]),
    "lowercase-ledger": json.dumps([{**_GOOD_LEG, "ledger": "lqd"}]),
    "uppercase-id": json.dumps([{**_GOOD_LEG, "id": _GOOD_LEG["id"].upper()}]),
    "unknown-flag": json.dumps([{**_GOOD_LEG, "flags": ["sometimes"]}]),
    "unknown-field": json.dumps([{**_GOOD_LEG, "memo": "hi"}]),
    "bad-code": json.dumps([{**_GOOD_LEG, "code": "Sale!"}]),
    "timeout-zero": json.dumps([{**_GOOD_LEG, "timeout_seconds": 0}]),
    "not-a-string": ["x"],
}


@pytest.mark.parametrize("case", MALFORMED_SETTLEMENT)
def test_malformed_settlement_is_schema_invalid(case):
    with pytest.raises(ProtocolError) as e:
        Envelope.from_dict(_message(settlement=MALFORMED_SETTLEMENT[case]))
    assert e.value.code == "schema-invalid"
    assert e.value.status == 422
    assert "settlement" in e.value.detail


def test_settlement_that_is_not_json_is_schema_invalid():
    with pytest.raises(ProtocolError) as e:
        Envelope.from_dict(_message(settlement="[{"))
    assert e.value.code == "schema-invalid"


# ids -------------------------------------------------------------------------


def test_uuid7_is_version_7_rfc_variant():
    for _ in range(50):
        value = uuid.UUID(uuid7())
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert str(value) == str(value).lower()


def test_uuid7_carries_its_millisecond_time():
    now_ms = int(time.time() * 1000)
    value = uuid.UUID(uuid7())
    assert abs((value.int >> 80) - now_ms) < 5000
    assert uuid.UUID(uuid7(1_700_000_000_123)).int >> 80 == 1_700_000_000_123


def test_uuid7_sorts_by_time():
    stamps = [0, 1, 999, 1_000, 1_700_000_000_000, 1_700_000_000_001, 2**48 - 1]
    ids = [uuid7(ms) for ms in reversed(stamps) for _ in range(3)]
    times = [uuid.UUID(i).int >> 80 for i in sorted(ids)]
    assert times == sorted(times)
    by_time = [uuid7(ms) for ms in stamps]
    assert sorted(by_time) == by_time


def test_uuid7_is_unique():
    assert len({uuid7(1_700_000_000_000) for _ in range(1000)}) == 1000


def test_uuid7_is_a_valid_settlement_leg_id():
    SettlementLeg(**{**_GOOD_LEG, "id": uuid7()})
