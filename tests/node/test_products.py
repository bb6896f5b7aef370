"""product.publish through the node, the product API, the configurator API and the AAS paths."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liquidfab.identity import SigningKey
from liquidfab.product import load_product
from liquidfab.product.aas import aas_id_b64, verify_environment
from liquidfab.product.messages import PUBLISH
from liquidfab.protocol import sign_message
from support import post, register_message

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"


@pytest.fixture
def maker(client) -> SigningKey:
    key = SigningKey.generate()
    assert post(client, register_message(key, "manufacturer", "Lamp Maker")).status_code == 201
    return key


@pytest.fixture
def lamp() -> dict:
    return load_product(LAMP).document()


def publish(client, key: SigningKey, definition: dict):
    return post(client, sign_message(key, PUBLISH, {"definition": definition}))


@pytest.fixture
def published(client, maker, lamp) -> dict:
    response = publish(client, maker, lamp)
    assert response.status_code == 201, response.text
    return response.json()["result"]


@pytest.fixture
def unchanged(database):
    holder = {}
    yield lambda: holder.setdefault("before", database.snapshot())
    assert "before" in holder
    assert database.snapshot() == holder["before"]


def test_publish_keeps_the_definition_and_its_digest(client, maker, lamp, published):
    assert published["result"] == "published"
    assert published["manufacturer"] == maker.did
    assert published["digest"] == load_product(LAMP).digest()
    listed = client.get("/v1/products").json()
    assert [p["id"] for p in listed] == ["org.example.lamp"]
    assert listed[0]["manufacturer"] == maker.did and listed[0]["latest"] == "1.0.0"
    version = client.get("/v1/products/org.example.lamp/1.0.0").json()
    assert version["definition"] == lamp
    assert version["digest"] == published["digest"]


def test_the_same_definition_again_is_answered_as_existing(client, maker, lamp, published):
    again = publish(client, maker, lamp)
    assert again.status_code == 201
    assert again.json()["result"]["result"] == "exists"
    assert len(client.get("/v1/products/org.example.lamp").json()["versions"]) == 1


def test_a_published_version_never_changes(client, maker, lamp, published, unchanged):
    changed = copy.deepcopy(lamp)
    changed["pricing"]["base"] = "45"
    unchanged()
    response = publish(client, maker, changed)
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "conflict"
    assert "publish a new version" in problem["detail"]


def test_a_new_version_moves_latest_and_the_old_one_stays(client, maker, lamp, published):
    newer = copy.deepcopy(lamp)
    newer["version"] = "1.1.0"
    newer["pricing"]["base"] = "45"
    assert publish(client, maker, newer).status_code == 201
    pre = copy.deepcopy(lamp)
    pre["version"] = "1.1.0-rc.1"
    assert publish(client, maker, pre).status_code == 201
    product = client.get("/v1/products/org.example.lamp").json()
    assert product["latest"] == "1.1.0"
    assert [v["version"] for v in product["versions"]] == ["1.0.0", "1.1.0-rc.1", "1.1.0"]
    old = client.get("/v1/products/org.example.lamp/1.0.0").json()
    assert old["definition"]["pricing"]["base"] == lamp["pricing"]["base"]


def test_another_manufacturer_cannot_publish_into_a_product_id(client, lamp, published, unchanged):
    other = SigningKey.generate()
    assert post(client, register_message(other, "manufacturer", "Copycat")).status_code == 201
    newer = copy.deepcopy(lamp)
    newer["version"] = "2.0.0"
    unchanged()
    response = publish(client, other, newer)
    assert response.status_code == 403
    assert response.json()["code"] == "unauthorized"


def test_the_named_manufacturer_must_sign(client, maker, lamp, unchanged):
    lamp["manufacturer"] = SigningKey.generate().did
    unchanged()
    response = publish(client, maker, lamp)
    assert response.status_code == 403
    assert "sign with it" in response.json()["detail"]


def test_an_unregistered_signer_cannot_publish(client, lamp, unchanged):
    unchanged()
    response = publish(client, SigningKey.generate(), lamp)
    assert response.status_code == 403
    assert response.json()["code"] == "unknown-signer"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d["constraints"][0].update(rule="heat <= lumens"), "unknown name 'lumens'"),
        (lambda d: d["bom"].append({"part": "no-such-part"}), "unknown part 'no-such-part'"),
        (
            lambda d: (
                d["parts"][0].update(components=[{"part": "head"}])
                or d["parts"][5]["components"].append({"part": "shade-paper"})
            ),
            "cyclic",
        ),
        (lambda d: d["routing"][0].update(time="__import__('os')"), "may be called"),
    ],
    ids=["unknown-name", "unknown-part", "cycle", "unsafe"],
)
def test_an_invalid_definition_is_refused_with_its_problems(
    client, maker, lamp, unchanged, change, says
):
    change(lamp)
    unchanged()
    response = publish(client, maker, lamp)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "schema-invalid"
    assert any(says in p["message"] for p in problem["problems"]), problem


def test_a_definition_with_no_valid_variant_is_refused(client, maker, lamp, unchanged):
    lamp["constraints"].append(
        {"id": "impossible", "message": "The arm is never short.", "rule": "arm_cm > 60"}
    )
    unchanged()
    response = publish(client, maker, lamp)
    assert response.status_code == 422
    problem = response.json()
    assert "no valid variant" in problem["detail"] or any(
        "no valid variant" in p["message"] for p in problem["problems"]
    )
    assert any("impossible" in p["path"] for p in problem["problems"])


def test_a_schema_invalid_definition_is_refused(client, maker, lamp, unchanged):
    del lamp["pricing"]
    unchanged()
    response = publish(client, maker, lamp)
    assert response.status_code == 422
    assert "pricing" in response.json()["detail"]


def test_unknown_products_are_not_found(client):
    for path in (
        "/v1/products/org.example.none",
        "/v1/products/org.example.none/1.0.0",
        "/products/org.example.none",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not-found"


def test_configure_narrows_the_choices(client, published):
    url = "/v1/products/org.example.lamp/1.0.0/configure"
    start = client.post(url, json={"choices": {}}).json()
    assert start["check"]["valid"] is True
    assert set(start["domains"]["possible"]["colour"]) == {"white", "black", "brass"}
    glass = client.post(url, json={"choices": {"shade": "glass"}}).json()
    assert glass["domains"]["possible"]["colour"] == ["white"]
    assert glass["domains"]["forced"]["colour"] == "white"


def test_configure_explains_a_conflict(client, published):
    url = "/v1/products/org.example.lamp/1.0.0/configure"
    res = client.post(url, json={"choices": {"shade": "glass", "colour": "brass"}}).json()
    assert res["check"]["valid"] is False
    sentences = " ".join(res["check"]["conflict"]["sentences"])
    assert "Brass" in sentences or "brass" in sentences


def test_configure_completes_and_prices(client, published):
    url = "/v1/products/org.example.lamp/1.0.0/configure"
    res = client.post(url, json={"choices": {"dimmer": True}, "complete": True}).json()
    resolved = res["resolved"]
    assert resolved["choices"]["dimmer"] is True
    assert {line["id"] for line in resolved["price_lines"]} >= {"base", "dimmer"}
    assert res["completion"]["optimal"] is True
    full = client.post(url, json={"choices": resolved["choices"]}).json()
    assert full["resolved"]["price"] == resolved["price"]
    assert full["price"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {"choices": {"shade": "plastic"}},
        {"choices": {"no_such_option": 1}},
        {"choices": {"watts": "4.25"}},
        {"choices": {}, "complete": True, "objective": "lumens * 2"},
        {"choices": {}, "surprise": 1},
    ],
)
def test_configure_refuses_bad_choices(client, published, body):
    response = client.post("/v1/products/org.example.lamp/1.0.0/configure", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_value_report_and_chart(client, published):
    report = client.get("/v1/products/org.example.lamp/1.0.0/value")
    assert report.status_code == 200
    chart = client.get("/v1/products/org.example.lamp/1.0.0/value.png")
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_aas_paths_serve_verified_shells_and_submodels(client, published):
    shells = client.get("/aas/shells").json()["result"]
    assert len(shells) == 1
    shell = shells[0]
    assert shell["assetInformation"]["assetKind"] == "Type"
    one = client.get(f"/aas/shells/{aas_id_b64(shell['id'])}").json()
    assert one == shell
    submodels = []
    for ref in shell["submodels"]:
        sm_id = ref["keys"][0]["value"]
        response = client.get(f"/aas/submodels/{aas_id_b64(sm_id)}")
        assert response.status_code == 200, sm_id
        submodels.append(response.json())
    assert verify_environment({"assetAdministrationShells": [one], "submodels": submodels}) == []
    listed = client.get("/aas/submodels").json()["result"]
    assert sorted(s["id"] for s in listed) == sorted(s["id"] for s in submodels)
    assert client.get(f"/aas/shells/{aas_id_b64('urn:nothing')}").status_code == 404
    assert client.get(f"/aas/submodels/{aas_id_b64(shell['id'])}").status_code == 404


def test_product_pages_render(client, published):
    listing = client.get("/products")
    assert listing.status_code == 200 and "Desk lamp" in listing.text
    page = client.get("/products/org.example.lamp")
    assert page.status_code == 200
    for text in ("Configure", "paper-runs-cool", "Circadian colour", "value.png"):
        assert text in page.text


_NAMES = st.sampled_from(["shade", "colour", "dimmer", "arm_cm", "watts", "nope", "Shade", ""])
_VALUES = st.one_of(
    st.sampled_from(["paper", "glass", "metal", "white", "brass", "true", "no", "6.5", "1e3"]),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    choices=st.dictionaries(_NAMES, _VALUES, max_size=6),
    complete=st.booleans(),
    objective=st.sampled_from(["price", "cost", "time", "watts * arm_cm", "-heat", "x +", "1/0"]),
)
def test_configure_answers_any_choices_with_a_result_or_a_problem(
    client, published, choices, complete, objective
):
    response = client.post(
        "/v1/products/org.example.lamp/1.0.0/configure",
        json={"choices": choices, "complete": complete, "objective": objective},
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["code"] == "schema-invalid"
    else:
        body = response.json()
        assert body["check"]["valid"] in (True, False)
        if body["check"]["valid"] is False:
            assert body["check"]["conflict"]["sentences"]
