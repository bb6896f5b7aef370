"""The production dashboard as a person sees it in a real browser.

A node serves a copy of the example world; Ada orders three e-bikes by signed messages
and Voltwerk builds one of them (the built step records the unit), over HTTP as real
peers would. A run of the virtual line, a stock lot and a supply contract are written
into the node's database beside it, as ``liquidfab produce`` will. Headless Chromium
then reads the orders, a unit's passport and the line, and replays the line with the
slider. Assertions are on what is visible.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import insert

from browser_support import (
    EXAMPLE_WORLD,
    ServedWorld,
    chromium_browser,
    no_horizontal_scroll,
    node_only_page,
    serve_world,
)
from liquidfab.db import Database
from liquidfab.db.tables import stock_lots, supply_contracts
from liquidfab.identity import SigningKey
from liquidfab.ledger.messages import MINT
from liquidfab.node.world import default_db_url
from liquidfab.production import BuildProgram, Executor, SimulatedStation, runs
from liquidfab.production.order_messages import ORDER, ORDER_STATUS
from liquidfab.protocol import CONTENT_TYPE, SettlementLeg, sign_message, uuid7

pytestmark = pytest.mark.browser
expect.set_options(timeout=5_000)

PRODUCT, VERSION = "com.voltwerk.trail", "1.0.0"
CITY_M = {
    "frame_style": "step-through", "frame_size": "M", "frame_colour": "pure-white",
    "motor": "hub-rear-250", "gearing": "derailleur-9", "brakes": "disc-mech",
    "suspension_fork": "rigid", "tyres": "city",
}  # fmt: skip
LINE = ["frame-prep", "paint", "drivetrain", "electrical", "final-assembly", "test-flash"]
STEP = 60.0  # every unit spends a minute at each station; unit i enters at i minutes
HORIZON = 600.0


def _post(url: str, message: Any) -> dict:
    response = httpx.post(
        f"{url}/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
    )
    assert response.status_code == 201, response.text
    return response.json()["result"]


def _place(url: str, ada: SigningKey, voltwerk: SigningKey, order_id: str) -> None:
    # A customer's partial choices, completed at the lowest price by the node's configurator.
    configured = httpx.post(
        f"{url}/v1/products/{PRODUCT}/{VERSION}/configure",
        json={"choices": CITY_M, "complete": True, "objective": "price"},
    )
    assert configured.status_code == 200, configured.text
    choices = configured.json()["completion"]["resolved"]["choices"]
    payload = {"order": order_id, "product": PRODUCT, "version": VERSION, "choices": choices}

    def signed(amount: int) -> Any:
        leg = SettlementLeg(
            id=uuid7(),
            debit_account=f"{ada.did}/wallet",
            credit_account=f"{voltwerk.did}/wallet",
            ledger="LQD",
            amount=str(amount),
            code="order",
            flags=["pending"],
            timeout_seconds=30 * 24 * 3600,
        )
        return sign_message(ada, ORDER, payload, settlement=[leg])

    # The price is the node's to compute: its refusal of a wrong escrow names the right one.
    asked = httpx.post(
        f"{url}/v1/messages", content=signed(1).to_json(), headers={"content-type": CONTENT_TYPE}
    )
    assert asked.status_code == 422 and asked.json()["code"] == "price-mismatch", asked.text
    _post(url, signed(int(asked.json()["amount"])))


def _move(url: str, voltwerk: SigningKey, order_id: str, *states: str) -> dict:
    result: dict = {}
    for state in states:
        data: dict[str, Any] = {"order": order_id, "state": state}
        if state == "built":  # the line's record of the build, and the new device's did
            order = httpx.get(f"{url}/v1/orders/{order_id}").json()
            program = BuildProgram.model_validate(order["program"])
            stations = {s: SimulatedStation(s, seed=7) for s in program.stations}
            # Playwright's loop runs in this thread, so the build runs in another.
            with ThreadPoolExecutor(1) as pool:
                record = pool.submit(asyncio.run, Executor(stations).build(program)).result()
            data.update(build=record.model_dump(mode="json"), device_did=SigningKey.generate().did)
        result = _post(url, sign_message(voltwerk, ORDER_STATUS, data))
    return result


def _trace(serial: str) -> dict:
    """Four units walking down the line a minute apart: all four are on it from 3:00."""
    units = []
    for i in range(4):
        visits = [[s, (i + j) * STEP, (i + j + 1) * STEP] for j, s in enumerate(LINE)]
        order = f"ada-{i + 1}"
        units.append({"order": order, "serial": serial if i == 0 else None, "variant": "city-m",
                      "ok": True, "visits": visits})  # fmt: skip
    stations = [{"id": s, "name": s.replace("-", " ").title(), "servers": 1} for s in LINE]
    return {"horizon": HORIZON, "stations": stations, "units": units}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ServedWorld]:
    with serve_world(EXAMPLE_WORLD, tmp_path_factory.mktemp("world")) as world:
        yield world


@pytest.fixture(scope="module")
def shop(served) -> dict:
    """Three orders of Ada's (placed, accepted, built with its unit), a run, stock, supply."""
    keys = served.keystore
    ada, voltwerk, operator = keys.get("ada"), keys.get("voltwerk"), keys.get("operator")
    cellco = keys.get("cellco")
    mint = {"transfer": uuid7(), "account": f"{ada.did}/wallet", "ledger": "LQD",
            "amount": str(20_000 * 10**6)}  # fmt: skip
    _post(served.url, sign_message(operator, MINT, mint))
    for order_id in ("ada-1", "ada-2", "ada-3"):
        _place(served.url, ada, voltwerk, order_id)
    serial = _move(served.url, voltwerk, "ada-1", "accepted", "scheduled", "in-production",
                   "built")["serial"]  # fmt: skip
    _move(served.url, voltwerk, "ada-2", "accepted")
    now = int(time.time() * 1_000_000)

    def write(conn: Any) -> None:
        runs.save_run(
            conn,
            {"id": "run-1", "manufacturer": voltwerk.did, "layout_id": "com.voltwerk.trail.line-a",
             "layout_version": "1.0.0", "trace": _trace(serial), "started_us": now - 10**6,
             "finished_us": now,
             "summary": {"orders": 3, "units_built": 4, "throughput_per_hour": 24.0,
                         "lead_time_seconds": {"p50": 360.0, "p95": 360.0}}},
        )  # fmt: skip
        conn.execute(
            insert(supply_contracts),
            {"id": "sc-cells", "consumer": voltwerk.did, "supplier": cellco.did,
             "part": "cell-21700", "quantity_milli": 400_000, "unit_price": "3.5",
             "ledger": "LQD", "amount": 1_400_000_000, "pending_transfer": None,
             "lot": "CC-7", "state": "completed", "created_us": now, "updated_us": now},
        )  # fmt: skip
        conn.execute(
            insert(stock_lots),
            {"owner": voltwerk.did, "part": "cell-21700", "lot": "CC-7", "supplier": cellco.did,
             "contract_id": "sc-cells", "received_milli": 400_000, "left_milli": 260_000,
             "received_us": now},
        )  # fmt: skip

    side = Database(default_db_url(served.folder))  # the node's file, a second connection
    try:
        side.write(write)
    finally:
        side.close()
    return {"serial": serial}


@pytest.fixture
def page(browser, served, shop) -> Iterator[Any]:
    with node_only_page(browser, served.url) as page:
        yield page


def test_orders_lead_to_the_order_and_its_unit_passport(page, served, shop, tmp_path):
    page.goto(served.url + "/")
    page.get_by_role("navigation").get_by_role("link", name="Orders").click()
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    for state, count in {"all": 3, "placed": 1, "accepted": 1, "built": 1, "delivered": 0,
                         "cancelled": 0}.items():  # fmt: skip
        expect(page.get_by_test_id(f"count-{state}")).to_have_text(str(count))
    rows = page.locator("#order-list tbody tr")
    expect(rows).to_have_count(3)
    built = rows.filter(has=page.get_by_role("cell", name="built", exact=True))
    expect(built.get_by_role("link", name="ada-1")).to_be_visible()
    expect(built.get_by_role("cell", name="Ada Rider", exact=True)).to_be_visible()
    expect(built.get_by_role("cell", name=f"{PRODUCT}@{VERSION}")).to_be_visible()
    expect(built.locator("td.num")).to_contain_text("LQD")

    page.locator("#state-counts").get_by_text("accepted", exact=True).click()
    expect(page).to_have_url(served.url + "/orders?state=accepted")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ada-2")

    page.goto(served.url + "/orders")
    built.get_by_role("link", name="ada-1").click()
    expect(page.get_by_role("heading", name="Order ada-1")).to_be_visible()
    facts = page.locator("#order-facts")
    expect(facts.get_by_role("row", name="Manufacturer")).to_contain_text("Voltwerk Bikes")
    expect(page.locator("#history tbody tr")).to_have_count(5)
    expect(page.locator("#steps tbody tr").first).to_contain_text("frame-prep")
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "order.png", full_page=True)

    page.locator("#unit-link").click()
    expect(page.get_by_test_id("serial")).to_have_text(shop["serial"])
    expect(page.get_by_test_id("manufacturer")).to_have_text("Voltwerk Bikes")
    nameplate = page.locator("#nameplate")
    expect(nameplate.get_by_role("row", name="Serial number")).to_contain_text(shop["serial"])
    expect(nameplate.get_by_role("row", name="Contact information \u203a Company")).to_contain_text(
        "Voltwerk Bikes"
    )
    expect(page.locator("#tiers")).to_contain_text(f"/v1/units/{shop['serial']}/passport")
    expect(page.get_by_text("Ada Rider")).to_have_count(0)  # the owner's tier is not shown
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "unit.png", full_page=True)


def _at(page: Any, station: str) -> Any:
    return page.locator(f"#stations [data-station='{station}'] li.unit")


def test_the_line_replays_the_run_with_the_slider(page, served, shop, tmp_path):
    page.goto(served.url + "/units")
    expect(page.locator("#unit-list tbody tr")).to_have_count(1)
    page.get_by_role("navigation").get_by_role("link", name="Line").click()
    expect(page.get_by_role("heading", name="Line", exact=True)).to_be_visible()
    expect(page.locator("[data-figure='units-built'] .n")).to_have_text("4")
    expect(page.locator("[data-figure='throughput-per-hour'] .n")).to_have_text("24.00")

    # It opens at 3:00, when all four units are on the line, at the first four stations.
    expect(page.get_by_test_id("clock")).to_have_text("0:03:00")
    expect(page.get_by_test_id("on-line")).to_have_text("4")
    expect(_at(page, "frame-prep")).to_have_text(["ada-4"])
    expect(_at(page, "electrical")).to_have_text([shop["serial"]])
    expect(_at(page, "final-assembly")).to_have_count(0)
    page.screenshot(path=tmp_path / "line.png", full_page=True)

    slider = page.locator("#t")
    slider.focus()
    page.keyboard.press("Home")  # back to the start: the first unit alone, at frame-prep
    expect(page.get_by_test_id("clock")).to_have_text("0:00:00")
    expect(page.get_by_test_id("on-line")).to_have_text("1")
    expect(page.get_by_test_id("count-frame-prep")).to_have_text("1")
    expect(page.get_by_test_id("count-paint")).to_have_text("0")
    expect(_at(page, "frame-prep")).to_have_text([shop["serial"]])
    expect(_at(page, "electrical")).to_have_count(0)
    expect(page.locator("#stations [data-station='paint'] li.idle")).to_be_visible()

    slider.evaluate(
        "(el) => { el.value = '330'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )  # 5:30: the first unit is at test-flash, the fourth at drivetrain
    expect(page.get_by_test_id("clock")).to_have_text("0:05:30")
    expect(_at(page, "test-flash")).to_have_text([shop["serial"]])
    expect(_at(page, "drivetrain")).to_have_text(["ada-4"])

    stock = page.locator("#stock tbody tr")
    expect(stock).to_have_count(1)
    expect(stock.first).to_contain_text("260")
    expect(stock.first).to_contain_text("CC-7")
    supply = page.locator("#supply tbody tr").first
    expect(supply).to_contain_text("CellCo Batteries")
    expect(supply).to_contain_text("1,400 LQD")
    no_horizontal_scroll(page)


@pytest.mark.parametrize("path", ["/orders", "/orders/ada-1", "/units", "UNIT", "/line"])
def test_production_pages_fit_a_phone(page, served, shop, path, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served.url + (f"/units/{shop['serial']}" if path == "UNIT" else path))
    expect(page.locator("h1.page")).to_be_visible()
    no_horizontal_scroll(page)
    if path == "/line":  # the stations stack: one row each, the line reads downwards
        boxes = [page.locator(f"[data-station='{s}']").bounding_box() for s in LINE[:2]]
        assert boxes[0] and boxes[1] and boxes[1]["y"] > boxes[0]["y"] + boxes[0]["height"] - 1
    page.screenshot(path=tmp_path / "phone.png", full_page=True)


@pytest.fixture(scope="module")
def produced(tmp_path_factory) -> Iterator[ServedWorld]:
    """The example world after `liquidfab produce --orders 6`, served as `liquidfab up` would."""
    source = tmp_path_factory.mktemp("produced") / "ebike"
    shutil.copytree(EXAMPLE_WORLD, source, ignore=shutil.ignore_patterns("keys", "state"))
    exe = Path(sys.executable).with_name("liquidfab")  # the command, as a person runs it
    args = ["produce", "--world", str(source), "--orders", "6", "--batch", "6", "--seed", "2"]
    result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger verify: ok" in result.stdout
    with serve_world(source, tmp_path_factory.mktemp("served"), fresh=False) as world:
        yield world


def test_up_after_produce_shows_the_orders_the_line_and_the_passports(browser, produced, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(produced.url + "/orders")
        expect(page.get_by_test_id("count-delivered")).to_have_text("6")
        expect(page.get_by_test_id("count-placed")).to_have_text("0")
        rows = page.locator("#order-list tbody tr")
        expect(rows).to_have_count(6)
        rows.first.get_by_role("link").first.click()
        expect(page.locator("#history tbody tr")).to_have_count(6)  # placed … delivered
        page.locator("#unit-link").click()
        serial = page.get_by_test_id("serial").inner_text()
        assert serial.startswith("TRAIL-"), serial
        expect(page.get_by_test_id("manufacturer")).to_have_text("Voltwerk Bikes")
        page.screenshot(path=tmp_path / "produced-unit.png", full_page=True)

        page.goto(produced.url + "/line")
        expect(page.locator("[data-figure='units-built'] .n")).to_have_text("6")
        on_line = int(page.get_by_test_id("on-line").inner_text())
        assert 1 <= on_line <= 6  # it opens at the busiest moment of the run
        expect(page.locator("#stations li.unit")).to_have_count(on_line)
        expect(page.locator("#stock tbody tr").first).to_be_visible()
        expect(page.locator("#supply tbody tr").first).to_contain_text("completed")
        page.screenshot(path=tmp_path / "produced-line.png", full_page=True)
    finally:
        page.close()
    assert not errors, errors
