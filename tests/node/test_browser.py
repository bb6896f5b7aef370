"""The landing page and the API docs, as a person sees them in a real browser.

A node serves a copy of the example world (as ``liquidfab up --world examples/ebike``
does) and Debian's headless Chromium, driven by Playwright, looks at it. Assertions are on
what is visible, not on the HTML source.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browser_support import (
    EXAMPLE_WORLD,
    ServedWorld,
    chromium_browser,
    no_horizontal_scroll,
    node_only_page,
    serve_world,
)
from liquidfab.protocol import CONTENT_TYPE, sign_message
from liquidfab.protocol.participants import UPDATE

pytestmark = pytest.mark.browser
expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as b:
        yield b


@pytest.fixture
def served(tmp_path) -> Iterator[ServedWorld]:
    with serve_world(EXAMPLE_WORLD, tmp_path) as world:
        yield world


@pytest.fixture
def page(browser, served) -> Iterator[Any]:
    with node_only_page(browser, served.url) as page:
        yield page


def test_landing_page_shows_the_world(page, served, tmp_path):
    world = served.world
    page.goto(served.url + "/")

    expect(page).to_have_title(f"{world.name} · liquidfab")
    expect(page.get_by_role("heading", name=world.name, exact=True)).to_be_visible()
    participants = page.locator("#participants")
    expect(participants).to_be_visible()
    for p in world.participants:
        row = participants.get_by_role("row").filter(
            has=page.get_by_role("cell", name=p.display_name, exact=True)
        )
        expect(row).to_be_visible()
        expect(row.get_by_role("cell", name=p.role.value, exact=True)).to_be_visible()
    # The world's participants and the node itself.
    expect(page.get_by_test_id("participant-count")).to_have_text(str(len(world.participants) + 1))
    node_did = page.get_by_test_id("node-did")
    expect(node_did).to_be_visible()
    expect(node_did).to_have_text(httpx.get(served.url + "/.well-known/liquidfab").json()["node"])
    expect(page.get_by_test_id("node-description")).to_contain_text(world.description.split()[0])
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "landing.png", full_page=True)


def test_landing_page_fits_a_phone(page, served, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served.url + "/")
    expect(page.get_by_role("heading", name=served.world.name, exact=True)).to_be_visible()
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "landing-phone.png", full_page=True)


def test_a_posted_message_shows_up_after_reload(page, served, tmp_path):
    page.goto(served.url + "/")
    count = int(page.get_by_test_id("message-count").inner_text())

    ada = served.keystore.get("ada")
    spec = json.loads(
        (served.folder / "messages" / "ada-update.json").read_text().replace("{signer}", ada.did)
    )
    message = sign_message(ada, spec["type"], spec["data"], subject=spec.get("subject"))
    response = httpx.post(
        served.url + "/v1/messages",
        content=message.to_json(),
        headers={"content-type": CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    new_name = spec["data"]["display_name"]

    page.reload()
    expect(page.get_by_test_id("message-count")).to_have_text(str(count + 1))
    latest = page.locator("#messages tbody tr").first
    expect(latest.get_by_role("cell", name=UPDATE, exact=True)).to_be_visible()
    expect(latest.get_by_role("cell", name=new_name, exact=True)).to_be_visible()
    expect(
        page.locator("#participants").get_by_role("cell", name=new_name, exact=True)
    ).to_be_visible()
    page.screenshot(path=tmp_path / "landing-after-update.png", full_page=True)


def test_api_docs_render_offline(page, served, tmp_path):
    page.goto(served.url + "/docs")
    title = page.locator(".swagger-ui .info .title")
    expect(title).to_be_visible()
    expect(title).to_contain_text(httpx.get(served.url + "/openapi.json").json()["info"]["title"])
    expect(page.get_by_text("/v1/messages", exact=True).first).to_be_visible()
    page.screenshot(path=tmp_path / "docs.png")


def test_product_page_configurator_narrows_completes_and_prices(page, served):
    """Pick as a customer would: impossible values are disabled, completion fills the rest."""
    page.goto(served.url + "/products")
    page.get_by_role("link", name="Voltwerk Trail").click()
    expect(page.get_by_role("heading", name="Voltwerk Trail", exact=True)).to_be_visible()
    status = page.get_by_test_id("status")
    expect(status).to_contain_text("Valid so far")

    frame = page.locator("#opt-frame_size")
    frame.select_option(label=frame.locator("option").nth(1).inner_text())
    expect(status).to_contain_text("options left")
    motor = page.locator("#opt-motor")
    disabled_before = motor.locator("option:disabled").count()
    # Pick the smallest battery: some motors or extenders no longer fit, and say so.
    battery = page.locator("#opt-battery_wh")
    battery.select_option(index=1)
    expect(status).to_contain_text("options left")
    page.wait_for_function(
        "() => [...document.querySelectorAll('select option')].some(o => o.disabled)"
    )
    disabled = page.locator("select option:disabled")
    assert disabled.count() >= 1
    expect(disabled.first).to_contain_text("not with your choices")
    assert motor.locator("option:disabled").count() >= disabled_before

    page.get_by_role("button", name="Complete at the lowest").click()
    expect(status).to_have_text("Valid and complete")
    price = page.get_by_test_id("price")
    expect(price).not_to_have_text("\u2013")  # the placeholder dash
    assert float(price.inner_text().replace(",", "")) > 0
    expect(page.locator("#bom tbody tr").first).not_to_contain_text("appears here")
    assert page.locator("#bom tbody tr").count() >= 20
    expect(page.locator("#routing tbody tr").first).not_to_contain_text("appears here")
    expect(page.locator("#price-lines tbody tr").last).to_contain_text("Total")

    chart = page.locator("#value-chart")
    chart.scroll_into_view_if_needed()
    page.wait_for_function("() => document.getElementById('value-chart').naturalWidth > 0")


def test_product_page_fits_a_phone(browser, served):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(served.url + "/products/com.voltwerk.trail")
    expect(page.get_by_test_id("status")).to_contain_text("Valid so far")
    no_horizontal_scroll(page)
    context.close()


def test_factory_page_shows_the_line_its_kpis_and_charts(page, served, tmp_path):
    """The world's e-bike line, simulated by the node: diagram, key figures, stations, charts."""
    page.goto(served.url + "/factories")
    listing = page.locator("#factories")
    expect(listing.get_by_test_id("throughput").first).to_contain_text("±")
    page.get_by_role("link", name="Voltwerk e-bike line A").click()
    expect(page.get_by_role("heading", name="Voltwerk e-bike line A", exact=True)).to_be_visible()
    expect(page).to_have_url(served.url + "/factories/com.voltwerk.trail.line-a")

    diagram = page.get_by_test_id("diagram").locator("svg")
    expect(diagram).to_be_visible()
    box = diagram.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 150
    for station in ("frame-prep", "paint", "test-flash", "rework"):
        expect(diagram.locator(f"g[data-station='{station}']")).to_be_visible()
    expect(diagram.locator("g.station.bottleneck")).to_have_count(1)

    throughput = page.get_by_test_id("throughput")
    expect(throughput).to_be_visible()
    assert float(throughput.inner_text().replace(",", "")) > 0
    kpis = page.locator("#kpis")
    expect(kpis).to_be_visible()
    expect(kpis.get_by_role("cell", name="Throughput (jobs/h)")).to_be_visible()
    stations = page.locator("#stations tbody tr")
    expect(stations).to_have_count(7)
    bottleneck = page.get_by_test_id("bottleneck").inner_text()
    expect(page.locator(f"#stations tr[data-station='{bottleneck}'] .tag")).to_have_text(
        "bottleneck"
    )
    expect(page.locator("#ranking li").first).to_contain_text(bottleneck)
    expect(page.get_by_role("link", name="com.voltwerk.trail@1.0.0")).to_be_visible()

    for chart in ("states-chart", "gantt-chart"):
        page.locator(f"#{chart}").scroll_into_view_if_needed()
        page.wait_for_function(f"() => document.getElementById('{chart}').naturalWidth > 0")
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "factory.png", full_page=True)


def test_factory_page_fits_a_phone(browser, served):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(served.url + "/factories/com.voltwerk.trail.line-a")
    expect(page.get_by_test_id("diagram").locator("svg")).to_be_visible()
    expect(page.locator("#kpis")).to_be_visible()
    no_horizontal_scroll(page)
    context.close()
