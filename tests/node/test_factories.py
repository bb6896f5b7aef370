"""factory.publish through the node, the factory API, the diagram, the charts and the pages."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from liquidfab.factory.messages import PUBLISH, parse_product_ref, publishable_document
from liquidfab.factory.model import layout_from_data, load_layout
from liquidfab.identity import SigningKey
from liquidfab.node.factories import MAX_EVENTS, MAX_JOBS, MAX_REPLICATIONS, bounded_run
from liquidfab.product import load_product, product_from_data
from liquidfab.product.messages import PUBLISH as PUBLISH_PRODUCT
from liquidfab.protocol import sign_message
from support import post, register_message

ROOT = Path(__file__).resolve().parents[2]
LAMP = ROOT / "tests" / "product" / "lamp.yaml"
EBIKE = ROOT / "examples" / "ebike"
SVG = "{http://www.w3.org/2000/svg}"

# A small serial cell: no product, exponential times, so the exact engine runs it fast.
CELL = {
    "layout": {"id": "org.example.cell", "version": "1.0.0", "name": "Example cell"},
    "stations": [
        {"id": "saw", "name": "Saw", "buffer": 2, "process": {"kind": "exponential", "mean": 60}},
        {
            "id": "drill",
            "name": "Drill",
            "buffer": 3,
            "process": {"kind": "exponential", "mean": 50},
        },
        {"id": "pack", "buffer": "unbounded", "process": 40},
    ],
    "run": {"jobs": 400, "replications": 3},
}

# The lamp's line: times from the lamp's routing, a test that sends failures to rework.
LAMP_LINE = {
    "layout": {
        "id": "org.example.lamp.line",
        "version": "1.0.0",
        "name": "Lamp line",
        "product": "org.example.lamp@1.0.0",
    },
    "mix": [
        {"name": "glass", "weight": 2, "choices": {"shade": "glass"}},
        {"name": "paper", "weight": 1, "choices": {"shade": "paper"}},
    ],
    "stations": [
        {"id": "assembly", "servers": 2, "process": {"kind": "routing", "cv": 0.2}},
        {
            "id": "test",
            "process": {"kind": "routing", "cv": 0.1},
            "inspection": {"yield": 0.9, "failed": "fix"},
        },
        {
            "id": "fix",
            "role": "rework",
            "returns_to": "test",
            "buffer": "unbounded",
            "process": 120,
        },
    ],
    "run": {"jobs": 300, "replications": 2},
}


@pytest.fixture
def maker(client) -> SigningKey:
    key = SigningKey.generate()
    assert post(client, register_message(key, "manufacturer", "Line Maker")).status_code == 201
    return key


def publish(client, key: SigningKey, layout: dict):
    return post(client, sign_message(key, PUBLISH, {"layout": layout}))


@pytest.fixture
def cell() -> dict:
    return copy.deepcopy(CELL)


@pytest.fixture
def published(client, maker, cell) -> dict:
    response = publish(client, maker, cell)
    assert response.status_code == 201, response.text
    return response.json()["result"]


@pytest.fixture
def lamp_published(client, maker) -> dict:
    definition = load_product(LAMP).document()
    response = post(client, sign_message(maker, PUBLISH_PRODUCT, {"definition": definition}))
    assert response.status_code == 201, response.text
    return response.json()["result"]


@pytest.fixture
def unchanged(database):
    holder = {}
    yield lambda: holder.setdefault("before", database.snapshot())
    assert "before" in holder
    assert database.snapshot() == holder["before"]


# --- publishing -----------------------------------------------------------------------


def test_publish_keeps_the_layout_and_its_digest(client, maker, cell, published):
    assert published["result"] == "published"
    assert published["owner"] == maker.did
    assert published["digest"] == layout_from_data(cell).digest()
    assert published["latest"] == "1.0.0" and published["product"] is None
    listed = client.get("/v1/factories").json()
    assert [f["id"] for f in listed] == ["org.example.cell"]
    assert listed[0]["owner"] == maker.did and listed[0]["name"] == "Example cell"
    assert [v["version"] for v in listed[0]["versions"]] == ["1.0.0"]
    version = client.get("/v1/factories/org.example.cell/1.0.0").json()
    assert version["document"] == layout_from_data(cell).document()
    assert version["digest"] == published["digest"]
    assert version["owner"] == maker.did
    assert version["published_by"].startswith(maker.did)


def test_the_same_layout_again_is_answered_as_existing(client, maker, cell, published):
    again = publish(client, maker, cell)
    assert again.status_code == 201
    assert again.json()["result"]["result"] == "exists"
    assert len(client.get("/v1/factories/org.example.cell").json()["versions"]) == 1


def test_a_published_version_never_changes(client, maker, cell, published, unchanged):
    cell["stations"][0]["buffer"] = 5
    unchanged()
    response = publish(client, maker, cell)
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "conflict"
    assert "publish a new version" in problem["detail"]
    assert problem["digest"] == published["digest"]


def test_a_new_version_moves_latest_and_the_old_one_stays(client, maker, cell, published):
    newer = copy.deepcopy(cell)
    newer["layout"]["version"] = "1.1.0"
    newer["stations"][0]["buffer"] = 5
    assert publish(client, maker, newer).status_code == 201
    pre = copy.deepcopy(newer)
    pre["layout"]["version"] = "1.1.0-rc.1"
    assert publish(client, maker, pre).status_code == 201
    layout = client.get("/v1/factories/org.example.cell").json()
    assert layout["latest"] == "1.1.0"
    assert [v["version"] for v in layout["versions"]] == ["1.0.0", "1.1.0-rc.1", "1.1.0"]
    old = client.get("/v1/factories/org.example.cell/1.0.0").json()
    assert old["document"]["stations"][0]["buffer"] == 2


def test_another_participant_cannot_publish_into_a_layout_id(client, cell, published, unchanged):
    other = SigningKey.generate()
    assert post(client, register_message(other, "manufacturer", "Copycat")).status_code == 201
    newer = copy.deepcopy(cell)
    newer["layout"]["version"] = "2.0.0"
    unchanged()
    response = publish(client, other, newer)
    assert response.status_code == 403
    assert response.json()["code"] == "unauthorized"
    assert "choose another id" in response.json()["detail"]


def test_an_unregistered_signer_cannot_publish(client, cell, unchanged):
    unchanged()
    response = publish(client, SigningKey.generate(), cell)
    assert response.status_code == 403
    assert response.json()["code"] == "unknown-signer"


@pytest.mark.parametrize(
    ("change", "path", "says"),
    [
        (
            lambda d: d["stations"].append(
                {"id": "saw", "process": 10}  # a second station called saw
            ),
            "stations[3].id",
            "appears twice",
        ),
        (
            lambda d: d["stations"][1].update(inspection={"yield": 0.9, "failed": "nowhere"}),
            "stations[1].inspection.failed",
            "no station 'nowhere'",
        ),
        (
            lambda d: (
                d["stations"][1].update(inspection={"yield": 0.9, "failed": "fix"}),
                d["stations"].append(
                    {"id": "fix", "role": "rework", "returns_to": "saw", "buffer": 2, "process": 9}
                ),
            ),
            "stations[3].buffer",
            "deadlock",
        ),
        (
            lambda d: d.update(arrivals={"kind": "orders", "interarrival": 30}),
            "stations[0]",
            "utilization",
        ),
        (
            lambda d: d["stations"][0].update(process={"kind": "routing"}),
            "layout.product",
            "product",
        ),
        (  # a failure every millisecond, ten years to repair: no run would ever end
            lambda d: d["stations"][1].update(breakdowns={"mtbf": 0.001, "mttr": 3.15e8}),
            "stations[1].breakdowns",
            "available",
        ),
        (
            lambda d: d.update(
                calendar={"days": ["mon"], "shifts": [{"start": "06:00", "end": "06:01"}]}
            ),
            "calendar",
            "minutes a week",
        ),
    ],
    ids=[
        "duplicate-station",
        "unknown-rework",
        "deadlock",
        "overload",
        "routing-no-product",
        "never-available",
        "one-minute-a-week",
    ],
)
def test_an_invalid_layout_is_refused_with_its_problems(
    client, maker, cell, unchanged, change, path, says
):
    change(cell)
    unchanged()
    response = publish(client, maker, cell)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "schema-invalid"
    assert any(p["path"] == path and says in p["message"] for p in problem["problems"]), problem
    assert client.get("/v1/factories").json() == []


def test_a_schema_invalid_layout_is_refused(client, maker, cell, unchanged):
    cell["stations"][0]["buffer"] = -1
    unchanged()
    response = publish(client, maker, cell)
    assert response.status_code == 422
    assert response.json()["code"] == "schema-invalid"
    assert "stations.0.buffer" in response.json()["detail"]


def test_a_layout_naming_a_product_file_is_refused(client, maker, unchanged, lamp_published):
    line = copy.deepcopy(LAMP_LINE)
    line["layout"]["product"] = "lamp.yaml"
    unchanged()
    response = publish(client, maker, line)
    assert response.status_code == 422
    problem = response.json()
    assert problem["problems"][0]["path"] == "layout.product"
    assert "id@version" in problem["problems"][0]["message"]


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("org.example.none@1.0.0", "publish the product first"),
        ("org.example.lamp@9.9.9", "its latest version here is 1.0.0"),
    ],
    ids=["unknown-product", "unknown-version"],
)
def test_a_layout_naming_an_unknown_product_is_refused(
    client, maker, unchanged, lamp_published, ref, says
):
    line = copy.deepcopy(LAMP_LINE)
    line["layout"]["product"] = ref
    unchanged()
    response = publish(client, maker, line)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "schema-invalid"
    assert problem["problems"][0]["path"] == "layout.product"
    assert "holds no product" in problem["detail"] and says in problem["detail"]


def test_routing_times_come_from_the_published_product(client, maker, lamp_published):
    response = publish(client, maker, LAMP_LINE)
    assert response.status_code == 201, response.text
    assert response.json()["result"]["product"] == "org.example.lamp@1.0.0"
    kpis = client.get("/v1/factories/org.example.lamp.line/1.0.0/kpis").json()
    assert kpis["engine"] == "des"  # parallel servers and rework
    assert [s["id"] for s in kpis["stations"]] == ["assembly", "test", "fix"]
    assert kpis["throughput_per_hour"]["mean"] > 0
    svg = client.get("/v1/factories/org.example.lamp.line/1.0.0/diagram.svg").text
    root = ET.fromstring(svg)
    rework = root.find(f".//{SVG}g[@data-station='fix']")
    assert rework is not None and "rework" in rework.get("class")
    page = client.get("/factories/org.example.lamp.line")
    assert page.status_code == 200
    assert 'href="/products/org.example.lamp/1.0.0"' in page.text
    product = client.get("/products/org.example.lamp/1.0.0")  # and back: the lines it is built on
    assert 'href="/factories/org.example.lamp.line/1.0.0"' in product.text


def test_publishable_document_names_the_product_by_id_and_version():
    line = load_layout(EBIKE / "factory.yaml")
    assert line.spec.layout.product == "product.yaml"
    document = publishable_document(line)
    product = load_product(EBIKE / "product.yaml")
    assert document["layout"]["product"] == f"{product.id}@{product.version}"
    assert parse_product_ref(document["layout"]["product"]) == (product.id, product.version)
    assert line.document()["layout"]["product"] == "product.yaml"  # the layout is untouched
    bare = layout_from_data(CELL)
    assert publishable_document(bare) == bare.document()


@pytest.mark.parametrize("ref", ["product.yaml", "a@b", "org.example.lamp", "@1.0.0", "x@1.0"])
def test_parse_product_ref_refuses_other_shapes(ref):
    assert parse_product_ref(ref) is None


# --- what the node serves -------------------------------------------------------------


def test_unknown_layouts_are_not_found(client, published):
    for path in (
        "/v1/factories/org.example.none",
        "/v1/factories/org.example.none/1.0.0",
        "/v1/factories/org.example.cell/9.0.0",
        "/v1/factories/org.example.cell/9.0.0/kpis",
        "/v1/factories/org.example.cell/9.0.0/diagram.svg",
        "/v1/factories/org.example.cell/9.0.0/charts/states.png",
        "/v1/factories/org.example.cell/1.0.0/charts/pie.png",
        "/factories/org.example.none",
        "/factories/org.example.cell/9.0.0",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not-found"


def test_an_unknown_chart_format_is_malformed(client, published):
    response = client.get("/v1/factories/org.example.cell/1.0.0/charts/states.gif")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed"
    assert "png or svg" in response.json()["detail"]


def test_kpis_hold_the_report(client, published):
    kpis = client.get("/v1/factories/org.example.cell/1.0.0/kpis")
    assert kpis.status_code == 200
    body = kpis.json()
    for key in (
        "layout",
        "engine",
        "jobs",
        "replications",
        "throughput_per_hour",
        "lead_time_seconds",
        "wip",
        "lead_time_quantiles",
        "stations",
        "bottleneck",
        "bottleneck_ranking",
        "notes",
    ):
        assert key in body, key
    assert body["layout"]["digest"] == published["digest"]
    assert body["engine"] == "exact" and body["jobs"] == 400 and body["replications"] == 3
    throughput = body["throughput_per_hour"]
    assert throughput["low"] <= throughput["mean"] <= throughput["high"]
    assert [s["id"] for s in body["stations"]] == ["saw", "drill", "pack"]
    for station in body["stations"]:
        assert set(station["shares"]) >= {"working", "blocked", "starved"}
        assert sum(station["shares"].values()) == pytest.approx(1.0)
        assert 0 <= station["oee"] <= 1
    assert body["bottleneck"] == body["bottleneck_ranking"][0]
    assert sorted(body["bottleneck_ranking"]) == ["drill", "pack", "saw"]
    # A version never changes, so neither does its report.
    assert client.get("/v1/factories/org.example.cell/1.0.0/kpis").json() == body


def test_a_version_is_simulated_once(client, node, published):
    item = node.factories.get("org.example.cell", "1.0.0")
    assert not item.simulated
    first = item.report()
    client.get("/v1/factories/org.example.cell/1.0.0/kpis")
    client.get("/v1/factories/org.example.cell/1.0.0/diagram.svg")
    assert node.factories.get("org.example.cell") is item
    assert item.report() is first


def test_the_node_bounds_its_run():
    big = copy.deepcopy(CELL)
    big["run"] = {"jobs": 1_000_000, "replications": 50, "warmup": 5000}
    kwargs, note = bounded_run(layout_from_data(big))
    assert kwargs["jobs"] == MAX_JOBS and kwargs["replications"] == MAX_REPLICATIONS
    assert kwargs["warmup"] < MAX_JOBS
    assert "1000000 jobs" in note and "liquidfab factory simulate" in note
    timed = copy.deepcopy(CELL)
    timed["run"] = {"horizon": 10 * 365 * 86400, "replications": 2}
    kwargs, note = bounded_run(layout_from_data(timed))
    assert "jobs" not in kwargs
    # The slowest station takes 60 s a job: a horizon of about MAX_JOBS of them.
    assert kwargs["horizon"] == pytest.approx(MAX_JOBS * 60)
    assert "horizon" in note
    kwargs, note = bounded_run(layout_from_data(CELL))
    assert note is None
    assert kwargs == {
        "replications": 3,
        "max_replications": 5,
        "jobs": 400,
        "max_events": MAX_EVENTS,  # work is bounded, not only jobs
    }


def test_a_layout_that_cannot_be_simulated_says_why(client, maker, cell):
    cell["run"] = {"jobs": 50, "replications": 2, "warmup": 60}
    assert publish(client, maker, cell).status_code == 201
    response = client.get("/v1/factories/org.example.cell/1.0.0/kpis")
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "simulation-failed"
    assert "warm-up" in problem["detail"]
    page = client.get("/factories/org.example.cell")
    assert page.status_code == 200
    assert "could not be simulated" in page.text
    # The diagram is drawn all the same, without KPIs.
    svg = ET.fromstring(client.get("/v1/factories/org.example.cell/1.0.0/diagram.svg").text)
    assert svg.find(f".//{SVG}g[@class='legend']") is None


def test_the_diagram_is_well_formed_svg_shaded_by_the_kpis(client, published):
    response = client.get("/v1/factories/org.example.cell/1.0.0/diagram.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.text)
    assert root.tag == f"{SVG}svg"
    stations = root.findall(f".//{SVG}g[@data-station]")
    assert [g.get("data-station") for g in stations] == ["saw", "drill", "pack"]
    buffers = [g.get("data-capacity") for g in root.findall(f".//{SVG}g[@data-buffer]")]
    assert buffers == ["2", "3", "\u221e"]
    bottleneck = client.get("/v1/factories/org.example.cell/1.0.0/kpis").json()["bottleneck"]
    marked = [g.get("data-station") for g in stations if "bottleneck" in g.get("class")]
    assert marked == [bottleneck]


@pytest.mark.parametrize(
    ("name", "fmt", "media", "magic"),
    [
        ("states", "png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("gantt", "png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("states", "svg", "image/svg+xml", b"<?xml"),
        ("gantt", "svg", "image/svg+xml", b"<?xml"),
    ],
)
def test_charts(client, published, name, fmt, media, magic):
    response = client.get(f"/v1/factories/org.example.cell/1.0.0/charts/{name}.{fmt}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    assert response.content.startswith(magic)
    if fmt == "svg":
        ET.fromstring(response.content)


def test_pages_show_the_layout_its_kpis_and_charts(client, published):
    listing = client.get("/factories")
    assert listing.status_code == 200
    assert 'href="/factories/org.example.cell"' in listing.text
    assert 'data-testid="throughput"' in listing.text and "open to simulate" not in listing.text
    page = client.get("/factories/org.example.cell")
    assert page.status_code == 200
    for part in (
        '<svg xmlns="http://www.w3.org/2000/svg"',
        'id="kpis"',
        'id="stations"',
        'id="ranking"',
        "/v1/factories/org.example.cell/1.0.0/charts/states.png",
        "/v1/factories/org.example.cell/1.0.0/charts/gantt.png",
    ):
        assert part in page.text, part
    assert client.get("/factories/org.example.cell/1.0.0").text == page.text
    assert '<a href="/factories">Factories</a>' in client.get("/").text


def test_the_page_escapes_what_the_layout_says(client, maker, cell):
    cell["layout"]["name"] = "<script>alert(1)</script> & Co"
    cell["stations"][0]["name"] = '"><img src=x onerror=alert(1)>'
    assert publish(client, maker, cell).status_code == 201
    page = client.get("/factories/org.example.cell").text
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    svg = client.get("/v1/factories/org.example.cell/1.0.0/diagram.svg").text
    ET.fromstring(svg)
    assert "<img" not in svg and "<script" not in svg


def test_node_publish_factory_resolves_the_product(node):
    key = SigningKey.generate()
    node.register(key, "manufacturer", "Voltwerk")
    data = load_product(EBIKE / "product.yaml").document()
    data["manufacturer"] = key.did
    product = product_from_data(data)
    node.publish_product(key, product)
    line = load_layout(EBIKE / "factory.yaml")
    result = node.publish_factory(key, line)
    assert result["result"] == "published"
    assert result["product"] == f"{product.id}@{product.version}"
    assert node.publish_factory(key, line)["result"] == "exists"
    item = node.factories.get(line.id)
    assert item is not None and item.layout.digest() == result["digest"]


def test_a_run_past_the_event_cap_fails_once_and_is_kept(client, maker, cell, monkeypatch):
    import liquidfab.node.factories as factories

    monkeypatch.setattr(factories, "MAX_EVENTS", 500)  # far below what 1,000 jobs need
    cell["stations"][1]["servers"] = 2  # the general engine, where events are counted
    assert publish(client, maker, cell).status_code == 201
    runs = []
    real = factories.simulate
    monkeypatch.setattr(factories, "simulate", lambda *a, **k: runs.append(1) or real(*a, **k))
    url = f"/v1/factories/{cell['layout']['id']}/{cell['layout']['version']}/kpis"
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "simulation-failed"
    assert runs == [1]  # the failure is kept, not run again per request
    assert client.get("/factories").status_code == 200  # the list page still renders
