"""The cost model: standard against personalized units, changeovers, cost against volume."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from liquidfab.errors import ProductError
from liquidfab.factory.model import load_layout
from liquidfab.factory.simulation import simulate
from liquidfab.product import load_product
from liquidfab.production.cost import CostReport, cost_model, write_cost_chart

ROOT = Path(__file__).resolve().parents[2]
EBIKE = ROOT / "examples" / "ebike" / "factory.yaml"
LAMP = ROOT / "tests" / "product" / "lamp.yaml"

PAPER = {"shade": "paper", "colour": "white", "dimmer": False, "arm_cm": 30, "watts": 5}
GLASS = {"shade": "glass", "colour": "white", "dimmer": True, "arm_cm": 40, "watts": 6}

TINY = """
layout: {id: org.example.lamp.line, version: 1.0.0, name: Lamp line}
arrivals: {kind: saturated}
mix:
  - {name: paper, choices: {shade: paper, colour: white, dimmer: false, arm_cm: 30, watts: 5}}
  - {name: glass, choices: {shade: glass, colour: white, dimmer: true, arm_cm: 40, watts: 6}}
stations:
  - id: assembly
    buffer: 2
    process: {kind: by-variant, times: {paper: 80, glass: 110}}
    setup: {matrix: {paper: {glass: 300}, glass: {paper: 120}}}
  - id: test
    buffer: 2
    process: {kind: by-variant, times: {paper: 60, glass: 90}}
"""


@pytest.fixture(scope="module")
def ebike() -> tuple:
    layout = load_layout(EBIKE)
    return layout, cost_model(layout.product, layout)


@pytest.fixture(scope="module")
def lamp() -> tuple:
    product = load_product(LAMP)
    return product, load_layout(TINY, product=product)


def test_split_adds_up_exactly(ebike: tuple) -> None:
    _, report = ebike
    for split in (report.standard, report.personalized, report.difference):
        assert isinstance(split.total, Decimal)
        assert split.parts + split.labour + split.changeover == split.total
    diff = report.difference
    assert diff.total == report.personalized.total - report.standard.total
    assert diff.parts == report.personalized.parts - report.standard.parts
    assert diff.labour == report.personalized.labour - report.standard.labour
    assert diff.changeover == report.personalized.changeover - report.standard.changeover
    # a batch of standard units changes over almost never; the lot-size-one mix often
    assert report.standard.changeover == 0
    assert report.personalized.changeover > 0
    assert report.changeover_cost > 0


def test_personalization_adds_no_fixed_cost(ebike: tuple) -> None:
    layout, report = ebike
    expected = sum((c.amount for c in layout.product.fixed_costs), Decimal(0))
    assert report.standard_fixed == report.personalized_fixed == report.fixed_total == expected
    # the curves differ only by the marginal difference, at every volume
    for point in report.volumes:
        assert point.personalized - point.standard == report.difference.total
    assert "adds no fixed cost" in report.conclusion()


def test_standard_is_the_reference_unit_and_matches_resolve(ebike: tuple) -> None:
    layout, report = ebike
    from liquidfab.product import coerce_choices, resolve

    product = layout.product
    raw = {
        k: v if isinstance(v, bool | str) else str(v)
        for k, v in product.spec.value_model.reference.items()
    }
    resolved = resolve(product, coerce_choices(product, raw))
    assert report.standard.parts == resolved.material_cost
    assert report.standard.labour == resolved.labour_cost


def test_changeover_by_hand(lamp: tuple) -> None:
    product, layout = lamp
    rate = product.stations["assembly"].cost_per_hour
    assert rate == 36
    # alternating paper, glass: every unit changes over, 300 s one way and 120 s back
    report = cost_model(product, layout, standard=PAPER, personalized=[PAPER, GLASS])
    (station,) = report.stations
    assert station.id == "assembly"
    assert station.seconds_per_unit == (300 + 120) / 2
    assert report.personalized.changeover == Decimal(36) * 210 / 3600 == Decimal("2.1")
    assert station.cost == report.changeover_cost == Decimal("2.1")
    assert station.changes_per_unit == 1.0
    # two paper lamps then a glass one: two changeovers in three units
    report = cost_model(product, layout, standard=PAPER, personalized=[PAPER, PAPER, GLASS])
    assert report.personalized.changeover == Decimal(36) * Decimal(420) / 3 / 3600
    # the mix (1:1, drawn at random): 1/4 of units go paper->glass, 1/4 glass->paper
    report = cost_model(product, layout, standard=PAPER)
    assert report.stations[0].seconds_per_unit == 0.25 * 300 + 0.25 * 120
    assert report.personalized.changeover == Decimal("1.05")
    # parts and labour: the mean of the two configurations, to the cent of resolve
    from liquidfab.product import resolve

    paper = resolve(product, PAPER)
    glass = resolve(product, GLASS)
    assert report.personalized.parts == (paper.material_cost + glass.material_cost) / 2
    assert report.personalized.labour == (paper.labour_cost + glass.labour_cost) / 2
    assert report.standard.total == paper.unit_cost


def test_cost_per_unit_falls_with_volume_to_the_marginal_cost(ebike: tuple) -> None:
    layout, _ = ebike
    report = cost_model(
        layout.product, layout, volumes=(10, 100, 1_000, 10**6, 10**9), line_cost_per_hour=90
    )
    std = [v.standard for v in report.volumes]
    pers = [v.personalized for v in report.volumes]
    assert std == sorted(std, reverse=True) and len(set(std)) == len(std)
    assert pers == sorted(pers, reverse=True) and len(set(pers)) == len(pers)
    line = report.line_per_unit
    assert line > 0
    last = report.volumes[-1]
    assert abs(last.standard - (report.marginal_standard + line)) < Decimal("0.01")
    assert abs(last.personalized - (report.marginal_personalized + line)) < Decimal("0.01")
    for v in report.volumes:
        assert v.standard >= report.marginal_standard + line


def test_simulation_cross_checks_the_changeover(ebike: tuple) -> None:
    layout, estimate = ebike
    sim = simulate(layout, jobs=300, replications=2)
    report = cost_model(layout.product, layout, report=sim)
    paint = next(s for s in report.stations if s.id == "paint")
    assert paint.measured_seconds_per_unit is not None
    assert 0.8 < paint.measured_seconds_per_unit / paint.seconds_per_unit < 1.25
    assert report.measured_changeover_per_unit is not None
    assert report.throughput > 0
    assert report.personalized == estimate.personalized


def test_to_dict_and_text(ebike: tuple) -> None:
    _, report = ebike
    data = json.loads(json.dumps(report.to_dict()))
    assert data["marginal"]["standard"]["total"] == str(report.standard.total.normalize())
    assert Decimal(data["fixed"]["standard"]) == Decimal(data["fixed"]["personalized"])
    assert data["changeover"]["stations"][0]["id"] == "paint"
    lines = report.text()
    assert any("One changeover costs" in line for line in lines)
    assert any("adds no fixed cost" in line for line in lines)


def test_chart_png_and_svg(ebike: tuple, tmp_path: Path) -> None:
    _, report = ebike
    png = write_cost_chart(report, tmp_path / "cost.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = write_cost_chart(report, tmp_path / "cost.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        write_cost_chart(report, tmp_path / "cost.gif")


def test_bad_input(lamp: tuple) -> None:
    product, layout = lamp
    with pytest.raises(ProductError, match="no option 'nonsense'"):
        cost_model(product, layout, standard=PAPER, personalized=[{**PAPER, "nonsense": 1}])
    with pytest.raises(ProductError, match="no option 'nonsense'"):
        cost_model(product, layout, standard={**PAPER, "nonsense": 1})
    with pytest.raises(ValueError, match="at least one volume"):
        cost_model(product, layout, standard=PAPER, volumes=())
    with pytest.raises(ValueError, match="1 or more"):
        cost_model(product, layout, standard=PAPER, volumes=(100, 0))
    with pytest.raises(ValueError, match="1 or more"):
        cost_model(product, layout, standard=PAPER, volumes=(-5,))
    with pytest.raises(ValueError, match="at least one personalized"):
        cost_model(product, layout, standard=PAPER, personalized=[])
    with pytest.raises(ValueError, match="0 or more"):
        cost_model(product, layout, standard=PAPER, line_cost_per_hour=-1)


def test_report_type(lamp: tuple) -> None:
    product, layout = lamp
    report = cost_model(product, layout)
    assert isinstance(report, CostReport)
    # the lamp's reference unit is partial: completed at the lowest price
    assert report.standard_choices == {"dimmer": True, "watts": "6"}
