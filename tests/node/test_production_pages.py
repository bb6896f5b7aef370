"""The production dashboard and its JSON API over HTTP, on both stores.

Orders are placed and moved by signed messages, as a customer and a manufacturer do; the
built step records the unit. A run of the virtual line, a stock lot and a supply contract
are written straight into their tables, as ``liquidfab produce`` and the supply handlers
will.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from liquidfab.db.tables import orders as orders_table
from liquidfab.db.tables import stock_lots, supply_contracts, supply_events
from liquidfab.identity import SigningKey
from liquidfab.node import pages_production
from liquidfab.node.pages_production import busiest_moment, summary_cards
from liquidfab.node.routes_runs import SupplyState
from liquidfab.product import load_product
from liquidfab.production import runs, supply, units
from liquidfab.production.order_messages import ORDER, ORDER_STATUS
from liquidfab.production.orders import STATES
from liquidfab.protocol import SettlementLeg, sign_message, uuid7
from support import built_payload, funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
PRODUCT, VERSION = "org.example.lamp", "1.0.0"
CHOICES = {"shade": "paper", "colour": "white", "dimmer": False, "arm_cm": 20, "watts": 4}
PRICE = 39_000_000  # 39 LQD at 6 decimals
PROBLEM = "application/problem+json"
RUN_ID = "01a20d71-0000-7000-8000-000000000001"
TRACE_STATIONS = [
    {"id": "assembly", "name": "Assembly bench", "servers": 2},
    {"id": "test", "name": "Burn-in test", "servers": 1},
]


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _place(client, customer: SigningKey, maker: SigningKey, order_id: str) -> dict:
    leg = SettlementLeg(
        id=uuid7(),
        debit_account=f"{customer.did}/wallet",
        credit_account=f"{maker.did}/wallet",
        ledger="LQD",
        amount=str(PRICE),
        code="order",
        flags=["pending"],
        timeout_seconds=30 * 24 * 3600,
    )
    payload = {"order": order_id, "product": PRODUCT, "version": VERSION, "choices": CHOICES}
    return _ok(post(client, sign_message(customer, ORDER, payload, settlement=[leg])))["result"]


def _advance(client, maker: SigningKey, order_id: str, *states: str) -> dict:
    result: dict = {}
    for state in states:
        extra = built_payload(client, order_id) if state == "built" else {}
        message = sign_message(maker, ORDER_STATUS, {"order": order_id, "state": state, **extra})
        result = _ok(post(client, message))["result"]
    return result


def _trace(serial: str) -> dict:
    """Three units on two stations; at t=70 all three are at a station (the busiest)."""
    return {
        "horizon": 200.0,
        "stations": TRACE_STATIONS,
        "units": [
            {"order": "o-1", "serial": serial, "variant": "paper", "ok": True,
             "visits": [["assembly", 0.0, 60.0], ["test", 60.0, 120.0]]},
            {"order": "o-2", "serial": None, "variant": "paper", "ok": True,
             "visits": [["assembly", 60.0, 120.0], ["test", 120.0, 180.0]]},
            {"order": "o-3", "serial": None, "variant": "metal", "ok": False,
             "visits": [["assembly", 70.0, 130.0], ["test", 130.0, 190.0]]},
        ],
    }  # fmt: skip


SUMMARY = {
    "orders": 3,
    "units_built": 2,
    "throughput_per_hour": 40.0,
    "lead_time_seconds": {"p50": 120.0, "p95": 190.0},
    "setup_seconds": {"assembly": 30.0, "test": 0.0},
    "payments_settled": 2,
    "seed": 7,
}


@pytest.fixture
def shop(node, client, operator_key):
    """A lamp maker with three orders (placed, accepted, built with its unit), a supplier,
    a customer; nothing on the line yet."""
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", 0)
    customer = funded(node, operator_key, "owner", "Customer Ada", 1_000_000_000)
    supplier = funded(node, operator_key, "supplier", "Shade Supplier", 0)
    node.publish_product(maker, load_product(LAMP))
    escrow = _place(client, customer, maker, "o-1")["escrow"]
    built = _advance(client, maker, "o-1", "accepted", "scheduled", "in-production", "built")
    _place(client, customer, maker, "o-2")
    _advance(client, maker, "o-2", "accepted")
    _place(client, customer, maker, "o-3")
    unit = node.database.read(lambda c: units.unit_for_order(c, "o-1"))
    assert unit is not None and unit["serial"] == built["serial"]
    return {
        "maker": maker,
        "customer": customer,
        "supplier": supplier,
        "escrow": escrow,
        "unit": unit,
    }


@pytest.fixture
def supplied(node, shop):
    """A completed supply contract of shades with its lot in stock, and one still offered."""
    maker, supplier = shop["maker"].did, shop["supplier"].did
    now = int(time.time() * 1_000_000)

    def write(conn):
        for cid, state, qty, amount, at in (
            ("sc-1", "completed", 20_000, 40_000_000, now - 2_000_000),
            ("sc-2", "offered", 5_500, None, now - 1_000_000),
        ):
            conn.execute(
                insert(supply_contracts),
                {
                    "id": cid, "consumer": maker, "supplier": supplier, "part": "shade-paper",
                    "quantity_milli": qty, "unit_price": "2", "ledger": "LQD", "amount": amount,
                    "pending_transfer": None, "lot": "L-0042" if state == "completed" else None,
                    "state": state, "created_us": at, "updated_us": at,
                },
            )  # fmt: skip
        for seq, state, actor in ((0, "requested", maker), (1, "offered", supplier)):
            conn.execute(
                insert(supply_events),
                {"contract_id": "sc-1", "seq": seq, "state": state, "actor": actor,
                 "message": f"{actor} m-{seq}", "transfer": None, "note": None, "at_us": now},
            )  # fmt: skip
        for lot, received, left, contract in (
            ("L-0041", 10_000, 0, "sc-0"),
            ("L-0042", 20_000, 12_500, "sc-1"),
        ):
            conn.execute(
                insert(stock_lots),
                {"owner": maker, "part": "shade-paper", "lot": lot, "supplier": supplier,
                 "contract_id": contract, "received_milli": received, "left_milli": left,
                 "received_us": now},
            )  # fmt: skip

    node.database.write(write)
    return shop


@pytest.fixture
def run(node, shop):
    row = {
        "id": RUN_ID,
        "manufacturer": shop["maker"].did,
        "layout_id": "org.example.lamp.line",
        "layout_version": "1.0.0",
        "summary": SUMMARY,
        "trace": _trace(shop["unit"]["serial"]),
        "started_us": 1_700_000_000_000_000,
        "finished_us": 1_700_000_100_000_000,
    }
    node.database.write(lambda conn: runs.save_run(conn, row))
    return row


def _text(response) -> str:
    """The page as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    assert response.headers["content-type"].startswith("text/html"), response.headers
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _rows(response, table: str) -> list[str]:
    """The text of each body row of the table with id ``table``."""
    found = re.search(rf'<table id="{table}">(.*?)</table>', response.text, flags=re.S)
    assert found, f"no table {table}"
    body = found.group(1).split("<tbody>", 1)[1]
    rows = re.findall(r"<tr.*?</tr>", body, flags=re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in rows]


# --- orders ----------------------------------------------------------------------------------


def test_orders_page_counts_every_state_and_lists_the_newest_first(client, shop):
    page = client.get("/orders")
    assert page.status_code == 200
    counts = dict(re.findall(r'data-testid="count-([a-z-]+)">([\d,]+)<', page.text))
    assert counts == {"all": "3", **{s: "0" for s in STATES}, "placed": "1", "accepted": "1",
                      "built": "1"}  # fmt: skip
    states_in_order = re.findall(r'data-state="([a-z-]+)"', page.text)
    assert states_in_order == ["all", *STATES]
    rows = _rows(page, "order-list")
    assert [r.split()[0] for r in rows] == ["o-3", "o-2", "o-1"]
    assert rows[2].startswith("o-1 Customer Ada org.example.lamp@1.0.0 39 LQD built ")
    assert 'href="/orders/o-1"' in page.text and 'href="/orders?state=built"' in page.text


def test_orders_page_filters_by_state(client, shop):
    rows = _rows(client.get("/orders", params={"state": "accepted"}), "order-list")
    assert [r.split()[0] for r in rows] == ["o-2"]
    empty = _rows(client.get("/orders", params={"state": "delivered"}), "order-list")
    assert empty == ["No order is delivered."]
    refused = client.get("/orders", params={"state": "lost"})
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM


def test_orders_pages_by_keyset_without_losing_orders_that_share_a_time(
    client, node, shop, monkeypatch
):
    node.database.write(lambda c: c.execute(update(orders_table).values(created_us=1_000)))
    monkeypatch.setattr(pages_production, "PAGE", 2)
    first = client.get("/orders")
    assert [r.split()[0] for r in _rows(first, "order-list")] == ["o-3", "o-2"]
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older, "a first page of a longer list links to the older orders"
    second = client.get(html.unescape(older.group(1)))
    assert [r.split()[0] for r in _rows(second, "order-list")] == ["o-1"]
    assert 'id="older"' not in second.text and 'href="/orders">Newest</a>' in second.text


def test_order_page_shows_the_order_its_history_program_and_unit(client, shop):
    page = client.get("/orders/o-1")
    assert page.status_code == 200
    facts = _rows(page, "order-facts")
    assert facts[0].startswith("Customer Customer Ada did:key:")
    assert facts[1].startswith("Manufacturer Lamp Maker did:key:")
    assert facts[2] == f"Product {PRODUCT}@{VERSION}"
    assert facts[3] == "Price 39 LQD"
    assert f'href="/v1/ledger/transfers/{shop["escrow"]}"' in page.text
    assert f'href="/products/{PRODUCT}/{VERSION}"' in page.text
    serial = shop["unit"]["serial"]
    assert f'href="/units/{serial}"' in page.text
    history = _rows(page, "history")
    assert [h.split()[0] for h in history] == ["placed", "accepted", "scheduled",
                                               "in-production", "built"]  # fmt: skip
    assert history[0].split()[1:3] == ["Customer", "Ada"]
    assert shop["escrow"][:13] in history[0]
    assert _rows(page, "steps") == [
        "1 assembly mount-arm arm=20 40 s",
        "2 assembly fit-shade \u2013 20 s",
        "3 test burn-in watts=4 60 s",
    ]
    placed = _rows(client.get("/orders/o-3"), "order-facts")
    assert "Unit not built yet" in placed


def test_an_unknown_order_is_a_404_page(client, shop):
    page = client.get("/orders/nope")
    assert page.status_code == 404
    assert "No order nope" in _text(page)
    assert client.get("/orders/" + "x" * 300).status_code == 404


# --- units -----------------------------------------------------------------------------------


def test_units_page_lists_the_units(client, shop):
    page = client.get("/units")
    assert page.status_code == 200
    unit = shop["unit"]
    [row] = _rows(page, "unit-list")
    assert row.startswith(f"{unit['serial']} {PRODUCT}@{VERSION} Customer Ada ")
    assert unit["device_did"][:16] in row
    assert f'href="/units/{unit["serial"]}"' in page.text
    assert re.search(r'data-testid="unit-count">1<', page.text)


def test_unit_page_shows_the_public_passport_and_nothing_more(client, node, shop):
    unit = shop["unit"]
    serial = unit["serial"]
    page = client.get(f"/units/{serial}")
    assert page.status_code == 200
    text = _text(page)
    facts = _rows(page, "unit-facts")
    assert facts[1].startswith("Manufacturer Lamp Maker did:key:")
    assert facts[2] == f"Device {unit['device_did']}"
    assert facts[3] == "Order o-1"
    rows = _rows(page, "nameplate")
    assert f"Serial number {serial}" in rows
    assert "Manufacturer product designation Desk lamp" in rows
    assert f"GET /v1/units/{serial}/passport" in text and "Liquidfab-Signature" in text
    # Nothing of the owner or authority tiers: no customer, configuration, lots or results.
    full = node.database.read(lambda c: units.passport(c, units.get_unit(c, serial), "authority"))
    assert unit["customer"] not in page.text and "Customer Ada" not in text
    assert full["as_built"]["program_digest"] not in page.text
    for part in full["as_built"]["parts"]:
        if part.get("lot"):
            assert part["lot"] not in page.text
    for result in full["as_built"]["station_results"]:
        assert result["operation"] not in page.text
    assert "paper" not in text  # the chosen shade


def test_an_unknown_unit_is_a_404_page(client, shop):
    page = client.get("/units/LAMP-19700101-000009")
    assert page.status_code == 404 and "No unit LAMP-19700101-000009" in _text(page)


# --- the line --------------------------------------------------------------------------------


def test_line_page_without_a_run_says_how_to_make_one(client, shop):
    text = _text(client.get("/line"))
    assert "No production run yet" in text
    assert "liquidfab produce --world examples/ebike --orders 100" in text
    assert "Nothing in stock" in text and "No supply contract yet" in text


def test_line_page_shows_the_run_at_its_busiest_moment(client, run, shop):
    page = client.get("/line")
    assert page.status_code == 200
    cards = dict(re.findall(r'data-figure="([^"]+)"><div class="n">([^<]*)<', page.text))
    assert cards == {
        "orders": "3",
        "units-built": "2",
        "throughput-per-hour": "40.00",
        "lead-time-seconds-p50": "2.0 min",
        "lead-time-seconds-p95": "3.2 min",
        "setup-seconds": "30 s",
        "payments-settled": "2",
        "seed": "7",
    }
    assert 'id="t" min="0" max="200.0" step="any" value="70.0"' in page.text
    assert re.search(r'data-testid="clock">0:01:10<', page.text)
    assert re.search(r'data-testid="on-line">3<', page.text)
    stations = dict(
        re.findall(r'<section class="station" data-station="([^"]+)">(.*?)</section>', page.text,
                   flags=re.S)
    )  # fmt: skip
    assert re.findall(r'<li class="unit[^"]*"[^>]*>([^<]+)</li>', stations["assembly"]) == [
        "o-2",
        "o-3",
    ]
    assert 'class="unit failed"' in stations["assembly"]  # o-3 failed its build
    assert re.findall(r"<li[^>]*>([^<]+)</li>", stations["test"]) == [shop["unit"]["serial"]]
    embedded = re.search(r'<script type="application/json" id="trace">(.*?)</script>', page.text,
                         flags=re.S)  # fmt: skip
    assert embedded and json.loads(embedded.group(1)) == run["trace"]
    assert 'href="/factories/org.example.lamp.line/1.0.0"' in page.text


def test_line_page_shows_stock_and_supply_contracts(client, supplied):
    page = client.get("/line")
    assert _rows(page, "stock") == ["shade-paper Lamp Maker 12.5 1 L-0042"]
    assert _rows(page, "supply") == [
        "sc-2 Shade Supplier shade-paper 5.5 offered \u2013",
        "sc-1 Shade Supplier shade-paper 20 completed 40 LQD",
    ]


def test_busiest_moment_is_the_earliest_with_most_units_at_stations():
    assert busiest_moment(_trace("S-1")) == 70.0
    assert busiest_moment({"units": []}) == 0.0
    back_to_back = {
        "stations": [{"id": "a"}],
        "units": [{"visits": [["a", 0, 10]]}, {"visits": [["a", 10, 20]]}],
    }
    assert busiest_moment(back_to_back) == 0.0  # one leaves as the next arrives: never two


def test_summary_cards_name_known_figures_and_keep_the_rest():
    cards = summary_cards({"lead_time_p95_seconds": 7200.0, "mystery": "x", "orders": 12})
    assert [(c["label"], c["value"]) for c in cards] == [
        ("orders", "12"),
        ("lead time, 95 % within", "2.0 h"),
        ("mystery", "x"),
    ]
    assert summary_cards({"orders": {"placed": 2, "built": 1}}) == [
        {"key": "orders-placed", "label": "orders placed", "value": "2"},
        {"key": "orders-built", "label": "orders built", "value": "1"},
    ]


# --- the JSON API ----------------------------------------------------------------------------


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


def test_runs_api_lists_without_traces_and_gets_with_one(client, node, run):
    later = {**run, "id": "run-2", "finished_us": run["finished_us"] + 1, "summary": {}}
    node.database.write(lambda conn: runs.save_run(conn, later))
    listed = client.get("/v1/production/runs").json()
    assert [r["id"] for r in listed] == ["run-2", RUN_ID]
    assert all("trace" not in r for r in listed)
    assert [r["id"] for r in client.get("/v1/production/runs", params={"limit": 1}).json()] == [
        "run-2"
    ]
    one = client.get(f"/v1/production/runs/{RUN_ID}").json()
    assert one["trace"] == run["trace"] and one["summary"] == SUMMARY
    assert _problem(client.get("/v1/production/runs/nope"), 404)["code"] == "not-found"
    # A whole number is asked for: 1.0 is refused, as the published schema says.
    assert _problem(client.get("/v1/production/runs?limit=1.0"), 422)["code"] == "schema-invalid"
    assert _problem(client.get("/v1/production/supply?before_us=0.0"), 422)


def test_stock_api_gives_on_hand_and_the_lots_holding_it(client, supplied):
    maker = supplied["maker"].did
    [level] = client.get("/v1/production/stock").json()
    assert level == {
        "owner": maker,
        "part": "shade-paper",
        "on_hand_milli": 12_500,
        "received_milli": 30_000,
        "lot_count": 1,
        "latest_lot": "L-0042",
        "lots": [
            {
                "lot": "L-0042",
                "supplier": supplied["supplier"].did,
                "contract_id": "sc-1",
                "received_milli": 20_000,
                "left_milli": 12_500,
                "received_us": level["lots"][0]["received_us"],
            }
        ],
    }
    assert client.get("/v1/production/stock", params={"owner": "did:key:zNobody"}).json() == []


def test_supply_api_filters_by_state_and_gives_a_contract_with_its_history(client, supplied):
    listed = client.get("/v1/production/supply").json()
    assert [(c["id"], c["state"], c["amount"]) for c in listed] == [
        ("sc-2", "offered", None),
        ("sc-1", "completed", "40000000"),
    ]
    completed = client.get("/v1/production/supply", params={"state": "completed"}).json()
    assert [c["id"] for c in completed] == ["sc-1"]
    assert client.get("/v1/production/supply", params={"state": "lost"}).status_code == 422
    one = client.get("/v1/production/supply/sc-1").json()
    assert one["quantity_milli"] == 20_000 and one["lot"] == "L-0042"
    assert [(e["seq"], e["state"]) for e in one["history"]] == [(0, "requested"), (1, "offered")]
    assert _problem(client.get("/v1/production/supply/nope"), 404)["code"] == "not-found"


def test_the_api_knows_the_supply_states_the_tables_use():
    assert SupplyState.__args__ == supply.STATES
