"""``liquidfab order`` and ``liquidfab unit`` against the e-bike world's node, served as
``liquidfab up`` serves it, in this process (see ``browser_support.serve_world``) so a
test can also open the node's database: units are recorded by the production line,
which these commands do not drive, so the unit test records one there directly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from browser_support import EXAMPLE_WORLD, ServedWorld, serve_world
from liquidfab.cli import app
from liquidfab.db import Database
from liquidfab.identity import SigningKey
from liquidfab.node.world import default_db_url
from liquidfab.production import BuildProgram, SimulatedStation, orders
from liquidfab.production.executor import Executor
from liquidfab.production.units import record_unit

PRODUCT = "com.voltwerk.trail@1.0.0"
runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[ServedWorld]:
    with serve_world(EXAMPLE_WORLD, tmp_path_factory.mktemp("world")) as served:
        yield served


def invoke(world: ServedWorld, *args: str):
    """The command with the world's node and keystore."""
    extra = ["--node", world.url]
    if "--key" in args:
        extra += ["-k", str(world.folder / "keys")]
    return runner.invoke(app, [*args, *extra], catch_exceptions=False, env={"COLUMNS": "250"})


def key(world: ServedWorld, name: str) -> SigningKey:
    return world.keystore.get(name)


def wallet(world: ServedWorld, name: str) -> tuple[int, int]:
    """(balance, debits pending) of a participant's wallet, in base units."""
    account = f"{key(world, name).did}/wallet"
    a = httpx.get(f"{world.url}/v1/ledger/accounts/{account}").json()
    return int(a["balance"]), int(a["debits_pending"])


def fund(world: ServedWorld, name: str, tokens: str) -> None:
    account = f"{key(world, name).did}/wallet"
    args = ("ledger", "mint", account, tokens, "--key", "operator")
    minted = invoke(world, *args)
    assert minted.exit_code == 0, minted.output


def get_order(world: ServedWorld, order_id: str) -> httpx.Response:
    return httpx.get(f"{world.url}/v1/orders/{order_id}")


def latest_message(world: ServedWorld) -> str:
    return httpx.get(f"{world.url}/v1/messages", params={"limit": 1}).json()[0]["message"]["id"]


def place(world: ServedWorld, order_id: str, *choices: str, who: str = "ada"):
    args = ["order", "place", PRODUCT, "--key", who, "--order", order_id]
    for choice in choices:
        args += ["-c", choice]
    return invoke(world, *args)


def move(world: ServedWorld, order_id: str, state: str, who: str, *more: str):
    return invoke(world, "order", "status", order_id, "--set", state, "--key", who, *more)


def test_place_accept_request_cancel_and_cancel_returns_the_escrow(world):
    fund(world, "ada", "5000")
    before = wallet(world, "ada")
    maker_before = wallet(world, "voltwerk")

    placed = place(world, "cli-1", "frame_size=L", "rack=true")
    assert placed.exit_code == 0, placed.output
    order = get_order(world, "cli-1").json()
    product = httpx.get(f"{world.url}/v1/products/com.voltwerk.trail/1.0.0").json()
    assert set(order["choices"]) == {o["id"] for o in product["definition"]["options"]}
    assert order["choices"]["frame_size"] == "L" and order["choices"]["rack"] is True
    assert order["customer"] == key(world, "ada").did
    assert order["manufacturer"] == key(world, "voltwerk").did
    assert f"order cli-1 placed: {order['price']} LQD held in escrow" in placed.output
    assert "Rear rack" in placed.output and "total" in placed.output
    amount = int(order["amount"])
    assert amount == int(order["price"]) * 10**6
    assert wallet(world, "ada") == (before[0], before[1] + amount)

    shown = invoke(world, "order", "status", "cli-1")
    assert shown.exit_code == 0, shown.output
    assert "state placed" in shown.output and "Ada Rider" in shown.output

    accepted = move(world, "cli-1", "accepted", "voltwerk", "--note", "week 12")
    assert accepted.exit_code == 0, accepted.output
    assert "placed -> accepted" in accepted.output and "week 12" in accepted.output
    not_hers = move(world, "cli-1", "scheduled", "ada")
    assert not_hers.exit_code == 2 and "unauthorized" in not_hers.output

    requested = move(world, "cli-1", "cancel-requested", "ada")
    assert requested.exit_code == 0, requested.output
    assert get_order(world, "cli-1").json()["state"] == "cancel-requested"
    cancelled = move(world, "cli-1", "cancelled", "voltwerk")
    assert cancelled.exit_code == 0, cancelled.output

    order = get_order(world, "cli-1").json()
    assert order["state"] == "cancelled"
    assert [e["state"] for e in order["history"]] == [
        "placed",
        "accepted",
        "cancel-requested",
        "cancelled",
    ]
    assert order["history"][-1]["transfer"] is not None  # the void leg
    assert wallet(world, "ada") == before  # the escrow is voided: all of it back
    assert wallet(world, "voltwerk") == maker_before
    assert httpx.get(f"{world.url}/v1/ledger/verify").json()["ok"] is True


def test_list_filters_by_state_and_customer(world):
    fund(world, "ada", "2000")
    assert place(world, "cli-list", "frame_size=M").exit_code == 0
    ada = key(world, "ada").did
    listed = invoke(world, "order", "list", "--state", "placed", "--customer", ada)
    assert listed.exit_code == 0, listed.output
    assert "cli-list" in listed.output and "Ada Rider" in listed.output
    other = invoke(world, "order", "list", "--state", "delivered", "--customer", ada)
    assert "cli-list" not in other.output and "0 orders" in other.output
    bad = invoke(world, "order", "list", "--state", "lost")
    assert bad.exit_code == 2 and "schema-invalid" in bad.output


def test_an_invalid_configuration_shows_the_conflict_and_places_nothing(world):
    fund(world, "ada", "2000")
    before = wallet(world, "ada")
    result = place(world, "cli-bad", "frame_style=step-through", "frame_size=XL")
    assert result.exit_code == 2
    assert "available only when frame_style == 'diamond'" in result.output
    assert get_order(world, "cli-bad").status_code == 404
    assert wallet(world, "ada") == before
    unknown_value = place(world, "cli-bad", "frame_size=XXL")
    assert unknown_value.exit_code == 2 and "'XXL' is not a value" in unknown_value.output


def test_too_little_money_is_refused_by_the_ledger_and_places_nothing(world):
    before = wallet(world, "trailcraft")  # 1,000 LQD; the cheapest bike costs more
    last = latest_message(world)
    result = place(world, "cli-poor", who="trailcraft")
    assert result.exit_code == 2
    assert "exceeds_credits" in result.output and "1,000 LQD free" in result.output
    assert get_order(world, "cli-poor").status_code == 404
    assert wallet(world, "trailcraft") == before
    assert latest_message(world) == last


def test_an_unknown_product_is_the_nodes_answer(world):
    args = ("order", "place", "com.voltwerk.nope@1.0.0", "--key", "ada")
    result = invoke(world, *args)
    assert result.exit_code == 2
    assert "holds no product com.voltwerk.nope" in result.output


def test_dry_run_prices_and_sends_nothing(world):
    last = latest_message(world)
    args = ("order", "place", PRODUCT, "--key", "ada", "--order", "cli-dry", "--dry-run")
    result = invoke(world, *args)
    assert result.exit_code == 0, result.output
    assert "total" in result.output and "nothing signed or sent" in result.output
    assert get_order(world, "cli-dry").status_code == 404
    assert latest_message(world) == last


def test_built_is_refused_before_anything_is_sent(world):
    fund(world, "ada", "2000")
    assert place(world, "cli-built").exit_code == 0
    last = latest_message(world)
    result = move(world, "cli-built", "built", "voltwerk")
    assert result.exit_code == 1
    assert "production line" in result.output and "liquidfab produce" in result.output
    assert latest_message(world) == last
    assert get_order(world, "cli-built").json()["state"] == "placed"


def test_an_unknown_order_or_serial_exits_2(world):
    order = invoke(world, "order", "status", "no-such-order")
    assert order.exit_code == 2 and "no order no-such-order" in order.output
    unit = invoke(world, "unit", "show", "TRAIL-00000000-000000")
    assert unit.exit_code == 2 and "no unit TRAIL-00000000-000000" in unit.output
    signed = invoke(world, "unit", "show", "TRAIL-00000000-000000", "--key", "ada")
    assert signed.exit_code == 2 and "no unit" in signed.output


def _build_unit(world: ServedWorld, order_id: str) -> str:
    """Mark the order built and record its unit, as the production line would; the serial."""
    row = get_order(world, order_id).json()
    program = BuildProgram.model_validate(row["program"])
    stations = {s: SimulatedStation(s, seed=7) for s in program.stations}
    record = asyncio.run(Executor(stations).build(program))
    database = Database.open(default_db_url(world.folder))
    try:
        now = int(time.time() * 1e6)
        database.write(lambda c: orders.set_state(c, order_id, "built", now))
        return database.write(lambda c: record_unit(c, order_id, record)).unit["serial"]
    finally:
        database.close()


def test_delivered_pays_the_maker_and_each_reader_sees_its_tier_of_the_passport(world):
    fund(world, "ada", "5000")
    assert place(world, "cli-unit", "rack=true").exit_code == 0
    for state in ("accepted", "scheduled", "in-production"):
        assert move(world, "cli-unit", state, "voltwerk").exit_code == 0
    serial = _build_unit(world, "cli-unit")
    amount = int(get_order(world, "cli-unit").json()["amount"])
    ada, maker = wallet(world, "ada"), wallet(world, "voltwerk")

    delivered = move(world, "cli-unit", "delivered", "ada")
    assert delivered.exit_code == 0, delivered.output
    assert wallet(world, "ada") == (ada[0] - amount, ada[1] - amount)
    assert wallet(world, "voltwerk") == (maker[0] + amount, maker[1])

    public = invoke(world, "unit", "show", serial)
    assert public.exit_code == 0, public.output
    assert "(public tier)" in public.output and "cli-unit" not in public.output
    owner = invoke(world, "unit", "show", serial, "--key", "ada")
    assert owner.exit_code == 0, owner.output
    assert "(owner tier)" in owner.output and "cli-unit" in owner.output
    assert "lot" not in owner.output  # suppliers and lots are the authority's
    authority = invoke(world, "unit", "show", serial, "--key", "voltwerk")
    assert "(authority tier)" in authority.output and "lot" in authority.output
    stranger = invoke(world, "unit", "show", serial, "--key", "trailcraft")
    assert "(public tier)" in stranger.output and "no standing" in stranger.output
    raw = invoke(world, "unit", "show", serial, "--key", "ada", "--json")
    assert raw.exit_code == 0
    assert '"tier": "owner"' in raw.output and '"order": "cli-unit"' in raw.output
