"""The value model against hand calculations on small products written here."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread
from pydantic import ValidationError

from liquidfab.errors import ProductError
from liquidfab.product import load_product, product_from_data
from liquidfab.product.format import ValueModelSpec
from liquidfab.product.resolved import coerce_choices, resolve
from liquidfab.product.value import DEFAULT_VOLUMES, ValueReport, value_model
from liquidfab.product.value_chart import write_chart

HERE = Path(__file__).parent
DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"

# Every price model once; a test attaches only the features it is about.
FEATURES: dict[str, dict[str, Any]] = {
    "base": {"kind": "firmware", "included": True, "marginal_cost": "0.01"},
    "maps": {"kind": "app", "price": {"model": "one-time", "amount": 30}, "marginal_cost": "0.1"},
    "cloud": {
        "kind": "app",
        "price": {"model": "subscription", "amount": 10, "period": "month"},
        "marginal_cost": 1,
    },
    "news": {"kind": "app", "price": {"model": "subscription", "amount": 10, "period": "month"}},
    "backup": {"kind": "app", "price": {"model": "subscription", "amount": 24, "period": "year"}},
    "coach": {
        "kind": "ai-model",
        "price": {"model": "trial-then-paid", "amount": 5, "period": "month", "trial_days": 45},
        "marginal_cost": "0.2",
    },
    "render": {
        "kind": "app",
        "price": {"model": "per-use", "amount": "0.5", "unit": "render"},
        "marginal_cost": "0.05",
    },
    "turbo": {
        "kind": "firmware",
        "available_when": "pro",
        "price": {"model": "one-time", "amount": 100},
    },
}


def gadget(*features: str, price: int = 100, life: int = 24, fixed: bool = True):
    """A product whose unit costs 51 (part 50 + one minute at 60 an hour)."""
    data: dict[str, Any] = {
        "id": "org.example.gadget",
        "version": "1.0.0",
        "name": "Gadget",
        "options": [{"id": "pro", "type": "bool", "default": False}],
        "suppliers": [{"id": "acme", "name": "Acme", "did": DID}],
        "parts": [{"id": "body", "name": "Body", "supplier": "acme", "unit_cost": 50}],
        "bom": [{"part": "body"}],
        "stations": [{"id": "build", "name": "Build", "cost_per_hour": 60}],
        "routing": [{"id": "assemble", "station": "build", "time": 60}],
        "features": [{"id": f, "name": f.title(), **FEATURES[f]} for f in features],
        "pricing": {"base": price},
        "value_model": {"life_months": life},
    }
    if fixed:
        data["fixed_costs"] = [
            {"id": "tooling", "label": "Tooling", "amount": 20000},
            {"id": "certification", "label": "Certification", "amount": 5000},
        ]
    return product_from_data(data)


def unit(product, pro: bool = False):
    return resolve(product, coerce_choices(product, {"pro": pro}, complete=True))


def run(product, volumes=None, reference=None, **assumptions) -> ValueReport:
    spec = ValueModelSpec(life_months=product.spec.value_model.life_months, **assumptions)
    return value_model(product, reference or unit(product), spec, volumes=volumes)


def money(text: str) -> Decimal:
    return Decimal(text).quantize(Decimal("0.000001"))


# --- hardware and the crossover -------------------------------------------------------


def test_hardware_margin_is_price_less_material_and_labour():
    report = run(gadget("cloud"), attach_rates={"cloud": "0.5"}, monthly_churn=0)
    assert report.price == 100
    assert report.material_cost == 50
    assert report.labour_cost == 1
    assert report.unit_cost == 51
    assert report.hardware_margin == 49


def test_crossover_month_of_a_monthly_subscription():
    # (10 - 1 running cost) * 0.5 attach = 4.5 a month; 4.5 * 10 = 45 < 49 <= 49.5 = 4.5 * 11.
    report = run(gadget("cloud"), attach_rates={"cloud": "0.5"}, monthly_churn=0)
    assert [m.contribution for m in report.months] == [money("4.5")] * 24
    assert report.months[9].cumulative == 45
    assert report.months[10].cumulative == money("49.5")
    assert report.crossover_month == 11
    assert "Software passes hardware margin in month 11" in report.render()


def test_reaching_the_margin_exactly_counts_as_passing():
    # Price 76: margin 25. news 10 a month at attach 0.5: 5 a month, 25 after month 5.
    report = run(gadget("news", price=76), attach_rates={"news": "0.5"}, monthly_churn=0)
    assert report.months[4].cumulative == report.hardware_margin == 25
    assert report.crossover_month == 5


def test_crossover_of_one_time_plus_subscription():
    # maps: 30 * 0.5 = 15 in month 1, running 0.1 * 0.5 = 0.05 a month;
    # cloud: (10 - 1) * 0.5 = 4.5 a month. Cumulative 15 + 4.45m:
    # month 7 = 46.15 < 49 <= 50.6 = month 8.
    report = run(
        gadget("maps", "cloud"), attach_rates={"maps": "0.5", "cloud": "0.5"}, monthly_churn=0
    )
    assert report.months[0].contribution == money("19.45")
    assert report.months[6].cumulative == money("46.15")
    assert report.months[7].cumulative == money("50.6")
    assert report.crossover_month == 8


def test_crossover_with_churn_matches_the_geometric_sum():
    # Price 69: margin 18. news: 10 a month, attach 1, churn 0.5: 10, 5, 2.5, 1.25, so the
    # cumulative is 10, 15, 17.5, 18.75: month 4.
    report = run(gadget("news", price=69), attach_rates={"news": 1}, monthly_churn="0.5")
    assert [m.cumulative for m in report.months[:4]] == [10, 15, money("17.5"), money("18.75")]
    assert report.crossover_month == 4


def test_running_cost_can_keep_software_from_ever_passing():
    # cloud also costs 1 per paying month: 9, 4.5, 2.25, ... tends to 18 and never reaches it.
    report = run(gadget("cloud", price=69), attach_rates={"cloud": 1}, monthly_churn="0.5")
    assert [m.cumulative for m in report.months[:4]] == [
        9,
        money("13.5"),
        money("15.75"),
        money("16.875"),
    ]
    assert report.months[-1].cumulative < 18
    assert report.crossover_month is None


def test_no_crossover_within_life_is_reported_as_such():
    report = run(gadget("cloud", life=6), attach_rates={"cloud": "0.5"}, monthly_churn=0)
    assert report.crossover_month is None
    text = report.render()
    assert "does not pass hardware margin within the 6-month life" in text
    assert report.to_dict()["crossover_month"] is None
    assert "does not pass" in report.to_dict()["crossover"]


@pytest.mark.parametrize("price", [40, 51])
def test_hardware_margin_at_or_below_zero_is_passed_at_sale(price):
    report = run(gadget("cloud", price=price), attach_rates={"cloud": "0.5"})
    assert report.hardware_margin == price - 51
    assert report.crossover_month == 0
    assert "at sale (month 0)" in report.render()


# --- each price model, month by month -------------------------------------------------


def feature(report: ValueReport, fid: str):
    return next(f for f in report.features if f.id == fid)


def test_one_time_pays_once_and_runs_every_month():
    report = run(gadget("maps"), attach_rates={"maps": "0.5"}, monthly_churn="0.1")
    assert report.months[0].revenue == 15
    assert report.months[0].cost == money("0.05")
    assert all(m.revenue == 0 and m.cost == money("0.05") for m in report.months[1:])
    maps = feature(report, "maps")
    assert maps.revenue == 15
    assert maps.cost == money("1.2")  # 24 months * 0.05, no churn on what is owned
    assert maps.contribution == money("13.8")


def test_yearly_subscription_bills_at_each_renewal_for_the_survivors():
    report = run(gadget("backup"), attach_rates={"backup": "0.5"}, monthly_churn="0.1")
    revenue = [m.revenue for m in report.months]
    assert revenue[0] == 12
    assert revenue[12] == money("3.389154437772")  # 12 * 0.9 ** 12
    assert all(r == 0 for i, r in enumerate(revenue) if i not in (0, 12))


def test_trial_then_paid_is_free_then_converts():
    # 45 days: 2 free months; then 0.5 attach * 0.4 conversion pay 5 a month, churning 10 %.
    report = run(
        gadget("coach"),
        attach_rates={"coach": "0.5"},
        monthly_churn="0.1",
        trial_conversion="0.4",
    )
    m = report.months
    assert (m[0].revenue, m[1].revenue) == (0, 0)
    assert (m[0].cost, m[1].cost) == (money("0.1"), money("0.1"))  # 0.2 for each unit on trial
    assert (m[2].revenue, m[2].cost) == (1, money("0.04"))
    assert (m[3].revenue, m[3].cost) == (money("0.9"), money("0.036"))
    assert m[4].revenue == money("0.81")


def test_per_use_scales_with_uses_attach_and_survival():
    report = run(
        gadget("render"),
        attach_rates={"render": "0.25"},
        uses_per_month={"render": 4},
        monthly_churn="0.1",
    )
    m = report.months
    assert (m[0].revenue, m[0].cost) == (money("0.5"), money("0.05"))
    assert (m[1].revenue, m[1].cost) == (money("0.45"), money("0.045"))
    expected = sum(Fraction(1, 2) * Fraction(9, 10) ** i for i in range(24))
    assert abs(Fraction(feature(report, "render").revenue) - expected) < Fraction(1, 10**6)


def test_included_feature_earns_nothing_and_costs_every_month():
    report = run(gadget("base"))
    base = feature(report, "base")
    assert base.attach_rate == 1
    assert base.revenue == 0
    assert base.cost == money("0.24")
    assert report.software_contribution == money("-0.24")
    assert report.crossover_month is None


def test_lamp_fixture_matches_the_churned_subscription_sum():
    lamp = load_product(HERE / "lamp.yaml")
    choices = {"shade": "glass", "colour": "white", "dimmer": True, "arm_cm": 50, "watts": "6.5"}
    reference = resolve(lamp, coerce_choices(lamp, choices, complete=True))
    report = value_model(lamp, reference)
    expected = sum(Fraction(3, 2) * Fraction(3, 10) * Fraction(49, 50) ** i for i in range(36))
    assert abs(Fraction(report.software_contribution) - expected) < Fraction(1, 10**6)
    assert report.hardware_margin == Decimal("38.2")
    assert report.crossover_month is None
    assert len(report.months) == 36


def test_optional_feature_without_attach_rate_counts_zero_and_says_so():
    report = run(gadget("cloud", "turbo"))
    assert feature(report, "cloud").revenue == 0
    assert any("cloud has no attach rate" in n for n in report.notes)
    assert report.unavailable == ["turbo"]


# --- cost as volume grows --------------------------------------------------------------


def test_fixed_cost_per_unit_falls_as_one_over_volume():
    volumes = [100, 1000, 10_000, 100_000]
    report = run(gadget("cloud"), volumes=volumes, attach_rates={"cloud": "0.5"})
    assert [v.volume for v in report.volumes] == volumes
    assert report.fixed_cost_total == 25000
    for v in report.volumes:
        assert v.fixed_per_unit * v.volume == 25000
        assert v.hardware_full_cost == 51 + v.fixed_per_unit
    assert [v.fixed_per_unit for v in report.volumes] == [250, 25, money("2.5"), money("0.25")]


def test_marginal_cost_stays_at_unit_cost():
    report = run(
        gadget("maps", "cloud"),
        volumes=[1, 10, 1_000_000],
        attach_rates={"maps": "0.5", "cloud": "0.5"},
    )
    assert {v.hardware_marginal_cost for v in report.volumes} == {Decimal(51)}
    assert {v.software_marginal_cost for v in report.volumes} == {report.software_cost}
    assert report.software_cost > 0  # small, but counted


def test_software_share_of_lifetime_value():
    # 5 a month for 24 months = 120; hardware after fixed costs: 49 - 25 = 24 at 1,000 units.
    report = run(
        gadget("backup", "maps"),
        volumes=[100, 1000],
        attach_rates={"backup": "0.5"},
        monthly_churn=0,
    )
    # 24 * 0.5 = 12 in months 1 and 13: 24 in all.
    assert report.software_contribution == 24
    low, high = report.volumes
    assert low.hardware_contribution == 49 - 250
    assert low.software_share is None  # -201 + 24 is no value to share
    assert high.hardware_contribution == 24
    assert high.software_share == money("0.5")


def test_default_volumes_and_planned_volume():
    product = gadget("cloud")
    spec = ValueModelSpec(life_months=24, units_per_month=50, attach_rates={"cloud": "0.5"})
    report = value_model(product, unit(product), spec)
    assert [v.volume for v in report.volumes] == list(DEFAULT_VOLUMES)
    assert report.planned.volume == 1200
    assert report.planned.fixed_per_unit == money("20.833333")  # 25000 / 1200


def test_no_fixed_costs_leaves_full_cost_at_unit_cost():
    report = run(gadget("cloud", fixed=False), volumes=[10], attach_rates={"cloud": "0.5"})
    assert report.volumes[0].hardware_full_cost == 51


# --- output ----------------------------------------------------------------------------


def test_to_dict_is_json_with_exact_amounts():
    report = run(gadget("maps", "cloud"), attach_rates={"maps": "0.5", "cloud": "0.5"})
    data = json.loads(json.dumps(report.to_dict()))
    assert data["hardware"] == {
        "price": "100",
        "unit_cost": "51",
        "material_cost": "50",
        "labour_cost": "1",
        "margin": "49",
    }
    assert data["currency"] == "LQD"
    assert len(data["months"]) == 24
    assert {f["id"] for f in data["features"]} == {"maps", "cloud"}
    assert data["crossover_month"] == report.crossover_month
    assert data["fixed_costs"] == {"tooling": "20000", "certification": "5000"}


def test_render_names_the_parts_of_the_report():
    report = run(gadget("maps", "cloud"), attach_rates={"maps": "0.5", "cloud": "0.5"})
    text = report.render()
    for piece in ("Gadget", "price", "unit cost", "margin", "maps", "cloud", "30.00 once"):
        assert piece in text
    assert "10.00/month" in text
    assert "1,000,000" in text


# --- bad input -------------------------------------------------------------------------


def test_attach_rate_above_one_is_refused_by_the_format():
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        ValueModelSpec(attach_rates={"cloud": "1.5"})


def test_attach_rate_above_one_is_refused_even_when_validation_was_skipped():
    product = gadget("cloud")
    spec = ValueModelSpec().model_copy(update={"attach_rates": {"cloud": Decimal("1.5")}})
    with pytest.raises(ProductError, match=r"value_model\.attach_rates\.cloud.*less than or equal"):
        value_model(product, unit(product), spec)


def test_negative_churn_is_refused():
    product = gadget("cloud")
    spec = ValueModelSpec().model_copy(update={"monthly_churn": Decimal("-0.1")})
    with pytest.raises(ProductError, match="monthly_churn"):
        value_model(product, unit(product), spec)


def test_unknown_feature_is_named_with_the_known_ones():
    with pytest.raises(ProductError) as info:
        run(gadget("cloud"), attach_rates={"clod": "0.5"})
    assert "unknown feature 'clod'; the features are: cloud" in str(info.value)
    assert info.value.problems[0][0] == "value_model.attach_rates.clod"


def test_attach_rate_of_a_feature_the_unit_lacks_is_reported_not_counted():
    # An attach rate is a product-wide assumption; the reference unit may lack the feature.
    product = gadget("turbo")
    report = run(product, attach_rates={"turbo": "0.2"})
    assert report.features == []
    assert report.software_revenue == 0
    assert report.unavailable == ["turbo"]
    note = "turbo has an attach rate (20%) but is not available on this unit (available when pro)"
    assert any(n.startswith(note) for n in report.notes)
    assert note in report.render()
    report = run(product, reference=unit(product, pro=True), attach_rates={"turbo": "0.2"})
    assert feature(report, "turbo").revenue == 20
    assert not any("turbo has an attach rate" in n for n in report.notes)


def test_every_fault_is_reported_at_once():
    product = gadget("base", "cloud", "render")
    with pytest.raises(ProductError) as info:
        run(
            product,
            attach_rates={"base": "0.5", "nope": "0.1", "render": "0.3"},
            uses_per_month={"cloud": 3},
        )
    paths = [p[0] for p in info.value.problems]
    assert paths == [
        "value_model.attach_rates.base",
        "value_model.attach_rates.nope",
        "value_model.uses_per_month.cloud",
        "value_model.uses_per_month.render",
    ]
    text = str(info.value)
    assert "base is included on every unit" in text
    assert "cloud is priced subscription, not per use" in text
    assert "render is paid per render; say how many uses" in text


@pytest.mark.parametrize("volumes", [[], [0], [10, -5], [2.5]])
def test_bad_volumes_are_refused(volumes):
    with pytest.raises(ProductError, match="volume"):
        run(gadget("cloud"), volumes=volumes)


def test_reference_of_another_product_is_refused():
    lamp = load_product(HERE / "lamp.yaml")
    other = resolve(
        lamp,
        coerce_choices(
            lamp,
            {"shade": "paper", "colour": "white", "dimmer": False, "arm_cm": 20, "watts": 4},
            complete=True,
        ),
    )
    with pytest.raises(ProductError, match=r"reference unit is a org\.example\.lamp"):
        value_model(gadget("cloud"), other)


# --- the chart -------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("life", [24, 6])
def test_chart_is_a_real_png(tmp_path, life):
    report = run(gadget("maps", "cloud", life=life), attach_rates={"maps": "0.5", "cloud": "0.5"})
    path = write_chart(report, tmp_path / "charts" / "value.png")
    assert path == tmp_path / "charts" / "value.png"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert width > 800 and height > 300
    colours = {tuple(p) for p in pixels[::7, ::7].reshape(-1, pixels.shape[2]).tolist()}
    assert len(colours) > 20  # lines, text and fills, not a blank canvas


def test_chart_as_svg(tmp_path):
    report = run(gadget("cloud"), attach_rates={"cloud": "0.5"}, monthly_churn=0)
    path = write_chart(report, tmp_path / "value.svg")
    text = path.read_text()
    assert text.startswith("<?xml")
    assert "<svg" in text and text.rstrip().endswith("</svg>")
    assert text.count("<path") > 20


def test_chart_refuses_an_unknown_format(tmp_path):
    report = run(gadget("cloud"), attach_rates={"cloud": "0.5"})
    with pytest.raises(ProductError, match=r"\.png or \.svg"):
        write_chart(report, tmp_path / "value.jpg")
    assert not (tmp_path / "value.jpg").exists()
