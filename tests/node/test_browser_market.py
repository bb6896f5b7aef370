"""The market's dashboard as a person sees it in a real browser.

A node serves a copy of the example world over HTTP. Two creators claim @acme-ai and
@trailworks and list an app each, trailworks releases its range boost, and Ada buys it
for a bike (the ``Market`` helpers, through an HTTP client, as peers would). Headless
Chromium then searches the store, opens the app and its creator's page; assertions are
on what is visible.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import expect

from browser_support import (
    EXAMPLE_WORLD,
    ServedWorld,
    chromium_browser,
    no_horizontal_scroll,
    node_only_page,
    serve_world,
)
from market.market_support import BOOST, COACH, Market

pytestmark = pytest.mark.browser
expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ServedWorld]:
    """The example world without its market section: the test claims and lists itself."""
    source = tmp_path_factory.mktemp("source") / EXAMPLE_WORLD.name
    shutil.copytree(EXAMPLE_WORLD, source, ignore=shutil.ignore_patterns("keys", "state"))
    world = yaml.safe_load((source / "world.yaml").read_text(encoding="utf-8"))
    world.pop("market", None)
    (source / "world.yaml").write_text(yaml.safe_dump(world, sort_keys=False), encoding="utf-8")
    with serve_world(source, tmp_path_factory.mktemp("world")) as served:
        yield served


@pytest.fixture(scope="module")
def sold(served, tmp_path_factory) -> None:
    """Both apps listed, the range boost released and bought once."""
    with httpx.Client(base_url=served.url) as client:
        market = Market(served.folder, served.node, client, tmp_path_factory.mktemp("market"))
        assert "result" in market.list_app(market.acme, COACH)
        assert "result" in market.list_app(market.trail, BOOST)
        assert "result" in market.release(market.trail, BOOST, "1.0.0", b"range boost 1.0.0")
        _, device = market.device()
        assert "result" in market.buy(BOOST["app"], device)


@pytest.fixture
def page(browser, served, sold) -> Iterator[Any]:
    with node_only_page(browser, served.url) as page:
        yield page


def test_search_the_store_open_an_app_and_its_creator(page, served, tmp_path):
    page.goto(served.url + "/")
    page.get_by_role("navigation").get_by_role("link", name="Store").click()
    expect(page.get_by_role("heading", name="Store", exact=True)).to_be_visible()
    expect(page.get_by_test_id("count-listed")).to_have_text("2")
    rows = page.locator("#app-list tbody tr")
    expect(rows).to_have_count(2)
    coach = rows.filter(has_text="AI riding coach")
    expect(coach.get_by_test_id("price")).to_have_text("4.99 LQD / month")
    expect(coach).to_contain_text("not released")
    page.screenshot(path=tmp_path / "store.png", full_page=True)

    page.get_by_role("searchbox", name="Search").fill("assist map")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(served.url + "/store?q=assist+map&product=")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_test_id("price")).to_have_text("19.99 LQD once")
    expect(rows.first).to_contain_text("1.0.0")

    rows.first.get_by_role("link", name="Range boost").click()
    expect(page).to_have_url(served.url + "/store/@trailworks/range-boost")
    expect(page.get_by_role("heading", name="Range boost", exact=True)).to_be_visible()
    expect(page.get_by_test_id("price")).to_have_text("19.99 LQD once")
    expect(page.locator("#summary")).to_have_text(BOOST["summary"])
    expect(page.locator("#releases tbody tr")).to_have_count(1)
    expect(page.locator("#releases")).to_contain_text("@trailworks/range-boost/1.0.0")
    expect(page.locator("#buy-command")).to_have_text(
        "liquidfab market buy --app @trailworks/range-boost --device DID --key KEY "
        f"--node {served.url}"
    )
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "app.png", full_page=True)

    page.get_by_role("link", name="@trailworks", exact=True).click()
    expect(page.get_by_role("heading", name="@trailworks", exact=True)).to_be_visible()
    expect(page.get_by_test_id("owner")).to_have_text("trailworks")
    expect(page.get_by_test_id("earned")).to_have_text("16.9915 LQD")
    expect(page.get_by_test_id("charges")).to_have_text("1")
    app_row = page.locator("#creator-apps tbody tr")
    expect(app_row).to_have_count(1)
    expect(app_row.get_by_test_id("app-earned")).to_have_text("16.9915")
    chart = page.get_by_role("img", name="Earnings per 30 days, at most 16.9915 LQD")
    expect(chart).to_be_visible()
    bar = chart.locator("rect.bar")
    expect(bar).to_have_count(1)
    box, plot = bar.bounding_box(), chart.bounding_box()
    assert box and plot and box["height"] > plot["height"] * 0.6 and box["width"] > 10
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "creator.png", full_page=True)


def test_a_creator_without_sales_has_no_chart_and_unknown_pages_say_so(page, served):
    page.goto(served.url + "/creators/@acme-ai")
    expect(page.get_by_test_id("earned")).to_have_text("0.00 LQD")
    expect(page.locator("#no-earnings")).to_be_visible()
    expect(page.locator("svg")).to_have_count(0)
    page.get_by_role("link", name="AI riding coach").click()
    expect(page.locator("#buy-command")).to_contain_text("liquidfab market subscribe")

    page.goto(served.url + "/store/@acme-ai/espresso")
    expect(page.get_by_role("heading", name="No app @acme-ai/espresso")).to_be_visible()
    page.goto(served.url + "/creators/@nobody")
    expect(page.get_by_role("heading", name="No territory @nobody")).to_be_visible()


@pytest.mark.parametrize(
    "path", ["/store", "/store/@trailworks/range-boost", "/creators/@trailworks"]
)
def test_market_pages_fit_a_phone(page, served, path, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served.url + path)
    expect(page.locator("h1.page")).to_be_visible()
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "phone.png", full_page=True)
