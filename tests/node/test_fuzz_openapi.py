"""The node fuzzed against its own /openapi.json: no 5xx, and every refusal is problem+json.

Two kinds of generated traffic go to one node (a fresh SQLite database and a registered
participant), each bounded by ``FUZZ_EXAMPLES`` examples per operation or strategy (50, or
``LIQUIDFAB_FUZZ_EXAMPLES``):

* schemathesis (v4, Python API) loads /openapi.json from the app and runs its examples,
  coverage and fuzzing phases on every published operation, with schema-valid and
  schema-violating data, and its own checks: server errors, status codes, content types,
  response schemas and headers, refused invalid data;
* hypothesis drives POST /v1/messages where a schema cannot reach: messages correctly signed
  by a registered participant or a fresh key (so they get past the signature check to the
  handlers and the database), binary mode with ``ce-*`` headers, batches, and envelopes
  drawn from the published ``LiquidfabMessage`` schema, some of them signed again.

Every answer is checked by ``assert_answer``: status below 500; every 4xx is
application/problem+json whose ``status`` is the HTTP status, with ``code``, ``type``,
``title`` and ``detail``; a 207 holds a receipt or a problem per message. How many cases ran
is printed in the terminal summary ("liquidfab fuzz"), and ``test_fuzz_ran_its_cases`` fails
when fewer ran than the bound promises.

Defects the fuzzing found (a null attribute, a non-latin-1 id, an unescaped Location, a 405
without Allow, refusals documented under the wrong media type) are kept as regression tests
at the end.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from liquidfab.db import Database
from liquidfab.db import messages as message_log
from liquidfab.errors import ProtocolError
from liquidfab.factory.model import layout_from_data
from liquidfab.identity import SigningKey
from liquidfab.node import Node, create_app
from liquidfab.node.core import build_registry
from liquidfab.node.models import Receipt
from liquidfab.product import load_product
from liquidfab.product.aas import aas_id_b64, type_shell_id
from liquidfab.protocol import (
    BATCH_CONTENT_TYPE,
    CONTENT_TYPE,
    REGISTER,
    SIGALG,
    SPECVERSION,
    UPDATE,
    Envelope,
    Role,
    format_time,
)
from liquidfab.protocol.envelope import TIME_PATTERN
from support import post, register_message

PROBLEM_JSON = "application/problem+json"
FUZZ_EXAMPLES = int(os.environ.get("LIQUIDFAB_FUZZ_EXAMPLES", "50"))
FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
CODE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

# Cases sent, by where they came from; printed at the end of the session.
CASES: Counter[str] = Counter()


# -- the schema the node publishes ------------------------------------------------------------


class _SchemaOnlyNode:
    """Enough of a node for the app to describe itself (cf. liquidfab.node.schema_export).

    The cases are generated at import time, before any fixture exists, so the document comes
    from an app without a database; every case is sent to ``fuzz_app``, which serves the same
    document (``test_fuzzed_node_serves_the_schema_the_cases_come_from``).
    """

    def __init__(self) -> None:
        self.registry = build_registry()


schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(_SchemaOnlyNode()),
    config=schemathesis.Config.from_dict({"generation": {"mode": "all"}}),
)


def _structured_mode_only(document: dict[str, Any]) -> dict[str, Any]:
    """The published document with POST /v1/messages taking single structured messages only."""
    document = copy.deepcopy(document)
    operation = document["paths"]["/v1/messages"]["post"]
    content = operation["requestBody"]["content"]
    operation["requestBody"]["content"] = {CONTENT_TYPE: content[CONTENT_TYPE]}
    document["paths"] = {"/v1/messages": {"post": operation}}
    return document


_envelopes = schemathesis.openapi.from_dict(_structured_mode_only(schema.raw_schema))
_submit = _envelopes["/v1/messages"]["POST"]
# JSON drawn from the published LiquidfabMessage schema: valid, and deliberately invalid.
published_envelopes = st.one_of(
    _submit.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
    _submit.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
).map(lambda case: case.body)


# -- what every answer must hold ---------------------------------------------------------------


def assert_problem(problem: Any, status: int | None = None) -> None:
    """An RFC 9457 problem with liquidfab's stable code; ``status`` is the HTTP status."""
    assert isinstance(problem, dict), f"a problem is a JSON object, not {problem!r}"
    missing = {"code", "type", "title", "status", "detail"} - problem.keys()
    assert not missing, f"problem without {sorted(missing)}: {problem}"
    if status is not None:
        assert problem["status"] == status, f"problem status differs from HTTP {status}: {problem}"
    assert isinstance(problem["status"], int) and 400 <= problem["status"] < 500, problem
    assert isinstance(problem["code"], str) and CODE.match(problem["code"]), problem
    assert problem["type"] == f"urn:liquidfab:problem:{problem['code']}", problem
    for field in ("title", "detail"):
        assert isinstance(problem[field], str) and problem[field].strip(), problem


def assert_receipt(receipt: Any) -> None:
    try:
        Receipt.model_validate(receipt, strict=True)
    except ValidationError as e:
        raise AssertionError(f"not a receipt: {receipt!r}\n{e}") from None
    assert receipt["status"] == "accepted", receipt


def assert_answer(status: int, content_type: str, content: bytes) -> Any:
    """No server error; a refusal is problem+json; a batch answer is a receipt or problem each."""
    assert status < 500, f"server error {status}: {content[:500]!r}"
    media = content_type.split(";")[0].strip().lower()
    if status >= 400:
        assert media == PROBLEM_JSON, (
            f"the {status} refusal is {media or 'untyped'}, not {PROBLEM_JSON}: {content[:300]!r}"
        )
        body = json.loads(content)
        assert_problem(body, status)
        return body
    if status == 207:
        body = json.loads(content)
        assert isinstance(body, list), body
        for item in body:
            if isinstance(item, dict) and item.get("status") == "accepted":
                assert_receipt(item)
            else:
                assert_problem(item)
        return body
    return json.loads(content) if media.endswith("json") and content else content


def liquidfab_answer(ctx: schemathesis.CheckContext, response: schemathesis.Response, case) -> None:
    """``assert_answer`` as a schemathesis check."""
    content_type = (response.headers.get("content-type") or [""])[0]
    assert_answer(response.status_code, content_type, response.content)


def check_http(response) -> Any:
    """``assert_answer`` on an httpx response, with the request in the failure message."""
    request = response.request
    try:
        return assert_answer(
            response.status_code, response.headers.get("content-type", ""), response.content
        )
    except AssertionError as e:
        headers = {k: v for k, v in request.headers.items() if k.startswith(("ce-", "content-t"))}
        raise AssertionError(
            f"{e}\nrequest: {request.method} {request.url} {headers}\n"
            f"body: {request.content[:2000]!r}"
        ) from None


# -- the fuzzed node ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_database(tmp_path_factory) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'node.db'}")
    yield db
    db.close()


@pytest.fixture(scope="module")
def fuzz_node(fuzz_database) -> Node:
    return Node(fuzz_database, SigningKey.generate(), title="fuzzed node")


@pytest.fixture(scope="module")
def participant(fuzz_node) -> SigningKey:
    """A key registered as an owner, signing the messages that reach the handlers."""
    key = SigningKey.generate()
    fuzz_node.register(key, "owner", "Fuzzed Owner")
    return key


@pytest.fixture(scope="module")
def fuzz_app(fuzz_node, participant) -> FastAPI:
    return create_app(fuzz_node)


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app) -> Iterator[TestClient]:
    with TestClient(fuzz_app) as client:
        yield client


class _CaseCountReport:
    """Prints how many fuzz cases ran, after pytest's own summary."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not CASES:
            return
        terminalreporter.write_sep("-", f"liquidfab fuzz: {sum(CASES.values())} cases")
        for source, count in sorted(CASES.items()):
            terminalreporter.write_line(f"{count:6d}  {source}")


@pytest.fixture(scope="module", autouse=True)
def _report_case_count(request) -> None:
    plugins = request.config.pluginmanager
    if plugins.get_plugin("liquidfab-fuzz-report") is None:
        plugins.register(_CaseCountReport(), "liquidfab-fuzz-report")


# -- schemathesis: every published operation ---------------------------------------------------


def _excluded_checks(case) -> list:
    excluded = [
        # Messages must be signed by their source, so schema-valid envelopes are still refused
        # (bad-signature, stale-time, unknown-type): "valid data is accepted" cannot hold here.
        schemathesis.checks.positive_data_acceptance,
    ]
    if case.media_type == BATCH_CONTENT_TYPE:
        # A batch of invalid messages is answered 207, one problem per message (the protocol),
        # not 4xx; liquidfab_answer checks each of those problems.
        excluded.append(schemathesis.checks.negative_data_rejection)
    return excluded


@schema.parametrize()
@FUZZ_SETTINGS
def test_openapi_operation(case, fuzz_app):
    CASES[f"schemathesis {case.operation.label}"] += 1
    case.call_and_validate(
        app=fuzz_app,
        excluded_checks=_excluded_checks(case),
        additional_checks=[liquidfab_answer],
    )


def test_fuzzed_node_serves_the_schema_the_cases_come_from(fuzz_client):
    assert fuzz_client.get("/openapi.json").json() == schema.raw_schema


def test_found_resources_conform_to_the_schema(fuzz_app, fuzz_node, participant):
    """The fuzzer cannot guess a registered did or a message id; these are given."""
    lamp = load_product(Path(__file__).parents[1] / "product" / "lamp.yaml")
    fuzz_node.publish_product(participant, lamp)
    stored = fuzz_node.database.read(lambda c: message_log.latest_messages(c, limit=5))
    assert stored  # the participant's registration, at least
    shell = aas_id_b64(type_shell_id(lamp))
    version = {"product_id": lamp.id, "version": lamp.version}
    line = layout_from_data(FUZZ_LAYOUT)
    fuzz_node.publish_factory(participant, line)
    layout = {"layout_id": line.id, "version": line.version}
    factory = "/v1/factories/{layout_id}/{version}"
    cases = [
        schema["/v1/products/{product_id}"]["GET"].Case(path_parameters={"product_id": lamp.id}),
        schema["/v1/products/{product_id}/{version}"]["GET"].Case(path_parameters=version),
        schema["/v1/products/{product_id}/{version}/configure"]["POST"].Case(
            path_parameters=version,
            body={"choices": {"shade": "glass"}, "complete": True, "objective": "cost"},
        ),
        schema["/v1/products/{product_id}/{version}/value"]["GET"].Case(path_parameters=version),
        schema["/aas/shells/{aas_identifier}"]["GET"].Case(
            path_parameters={"aas_identifier": shell}
        ),
        schema["/v1/factories/{layout_id}"]["GET"].Case(path_parameters={"layout_id": line.id}),
        schema[factory]["GET"].Case(path_parameters=layout),
        schema[factory + "/kpis"]["GET"].Case(path_parameters=layout),
        schema[factory + "/diagram.svg"]["GET"].Case(path_parameters=layout),
        *(
            schema[factory + "/charts/{name}.{fmt}"]["GET"].Case(
                path_parameters={**layout, "name": name, "fmt": fmt}
            )
            for name in ("states", "gantt")
            for fmt in ("png", "svg")
        ),
        schema["/v1/participants/{did}"]["GET"].Case(path_parameters={"did": participant.did}),
        schema["/v1/participants"]["GET"].Case(query={"role": "owner"}),
        schema["/v1/messages"]["GET"].Case(query={"limit": 500}),
        *(
            schema["/v1/messages/{source}/{id}"]["GET"].Case(
                path_parameters={"source": row["source"], "id": row["msg_id"]}
            )
            for row in stored
        ),
    ]
    for case in cases:
        CASES[f"given {case.operation.label}"] += 1
        response = case.call_and_validate(app=fuzz_app, additional_checks=[liquidfab_answer])
        assert response.status_code == 200, response.text


# A small line the fuzzed node publishes, so the factory routes have something to serve.
FUZZ_LAYOUT = {
    "layout": {"id": "org.example.fuzz.line", "version": "1.0.0", "name": "Fuzzed line"},
    "stations": [
        {"id": "cut", "buffer": 2, "process": {"kind": "exponential", "mean": 30}},
        {"id": "pack", "buffer": 2, "process": 20},
    ],
    "run": {"jobs": 200, "replications": 2},
}


# -- hypothesis: signed messages, binary mode, batches -----------------------------------------

ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
PRINTABLE = st.characters(exclude_categories=("Cc", "Cs"))
CORE_ATTRIBUTES = {
    "specversion", "id", "source", "type", "time", "subject", "datacontenttype",
    "dataschema", "data", "sigalg", "signature", "settlement",
}  # fmt: skip
keys = st.binary(min_size=32, max_size=32).map(SigningKey)  # fresh, unregistered keys
message_ids = st.one_of(
    st.uuids().map(str),
    st.text(ASCII, min_size=1, max_size=40),
    st.text(PRINTABLE, min_size=1, max_size=40),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
deep_json = st.integers(min_value=28, max_value=40).map(
    lambda depth: json.loads("[" * depth + "]" * depth)
)
display_names = st.text(PRINTABLE, min_size=1, max_size=200)
endpoint_urls = st.one_of(
    st.sampled_from(["https://a.example/", "http://b.example:8080/x", "mqtts://broker.example"]),
    st.from_regex(
        r"(https?|mqtts?)://[a-z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-z0-9/._~-]{0,30})?", fullmatch=True
    ),
)
public_roles = st.sampled_from([r.value for r in Role if r not in (Role.NODE, Role.OPERATOR)])
extension_names = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
    lambda name: name not in CORE_ATTRIBUTES
)
settlements = st.one_of(
    st.text(max_size=30),
    st.lists(st.dictionaries(st.text(max_size=12), json_scalars, max_size=4), max_size=3).map(
        json.dumps
    ),
    st.just(
        '[{"id":"01890a5d-ac96-774b-bcce-b302099a8057","debit_account":"a",'
        '"credit_account":"b","ledger":"LQD","amount":"5","code":"pay"}]'
    ),
)


def _recent(seconds: int) -> str:
    return format_time(datetime.now(UTC) + timedelta(seconds=seconds))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign(key: SigningKey, attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` signed by ``key`` as they are, valid or not (unlike sign_message)."""
    attributes = {k: v for k, v in attributes.items() if k != "signature"}
    try:
        signed_bytes = Envelope(attributes).signed_bytes
    except ProtocolError:  # not canonicalizable (NaN, huge ints...): there is nothing to sign
        return {**attributes, "signature": "A" * 86}
    return {**attributes, "signature": _b64url(key.sign(signed_bytes))}


def _perturb(draw, attributes: dict[str, Any]) -> str:
    """Break one thing in a well-formed message (before it is signed); say what."""
    data = attributes["data"]
    what = draw(st.sampled_from(sorted(PERTURBATIONS)), label="perturbation")
    if what == "data":
        attributes["data"] = draw(st.one_of(json_values, deep_json))
    elif what == "payload field":
        field = draw(st.sampled_from([*sorted(data), "role", "extra"]))
        data[field] = draw(st.one_of(json_values, st.text(max_size=210), st.lists(st.text())))
    elif what == "reserved role":
        data["role"] = draw(st.sampled_from([Role.NODE.value, Role.OPERATOR.value]))
    elif what == "someone else's did":
        data["did"] = draw(keys).did
    elif what == "type":
        attributes["type"] = draw(
            st.one_of(
                st.sampled_from([REGISTER, UPDATE, "org.liquidfab.identity.forget"]),
                st.text(max_size=30),
            )
        )
    elif what == "time":
        attributes["time"] = draw(
            st.one_of(
                st.integers(301, 10**8).map(_recent),
                st.integers(-(10**8), -301).map(_recent),
                st.from_regex(TIME_PATTERN, fullmatch=True),
                st.text(max_size=30),
            )
        )
    elif what == "id":
        attributes["id"] = draw(st.one_of(st.text(ASCII, min_size=190, max_size=210), st.text()))
    elif what == "subject":
        attributes["subject"] = draw(st.one_of(keys.map(lambda k: k.did), st.text(max_size=510)))
    elif what == "extension":
        name = draw(st.one_of(extension_names, st.text(max_size=22)))
        attributes[name] = draw(st.one_of(st.text(max_size=40), json_scalars))
    elif what == "settlement":
        attributes["settlement"] = draw(settlements)
    elif what == "attribute":
        name = draw(st.sampled_from(sorted(attributes)))
        if draw(st.booleans()):
            del attributes[name]
        else:
            attributes[name] = draw(st.one_of(json_values, st.text(max_size=20)))
    return what


PERTURBATIONS = {
    "data", "payload field", "reserved role", "someone else's did", "type", "time", "id",
    "subject", "extension", "settlement", "attribute", "signer",
}  # fmt: skip


@st.composite
def signed_messages(draw, participant: SigningKey) -> dict[str, Any]:
    """A well-formed message signed by its source (a newcomer registering, or the registered
    participant updating its record), then, half the time, one thing in it broken."""
    if draw(st.booleans(), label="newcomer"):
        signer = draw(keys, label="key")
        message_type = REGISTER
        data = {
            "did": signer.did,
            "role": draw(public_roles),
            "display_name": draw(display_names),
            "endpoints": draw(st.lists(endpoint_urls, max_size=8)),
        }
    else:
        signer = participant
        message_type = UPDATE
        data = {"did": participant.did, "display_name": draw(display_names)}
        if draw(st.booleans()):
            data["endpoints"] = draw(st.lists(endpoint_urls, max_size=8))
    attributes: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": draw(message_ids, label="id"),
        "source": signer.did,
        "type": message_type,
        "time": _recent(draw(st.integers(-240, 240), label="seconds from now")),
        "datacontenttype": "application/json",
        "sigalg": SIGALG,
        "data": data,
    }
    if draw(st.booleans()):
        attributes["subject"] = signer.did
    attributes.update(
        draw(st.dictionaries(extension_names, st.text(PRINTABLE, max_size=40), max_size=2))
    )
    if draw(st.booleans(), label="perturbed") and _perturb(draw, attributes) == "signer":
        signer = draw(keys)  # a key that is not the source's
    return sign(signer, attributes)


@st.composite
def resigned_published_envelopes(draw, participant: SigningKey) -> Any:
    """An envelope drawn from the published schema, sometimes made the participant's own."""
    envelope = draw(published_envelopes)
    if isinstance(envelope, dict) and draw(st.booleans()):
        envelope = {
            **envelope,
            "source": participant.did,
            "type": draw(st.sampled_from([REGISTER, UPDATE])),
            "time": format_time(),
        }
        envelope = sign(participant, envelope)
    return envelope


def messages(participant: SigningKey) -> st.SearchStrategy[Any]:
    return st.one_of(signed_messages(participant), resigned_published_envelopes(participant))


def encode(message: Any, ensure_ascii: bool) -> bytes:
    """JSON bytes (lone surrogates kept, so not always UTF-8); bytes are sent as they are."""
    if isinstance(message, bytes):  # a negative case of the published schema: not JSON at all
        return message
    return json.dumps(message, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


# RFC 3986 path characters: a Location made of these is a URI as sent, escaped where needed.
URI_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")


def check_accepted(client: TestClient, response, message: dict[str, Any]) -> None:
    """An accepted message: a receipt for it, and the stored copy is what was signed."""
    receipt = response.json()
    assert_receipt(receipt)
    assert (receipt["source"], receipt["id"]) == (message["source"], message["id"])
    assert receipt["digest"] == Envelope(message).digest
    location = response.headers["location"]
    assert URI_PATH.fullmatch(location), location
    stored = client.get(location)
    CASES["hypothesis read back"] += 1
    assert stored.status_code == 200, stored.text
    assert stored.json()["message"] == message
    assert stored.json()["receipt"] == receipt


@FUZZ_SETTINGS
@given(data=st.data())
def test_structured_mode_fuzz(fuzz_client, participant, data):
    message = data.draw(messages(participant), label="message")
    body = encode(message, ensure_ascii=data.draw(st.booleans(), label="ensure_ascii"))
    CASES["hypothesis structured mode"] += 1
    response = post(fuzz_client, body)
    check_http(response)
    if response.status_code in (200, 201):
        check_accepted(fuzz_client, response, message)
        again = post(fuzz_client, body)  # an identical retry: the first receipt, and 200
        CASES["hypothesis identical retry"] += 1
        check_http(again)
        assert again.status_code == 200, again.text
        assert again.headers["liquidfab-duplicate"] == "true"
        assert again.json() == response.json()


TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # what an HTTP header name can hold
# Characters the CloudEvents HTTP binding leaves unencoded in a ce-* header value.
CE_SAFE = "!#$&'()*+,/:;<=>?@[]^_`{|}~-."
BROKEN_PERCENT = ["%", "%Z", "%ZZ", "%C3", "%FF", "%C3%28", "%ED%A0%80"]
content_types = st.sampled_from(
    [
        "application/json; charset=utf-8",
        "Application/JSON",
        "text/plain",
        "application/octet-stream",
        CONTENT_TYPE,
        None,
    ]
)


BINARY_TWISTS = [
    "none",
    "unencoded printable values",
    "broken percent-encoding",
    "odd headers",
    "no specversion",
    "content-type",
    "body",
]


def _header_value(value: Any, twist: str) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if twist == "unencoded printable values" and all(" " <= c <= "~" for c in text):
        return text
    return quote(text, safe=CE_SAFE, errors="surrogatepass")


@FUZZ_SETTINGS
@given(data=st.data())
def test_binary_mode_fuzz(fuzz_client, participant, data):
    """Attributes in ce-* headers, data in the body: the same message, another encoding.

    The message is sent as the binding says, or with one thing about the encoding wrong.
    """
    message = data.draw(messages(participant), label="message")
    if not isinstance(message, dict):
        message = {"data": message}
    # sampled_from leans to its first element when it explores, so the common case goes first
    twist = data.draw(st.sampled_from(BINARY_TWISTS), label="twist")
    headers: dict[str, str] = {"content-type": "application/json"}
    for name, value in message.items():
        if name not in ("data", "datacontenttype") and value is not None and TOKEN.match(name):
            header = data.draw(st.sampled_from([f"ce-{name}", f"CE-{name}"]), label="name")
            headers[header] = _header_value(value, twist)
    body = encode(message["data"], ensure_ascii=False) if "data" in message else b""
    if twist == "broken percent-encoding":
        name = data.draw(st.sampled_from(sorted(headers)), label="header")
        at = data.draw(st.integers(0, len(headers[name])), label="at")
        bad = data.draw(st.sampled_from(BROKEN_PERCENT), label="bad")
        headers[name] = headers[name][:at] + bad + headers[name][at:]
    elif twist == "odd headers":
        odd = st.sampled_from(["ce-", "ce-Data", "ce-x_y", "ce-data", "ce-time", "ce-ID"])
        extra = st.dictionaries(odd, st.text(ASCII, max_size=10), min_size=1, max_size=2)
        headers.update(data.draw(extra, label="odd headers"))
    elif twist == "no specversion":
        headers = {k: v for k, v in headers.items() if k.lower() != "ce-specversion"}
    elif twist == "content-type":
        content_type = data.draw(content_types, label="content-type")
        del headers["content-type"]
        if content_type is not None:
            headers["content-type"] = content_type
    elif twist == "body":
        body = data.draw(
            st.one_of(
                st.just(b""),
                st.binary(max_size=40),
                json_values.map(lambda v: encode(v, ensure_ascii=True)),
            ),
            label="body",
        )
    CASES["hypothesis binary mode"] += 1
    response = fuzz_client.post("/v1/messages", content=body, headers=headers)
    check_http(response)
    if response.status_code in (200, 201):
        assert_receipt(response.json())


def _json_item(message: Any) -> Any:
    return message.decode("latin-1") if isinstance(message, bytes) else message


@FUZZ_SETTINGS
@given(data=st.data())
def test_batch_fuzz(fuzz_client, participant, data):
    """A cloudevents batch: one receipt or problem per message, in order."""
    items = data.draw(
        st.lists(st.one_of(messages(participant).map(_json_item), json_values), max_size=6),
        label="items",
    )
    if items and data.draw(st.booleans(), label="repeat one"):
        items.append(items[data.draw(st.integers(0, len(items) - 1), label="repeated")])
    shape = data.draw(st.sampled_from(["batch", "batch", "other json", "bytes"]), label="shape")
    if shape == "batch":
        body = encode(items, ensure_ascii=data.draw(st.booleans(), label="ensure_ascii"))
    elif shape == "other json":
        body = encode(data.draw(json_values, label="json"), ensure_ascii=True)
    else:
        body = data.draw(st.binary(max_size=40), label="bytes")
    CASES["hypothesis batch"] += 1
    response = fuzz_client.post(
        "/v1/messages", content=body, headers={"content-type": BATCH_CONTENT_TYPE}
    )
    answers = check_http(response)
    if shape == "batch" and response.status_code == 207:
        assert len(answers) == len(items)
        for item, answer in zip(items, answers, strict=True):
            if answer.get("status") == "accepted":
                assert (answer["source"], answer["id"]) == (item["source"], item["id"])


FUZZ_TESTS = {
    "test_structured_mode_fuzz": "hypothesis structured mode",
    "test_binary_mode_fuzz": "hypothesis binary mode",
    "test_batch_fuzz": "hypothesis batch",
}


def test_fuzz_ran_its_cases(request):
    """How many cases ran (the terminal summary says it too); each fuzz test that was selected
    ran at least its bound, and schemathesis reached every published operation."""
    if request.session.testsfailed:
        pytest.skip("a fuzz test failed; its report says more than a count can")
    print(f"liquidfab fuzz: {sum(CASES.values())} cases")
    for source, count in sorted(CASES.items()):
        print(f"{count:6d}  {source}")
    module = request.node.nodeid.split("::")[0]
    selected = [i.name for i in request.session.items if i.nodeid.startswith(f"{module}::")]
    if not {*FUZZ_TESTS, "test_openapi_operation"} & {name.split("[")[0] for name in selected}:
        pytest.skip("no fuzz test was selected")
    for name in selected:
        if name.startswith("test_openapi_operation["):
            label = name.removeprefix("test_openapi_operation[").removesuffix("]")
            floor = FUZZ_EXAMPLES if label == "POST /v1/messages" else 1
            assert CASES[f"schemathesis {label}"] >= floor, label
        elif name in FUZZ_TESTS:
            assert CASES[FUZZ_TESTS[name]] >= FUZZ_EXAMPLES, name


# -- defects the fuzzing found once, kept as regression tests ---------------------------------


def test_405_refusal_keeps_its_allow_header(fuzz_client):
    """RFC 9110 15.5.6: a 405 must list the allowed methods (schemathesis check ST204)."""
    response = fuzz_client.delete("/healthz")
    check_http(response)
    assert response.status_code == 405
    assert "GET" in response.headers.get("allow", ""), dict(response.headers)


def test_openapi_describes_refusals_as_problem_json():
    """Refusals are sent as problem+json, so that is where their schema belongs."""
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, item in schema.raw_schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    where = f"{method.upper()} {path} {status}"
                    assert response["content"][PROBLEM_JSON].get("schema") == problem, where
                    assert "application/json" not in response["content"], where


def test_accepted_message_with_a_non_latin1_id_is_not_a_server_error(fuzz_client):
    message = register_message(SigningKey.generate(), id="order-\u2713")
    response = post(fuzz_client, message)
    check_http(response)
    assert response.status_code == 201


@pytest.mark.parametrize(
    "message_id",
    [
        pytest.param("a b", id="space"),
        pytest.param("caf\u00e9", id="latin-1"),
        pytest.param("?x", id="question-mark"),
        pytest.param("#x", id="hash"),
        pytest.param("a/b", id="slash"),
        # An id holding "%" is checked against a real server in tests/test_cli.py: the
        # test client unquotes a path twice, so it would ask for another id.
    ],
)
def test_location_header_is_a_uri_that_resolves(fuzz_client, message_id):
    message = register_message(SigningKey.generate(), id=message_id)
    response = post(fuzz_client, message)
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert URI_PATH.fullmatch(location), location
    stored = fuzz_client.get(location)
    assert stored.status_code == 200, stored.text
    assert stored.json()["message"] == message.to_dict()


@pytest.mark.parametrize("content_type", [CONTENT_TYPE, BATCH_CONTENT_TYPE])
def test_null_settlement_is_refused_not_a_500(fuzz_client, participant, content_type):
    message = {
        "specversion": "1.0",
        "id": "null-settlement",
        "source": participant.did,
        "type": UPDATE,
        "time": format_time(),
        "sigalg": "Ed25519",
        "signature": "A" * 86,
        "settlement": None,
    }
    body = [message] if content_type == BATCH_CONTENT_TYPE else message
    response = fuzz_client.post(
        "/v1/messages", content=json.dumps(body), headers={"content-type": content_type}
    )
    check_http(response)
