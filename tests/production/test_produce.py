"""``liquidfab produce`` end to end in a copy of the e-bike world, checked unit by unit."""

from __future__ import annotations

import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liquidfab.cli import app
from liquidfab.ledger import audit, reads
from liquidfab.node.world import open_world_node
from liquidfab.product import catalog
from liquidfab.product.resolved import coerce_choices, resolve
from liquidfab.production import orders, runs, stock, supply, units
from liquidfab.production.produce import ProduceSettings, produce
from liquidfab.production.published import published_product

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ebike"


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "ebike"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("keys", "state"))
    return folder


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    """40 orders in batches of 20, with step faults frequent enough to see rework."""
    folder = _copy(tmp_path_factory.mktemp("produce"))
    node = open_world_node(folder)
    settings = ProduceSettings(orders=40, batch=20, seed=3, fault_probability=0.01)
    seen = []
    report = produce(node, folder, settings, progress=lambda *a: seen.append(a))
    yield folder, node, report, seen
    node.close()


def _all(node, fn):
    return node.database.read(fn)


def test_every_unit_is_built_as_its_order_was_configured(produced):
    _, node, report, seen = produced
    assert seen[-1] == ("orders", 40, 40) and report.orders == 40
    assert report.units_built == 40 and not report.unfinished
    delivered = _all(node, lambda c: orders.list_orders(c, state="delivered", limit=1000))
    assert len(delivered) == 40
    for summary in delivered:

        def load(c, order_id=summary["id"]):
            return orders.get_order(c, order_id), units.unit_for_order(c, order_id)

        order, unit = _all(node, load)
        as_built = unit["as_built"]
        assert as_built["order"] == order["id"] and unit["customer"] == order["customer"]
        assert as_built["choices"] == order["choices"]
        assert as_built["program_digest"] == order["program_digest"] == unit["program_digest"]
        steps = order["program"]["steps"]
        assert [r["step"] for r in as_built["station_results"]] == [s["index"] for s in steps]
        assert all(r["ok"] for r in as_built["station_results"])
        assert [r["station"] for r in as_built["station_results"]] == [s["station"] for s in steps]
        # the parts are the order's configuration's BOM, purchased ones with real lots
        version = _all(node, lambda c, o=order: _version(c, o))
        product, _ = published_product(version)
        bom = resolve(product, coerce_choices(product, order["choices"], complete=True)).bom
        assert [p["part"] for p in as_built["parts"]] == [b.part for b in bom]
        supplied = [p for p in as_built["parts"] if p.get("supplier_did")]
        assert supplied and all(p["lot_source"] == "stock" for p in supplied)
        assert all(p["lot"].startswith("L") for p in supplied)


def _version(conn, order):
    return catalog.get_version(conn, order["product_id"], order["version"])


def test_escrows_posted_are_the_delivered_prices_and_the_ledger_verifies(produced):
    folder, node, report, _ = produced
    delivered = _all(node, lambda c: orders.list_orders(c, state="delivered", limit=1000))
    assert report.escrows_posted == len(delivered) == 40
    assert report.escrow_units == sum(o["amount"] for o in delivered)
    assert sum((Decimal(o["price"]) for o in delivered), Decimal(0)) == report.prices_delivered
    states = _all(
        node,
        lambda c: Counter(
            reads.pending_state(c, o["pending_transfer"])["status"] for o in delivered
        ),
    )
    assert states == Counter({"posted": 40})
    # every supply contract completed, and paid exactly what was offered
    contracts = _all(node, lambda c: supply.list_contracts(c, limit=10_000))
    assert len(contracts) == report.supply_contracts > 0
    assert {c["state"] for c in contracts} == {"completed"}
    assert sum(c["amount"] for c in contracts) == report.supply_units
    assert _all(node, lambda c: audit(c, frozenset({node.did}))).ok
    # and as the command line sees it
    result = CliRunner().invoke(app, ["ledger", "verify", "--world", str(folder)])
    assert result.exit_code == 0 and "ok" in result.output, result.output


def test_stock_covers_every_kit_drawn(produced):
    _, node, report, _ = produced
    lots = _all(node, lambda c: stock.stock_levels(c))
    assert lots and all(level["on_hand_milli"] >= 0 for level in lots)
    assert report.reworked + report.scrapped > 0  # faults happened and were handled


def test_the_run_is_kept_for_the_line_page(produced):
    _, node, report, _ = produced
    run = _all(node, runs.latest_run)
    assert run["id"] == report.run_id and run["summary"]["units_built"] == 40
    trace = run["trace"]
    assert trace["stations"][0]["id"] == "frame-prep"
    good = [u for u in trace["units"] if u["ok"]]
    assert len(good) == 40 and all(u["serial"] for u in good)
    failed = [u for u in trace["units"] if not u["ok"]]
    assert len(failed) == report.reworked + report.scrapped
    busiest = max((v[1] for u in good for v in u["visits"]), default=0.0)
    assert any(runs.units_at(trace, busiest + 1e-9).values())


def test_a_unit_that_keeps_failing_leaves_its_order_in_production_with_its_escrow(tmp_path):
    folder = _copy(tmp_path)
    node = open_world_node(folder)
    try:
        settings = ProduceSettings(orders=8, batch=8, seed=5, fault_probability=0.2, max_passes=1)
        report = produce(node, folder, settings)
        assert report.unfinished, "with one pass and 20% faults per step, some units fail"
        assert report.units_built + len(report.unfinished) == 8
        for order_id in report.unfinished:

            def load(c, order_id=order_id):
                order = orders.get_order(c, order_id)
                return (
                    order,
                    units.unit_for_order(c, order_id),
                    reads.pending_state(c, order["pending_transfer"]),
                )

            order, unit, escrow = _all(node, load)
            assert order["state"] == "in-production" and unit is None
            assert escrow["status"] == "pending"  # untouched until the unit is resolved
        assert _all(node, lambda c: audit(c, frozenset({node.did}))).ok
    finally:
        node.close()


def test_bad_settings_and_a_world_without_production_are_refused(tmp_path):
    with pytest.raises(ValueError):
        ProduceSettings(orders=0)
    with pytest.raises(ValueError):
        ProduceSettings(orders=1, fault_probability=1.0)
    folder = _copy(tmp_path)
    text = (folder / "world.yaml").read_text()
    (folder / "world.yaml").write_text(text.split("\nproduction:")[0] + "\n")
    result = CliRunner().invoke(app, ["produce", "--world", str(folder), "--orders", "2"])
    assert result.exit_code == 2 and "no production section" in result.output, result.output
