"""The fleet dashboard as a person sees it in a real browser.

A node serves a copy of the example world. Over HTTP, as real peers would, Voltwerk
registers six of Ada's e-bikes, the bikes report their twins with their own keys, and
Voltwerk starts two rollouts of a firmware target written out by hand (the node does
not read the repository to start one). Two European bikes roll it back, which pauses the
European rollout; one American bike runs it. Headless Chromium then reads the fleet, a
bike's twin and the rollouts; assertions are on what is visible.
"""

from __future__ import annotations

import hashlib
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
from liquidfab.fleet.messages import REGISTER_DEVICE, ROLLOUT, TWIN_REPORTED
from liquidfab.identity import SigningKey
from liquidfab.protocol import CONTENT_TYPE, sign_message

pytestmark = pytest.mark.browser
expect.set_options(timeout=5_000)

PRODUCT, VERSION = "com.voltwerk.trail", "1.0.0"
FIRMWARE = b"trail firmware 1.1.0"
TARGET = {
    "name": "trail/fw-1.1.0.bin",
    "sha256": hashlib.sha256(FIRMWARE).hexdigest(),
    "length": len(FIRMWARE),
    "custom": {"product": PRODUCT, "hardware": "mcu-a", "version": "1.1.0", "kind": "firmware"},
}
T = TARGET["name"]


def _post(url: str, message: Any) -> dict:
    response = httpx.post(
        f"{url}/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
    )
    assert response.status_code == 201, response.text
    return response.json()["result"]


def _report(url: str, bike: SigningKey, state: dict) -> None:
    version = httpx.get(f"{url}/v1/devices/{bike.did}/twin").json()["twin_version"]
    data = {"device": bike.did, "version": version, "state": state}
    _post(url, sign_message(bike, TWIN_REPORTED, data))


def _rollout(url: str, voltwerk: SigningKey, rollout: str, region: str, waves: list[int]) -> None:
    data = {"rollout": rollout, "name": f"Trail firmware 1.1.0, {region.upper()}",
            "target": TARGET, "filter": {"product": PRODUCT, "attributes": {"region": region}},
            "waves": waves, "success_threshold": 1.0, "error_threshold": 0.3,
            "min_sample": 2}  # fmt: skip
    _post(url, sign_message(voltwerk, ROLLOUT, data))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ServedWorld]:
    with serve_world(EXAMPLE_WORLD, tmp_path_factory.mktemp("world")) as world:
        yield world


@pytest.fixture(scope="module")
def bikes(served) -> dict:
    """Four European bikes and two American ones, all Ada's, and two rollouts."""
    url, keys = served.url, served.keystore
    voltwerk, ada = keys.get("voltwerk"), keys.get("ada")
    bikes = sorted((SigningKey.generate() for _ in range(6)), key=lambda k: k.did)
    eu, us = bikes[:4], bikes[4:]
    for bike in bikes:
        payload = {
            "did": bike.did,
            "product": PRODUCT,
            "version": VERSION,
            "owner": ada.did,
            "attributes": {"region": "eu" if bike in eu else "us", "hardware": "mcu-a"},
        }
        _post(url, sign_message(voltwerk, REGISTER_DEVICE, payload))  # fmt: skip
        if bike is not eu[3]:  # one bike has not reported yet
            _report(url, bike, {"firmware": "1.0.0", "phase": "COMMITTED", "slot": "a"})
    _rollout(url, voltwerk, "trail-eu", "eu", [50, 100])  # wave 1: eu[0] and eu[1]
    for bike in eu[:2]:
        _report(url, bike, {"attempted": T, "phase": "ROLLED_BACK",
                            "error": f"{T} failed its health check"})  # fmt: skip
    _rollout(url, voltwerk, "trail-us", "us", [100])
    _report(url, us[0], {"firmware": "1.1.0", "target": T, "attempted": T, "phase": "COMMITTED"})
    return {"eu": eu, "us": us}


@pytest.fixture
def page(browser, served, bikes) -> Iterator[Any]:
    with node_only_page(browser, served.url) as page:
        yield page


def test_the_fleet_counts_filters_and_leads_to_a_bikes_twin(page, served, bikes, tmp_path):
    page.goto(served.url + "/")
    page.get_by_role("navigation").get_by_role("link", name="Fleet").click()
    expect(page.get_by_role("heading", name="Fleet", exact=True)).to_be_visible()
    expect(page.get_by_test_id("count-registered")).to_have_text("6")
    expect(page.locator(f"[data-version='{PRODUCT}@{VERSION}'] .n")).to_have_text("6")
    expect(page.locator("[data-firmware='1.0.0'] .n")).to_have_text("4")
    expect(page.locator("[data-firmware='1.1.0'] .n")).to_have_text("1")
    expect(page.locator("[data-firmware='unknown'] .n")).to_have_text("1")
    expect(page.locator("[data-firmware='unknown'] .l")).to_have_text("not reported")
    rows = page.locator("#device-list tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.first.get_by_role("cell", name="Ada Rider", exact=True)).to_be_visible()
    page.screenshot(path=tmp_path / "fleet.png", full_page=True)

    page.get_by_role("textbox", name="Attribute").last.fill("region=eu")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(served.url + "/fleet?product=&version=&attr=region%3Deu")
    expect(page.get_by_test_id("count-matching")).to_have_text("4")
    expect(rows).to_have_count(4)
    expect(page.locator("[data-firmware='1.0.0'] .n")).to_have_text("3")
    failing = rows.filter(has=page.get_by_text("ROLLED_BACK", exact=True))
    expect(failing).to_have_count(2)

    first = bikes["eu"][0].did
    page.get_by_title(first, exact=True).click()
    expect(page.get_by_test_id("did")).to_have_text(first)
    reported = page.locator("#twin-reported")
    expect(reported.get_by_role("row", name="phase")).to_contain_text("ROLLED_BACK")
    expect(reported.get_by_role("row", name="firmware")).to_contain_text("1.0.0")
    expect(page.get_by_test_id("counter")).to_have_text("1")
    expect(page.locator("#assignment")).to_contain_text(T)
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "device.png", full_page=True)

    page.locator("#device-rollouts").get_by_role("link", name="Trail firmware 1.1.0, EU").click()
    expect(page.get_by_test_id("reason")).to_have_text(
        "2 of 2 finished devices failed, above the error threshold 30%"
    )


def test_rollouts_show_state_progress_and_why_one_paused(page, served, bikes, tmp_path):
    page.goto(served.url + "/fleet")
    page.get_by_role("navigation").get_by_role("link", name="Rollouts").click()
    expect(page.get_by_role("heading", name="Rollouts", exact=True)).to_be_visible()
    rows = page.locator("#rollout-list tbody tr")
    expect(rows).to_have_count(2)
    us, eu = rows.nth(0), rows.nth(1)
    expect(us.locator(".state")).to_have_text("running")
    expect(us).to_contain_text("2 assigned · 1 succeeded · 0 failed")
    expect(eu.locator(".state")).to_have_text("paused")
    expect(eu).to_contain_text("2 assigned · 0 succeeded · 2 failed")
    expect(eu.get_by_role("cell", name="1 of 2")).to_be_visible()
    page.screenshot(path=tmp_path / "rollouts.png", full_page=True)

    eu.get_by_role("link", name="trail-eu").click()
    expect(page.get_by_role("heading", name="Trail firmware 1.1.0, EU")).to_be_visible()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Paused by itself")
    expect(alert).to_contain_text("above the error threshold 30%")
    expect(page.get_by_test_id("failed")).to_have_text("2")
    waves = page.locator("#waves tbody tr")
    expect(waves).to_have_count(2)
    # wave 1 is all red: its bar is as wide as its track; wave 2 has not started
    track = waves.nth(0).locator(".stack").bounding_box()
    red = waves.nth(0).locator(".seg-failed").bounding_box()
    assert track and red and red["width"] >= track["width"] - 1 and red["height"] > 0
    expect(waves.nth(1).locator(".seg")).to_have_count(0)
    expect(page.locator("#failed tbody tr")).to_have_count(2)
    expect(page.locator("#control-example")).to_contain_text('"action": "resume"')
    expect(page.locator("#control-command")).to_contain_text(
        f"liquidfab send resume.json --key KEY -k KEYSTORE --node {served.url}"
    )
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "rollout.png", full_page=True)

    page.goto(served.url + "/rollouts/trail-us")
    expect(page.get_by_role("alert")).to_have_count(0)
    wave = page.locator("#waves tbody tr").first  # two bikes: one runs it, one installs
    track = wave.locator(".stack").bounding_box()
    green = wave.locator(".seg-succeeded").bounding_box()
    grey = wave.locator(".seg-pending").bounding_box()
    assert track and green and grey
    assert abs(green["width"] - track["width"] / 2) < 1 and abs(grey["width"] - green["width"]) < 1


@pytest.mark.parametrize("path", ["/fleet", "DEVICE", "/rollouts", "/rollouts/trail-eu"])
def test_fleet_pages_fit_a_phone(page, served, bikes, path, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served.url + (f"/fleet/{bikes['eu'][0].did}" if path == "DEVICE" else path))
    expect(page.locator("h1.page")).to_be_visible()
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "phone.png", full_page=True)
