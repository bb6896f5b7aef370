"""Product definitions: the examples, and every way a file can be wrong, with its line."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from liquidfab.errors import ProductError
from liquidfab.product import Product, load_product, product_from_data, product_json_schema
from liquidfab.product.expressions import evaluate
from liquidfab.product.resolved import coerce_choices, resolve, violated
from liquidfab.product.source import MAX_PRODUCT_BYTES

ROOT = Path(__file__).resolve().parents[2]
EBIKE = ROOT / "examples" / "ebike" / "product.yaml"
HEATPUMP = ROOT / "examples" / "heatpump" / "product.yaml"
EXAMPLES = [EBIKE, HEATPUMP]
MODELINE = "# yaml-language-server: $schema=../../docs/schemas/product.schema.json"

SUPPLIER_DIDS = {
    "kraftmotor": "did:key:z6MkjE6WR1CgruT6PNpRVNWtkit3ft8frjPMYk74pqfcNpLD",
    "cellco": "did:key:z6Mkhqd59RC9opkSsN7FhhbNki1Y8zjzJV8h6RhNHtBo4pNs",
    "alurahmen": "did:key:z6MkhUYgs6c75DyCDLjJ25ELAGvpYQgWJVUfRcDhJu4hWVxE",
}
VOLTWERK = "did:key:z6Mkw3kZUGiFmQ1w5n1iQFg2aRTzPy6mu662gNUbeC5CpQfq"


@pytest.fixture(scope="module")
def ebike() -> Product:
    return load_product(EBIKE)


@pytest.fixture(scope="module")
def heatpump() -> Product:
    return load_product(HEATPUMP)


def search(product: Product, fixed: dict, limit: int = 200_000) -> dict | None:
    """A valid complete configuration that keeps ``fixed``, or None: backtracking over
    the options in file order, each constraint checked once its options are chosen."""
    order = [*fixed, *(k for k in product.options if k not in fixed)]
    position = {k: i for i, k in enumerate(order)}
    checks: dict[int, list] = {}
    for c in product.constraints:
        checks.setdefault(max((position[n] for n in c.options), default=0), []).append(c)
    env: dict = {}
    budget = [limit]

    def go(i: int) -> bool:
        budget[0] -= 1
        assert budget[0] > 0, "the search ran out of budget"
        if i == len(order):
            return True
        key = order[i]
        for value in [fixed[key]] if key in fixed else product.options[key].domain():
            env[key] = value
            if all(evaluate(c.expr, env) for c in checks.get(i, [])) and go(i + 1):
                return True
            del env[key]
        return False

    return dict(env) if go(0) else None


def max_depth(product: Product) -> int:
    def depth(pid: str) -> int:
        return 1 + max((depth(line.part) for line in product.parts[pid].components), default=0)

    return max(depth(line.part) for line in product.bom)


# --- the examples ---------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=["ebike", "heatpump"])
def test_examples_start_with_the_schema_modeline(path):
    assert path.read_text(encoding="utf-8").splitlines()[0] == MODELINE


def test_ebike_has_the_required_size(ebike):
    assert ebike.id == "com.voltwerk.trail" and ebike.version == "1.0.0"
    assert ebike.currency == "LQD" and ebike.spec.manufacturer == VOLTWERK
    assert ebike.spec.nameplate.manufacturer_name == "Voltwerk Bikes"
    assert ebike.spec.nameplate.country == "DE"
    assert len(ebike.options) >= 15
    assert {o.kind for o in ebike.options.values()} == {"enum", "bool", "int", "decimal"}
    assert {s.id: s.did for s in ebike.spec.suppliers} == SUPPLIER_DIDS
    purchased = [p for p in ebike.parts.values() if p.supplier is not None]
    assert len(purchased) >= 30
    assert {p.supplier.id for p in purchased} == set(SUPPLIER_DIDS)
    assert all(p.unit_cost > 0 and p.lead_time_days > 0 for p in purchased)
    assert max_depth(ebike) >= 4  # bike → electrical system → battery pack → cell module → cell
    assert len(ebike.features) >= 6
    models = {f.price.model for f in ebike.features.values()}
    assert models == {"included", "one-time", "subscription", "trial-then-paid", "per-use"}
    assert {f.kind for f in ebike.features.values()} == {"firmware", "app", "ai-model"}
    assert list(ebike.stations) == [
        "frame-prep",
        "paint",
        "drivetrain",
        "electrical",
        "final-assembly",
        "test-flash",
    ]
    kinds = {c.kind for c in ebike.constraints}
    assert kinds == {"rule", "requires", "excludes", "table", "precondition"}
    assert any(c.when for c in ebike.spec.constraints)
    assert any(c.table and not c.table.allow for c in ebike.spec.constraints)
    assert ebike.variant_space() > 10**9
    assert ebike.spec.value_model.life_months == 96
    assert {f.id for f in ebike.fixed_costs} >= {"frame-tooling", "engineering", "certification"}


def test_heatpump_is_a_different_product(ebike, heatpump):
    assert heatpump.id != ebike.id
    assert heatpump.spec.manufacturer not in (None, VOLTWERK)
    assert heatpump.spec.nameplate.manufacturer_name != "Voltwerk Bikes"
    dids = {s.did for s in heatpump.spec.suppliers}
    assert len(dids) >= 3 and not dids & set(SUPPLIER_DIDS.values())
    assert not set(heatpump.options) & set(ebike.options)
    assert len(heatpump.options) >= 12
    assert {o.kind for o in heatpump.options.values()} == {"enum", "bool", "int", "decimal"}
    assert len([p for p in heatpump.parts.values() if p.supplier]) >= 30
    assert max_depth(heatpump) >= 4
    assert len(heatpump.features) >= 6 and len(heatpump.stations) >= 5
    assert {c.kind for c in heatpump.constraints} == {
        "rule",
        "requires",
        "excludes",
        "table",
        "precondition",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=["ebike", "heatpump"])
def test_every_option_value_is_in_some_valid_configuration(path):
    product = load_product(path)
    for option in product.options.values():
        for value in option.domain():
            found = search(product, {option.id: value})
            assert found is not None, f"{option.id} = {value} is in no valid configuration"
            assert violated(product, found) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=["ebike", "heatpump"])
def test_reference_unit_is_valid_and_sane(path):
    product = load_product(path)
    reference = coerce_choices(product, product.spec.value_model.reference, complete=True)
    r = resolve(product, reference)
    assert r.price == product.base_price + sum(line.amount for line in r.price_lines[1:])
    assert 0 < r.material_cost < r.unit_cost < r.price
    assert r.labour_cost > 0 and r.build_seconds > 3600
    assert {op.station for op in r.operations} == set(product.stations)
    assert 0 < r.lead_time_days <= 90
    assert {i.supplier for i in r.bom if i.purchased} == {s.id for s in product.spec.suppliers}
    json.dumps(r.to_dict())  # every value is plain JSON
    for key in product.spec.value_model.attach_rates:
        assert key in product.features


ENTRY_BIKE = {
    "frame_style": "step-through",
    "frame_size": "S",
    "frame_colour": "pure-white",
    "motor": "hub-rear-250",
    "battery_wh": 400,
    "range_extender": False,
    "gearing": "derailleur-9",
    "charger": "standard-2a",
    "brakes": "rim-v",
    "suspension_fork": "rigid",
    "tyres": "city",
    "tyre_width_in": "1.8",
    "display": "led-remote",
    "handlebar_rise_cm": "4.5",
    "lights": "integrated-70lux",
    "connectivity_module": False,
    "rack": False,
    "fenders": True,
    "kickstand": True,
    "saddle": "comfort",
    "pedals": "nylon-platform",
}
S_PEDELEC = {
    **ENTRY_BIKE,
    "frame_style": "diamond",
    "frame_size": "XL",
    "frame_colour": "raw-brushed",
    "motor": "mid-350-speed",
    "battery_wh": 900,
    "range_extender": True,
    "gearing": "belt-cvt",
    "charger": "fast-6a",
    "brakes": "disc-hydraulic-4p",
    "suspension_fork": "air-100",
    "tyres": "allroad",
    "tyre_width_in": "2.4",
    "display": "colour-3in-nav",
    "handlebar_rise_cm": 0,
    "lights": "high-beam-ece",
    "connectivity_module": True,
    "rack": True,
    "saddle": "leather",
    "pedals": "spd-combo",
}


def test_entry_bike_resolves(ebike):
    r = resolve(ebike, coerce_choices(ebike, ENTRY_BIKE, complete=True))
    parts = r.purchased_parts()
    assert parts["cell-18650"] == 40 and parts["cell-holder-10"] == 4
    assert parts["nickel-strip"] == Fraction(22, 10)
    assert parts["spoke"] == 68 and parts["tyre-city"] == 2
    assert "motor-hr250" in parts and "frame-step" in parts and "brake-rim-v" in parts
    assert not {"motor-md65", "rotor-180", "rotor-203", "module-lte"} & set(parts)
    rear = next(i for i in r.bom if i.part == "motor-hr250")
    assert rear.path == ("wheelset", "rear-wheel", "motor-hr250") and rear.level == 3
    assert r.derived["motor_torque_nm"] == 45 and r.derived["speed_pedelec"] is False
    ops = {op.id: op for op in r.operations}
    assert ops["powder-coat"].parameters["ral_code"] == 9010
    assert ops["mount-tyres"].parameters["pressure_bar"] == Fraction(9, 2)
    assert ops["flash-firmware"].parameters["speed_limit_kmh"] == 25
    assert "brush-and-clear" not in ops and "weld-extender" not in ops
    assert ops["fit-accessories"].seconds == 300 + 120
    assert r.price == Decimal(1290 + 25 + 59 + 35)
    features = {f.id for f in r.features}
    assert "anti-theft" in features and "fleet-telemetry" not in features
    assert "ai-riding-coach" not in features  # needs the mid motor's torque sensor


def test_s_pedelec_resolves(ebike):
    r = resolve(ebike, coerce_choices(ebike, S_PEDELEC, complete=True))
    parts = r.purchased_parts()
    assert parts["cell-18650"] == 90 + 50  # frame battery and range extender
    assert parts["bms-10s-40"] == 1 and parts["bms-10s-25"] == 1
    assert parts["rotor-203"] == 2 and parts["hub-cvt"] == 1 and parts["belt"] == 1
    assert {"plate-holder", "mirror", "light-rear-ece", "clear-coat"} <= set(parts)
    cells = [i for i in r.bom if i.part == "cell-18650"]
    assert [i.level for i in cells] == [4, 3]
    assert cells[0].path == ("electrical-system", "battery-pack", "cell-module", "cell-18650")
    assert r.derived["total_wh"] == 1400 and r.derived["range_km"] == 112
    ops = {op.id: op for op in r.operations}
    assert {"brush-and-clear", "weld-extender", "fit-plate-and-mirror"} <= set(ops)
    assert "powder-coat" not in ops
    assert ops["flash-firmware"].parameters["speed_limit_kmh"] == 45
    assert ops["flash-firmware"].parameters["battery_wh"] == 1400
    assert ops["fit-brakes"].parameters["rotor_mm"] == 203
    assert ops["inspect-and-face"].parameters["jig"] == "XL"
    assert 4400 < r.price < 6500
    assert {f.id for f in r.features} == set(ebike.features)
    assert r.lead_time_days == 70


def test_invalid_configuration_names_the_broken_rules(ebike):
    bad = {**S_PEDELEC, "brakes": "rim-v", "fenders": False}
    choices = coerce_choices(ebike, bad, complete=True)
    broken = {c.id for c in violated(ebike, choices)}
    assert {"s-pedelec-brakes", "s-pedelec-fenders", "brakes.rim-v.when"} <= broken
    with pytest.raises(ProductError) as info:
        resolve(ebike, choices)
    text = str(info.value)
    assert "s-pedelec-fenders: An S-pedelec carries its licence plate" in text
    assert "(if speed_pedelec then fenders)" in text
    assert "Brakes V-brakes is available only when motor == 'hub-rear-250'" in text


def test_heatpump_resolves(heatpump):
    choices = search(heatpump, {"capacity_kw": Fraction(14), "backup_heater_kw": Fraction(9)})
    r = resolve(heatpump, choices)
    assert choices["power_supply"] == "three-phase"  # 14 kW runs on three phases
    parts = r.purchased_parts()
    assert parts["heater-element"] == 6 and parts["fan-ec"] == 2
    charge = r.derived["refrigerant_charge_kg"]
    assert parts[f"refrigerant-{choices['refrigerant']}"] == charge
    ops = {op.id: op for op in r.operations}
    assert ops["evacuate-and-charge"].parameters["charge_g"] == charge * 1000


def test_schema_describes_the_examples():
    schema = product_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"id", "version", "name", "options", "pricing"}
    for path in EXAMPLES:
        data = load_product(path).document()
        assert set(data) <= set(schema["properties"])
    committed = ROOT / "docs" / "schemas" / "product.schema.json"
    if committed.exists():
        assert json.loads(committed.read_text(encoding="utf-8")) == schema


def test_product_from_data_gives_the_same_product(ebike):
    again = product_from_data(ebike.document())
    assert again.digest() == ebike.digest() and len(ebike.digest()) == 64
    assert again.variant_space() == ebike.variant_space()


# --- bad input: message, line and path ------------------------------------------------

BASE = """\
id: org.example.kettle
version: 1.0.0
name: Kettle
options:
  - id: size
    type: enum
    values: [small, large]
  - id: litres
    type: decimal
    min: 1
    max: 2
    step: 0.5
  - id: timer
    type: bool
derived:
  - id: watts
    value: "1500 + 500 * (size == 'large')"
constraints:
  - id: large-holds-more
    message: A large kettle holds more than a litre.
    requires: {if: "size == 'large'", then: "litres > 1"}
  - id: timer-sizes
    message: The timer comes on the large kettle only.
    when: timer
    table:
      columns: [size]
      rows: [[large]]
suppliers:
  - {id: acme, name: Acme Parts, did: "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}
parts:
  - {id: element, name: Heating element, supplier: acme, unit_cost: 4, lead_time_days: 10}
  - {id: body, name: Body, supplier: acme, unit_cost: 6}
  - id: base-unit
    name: Base unit
    components:
      - {part: element, quantity: "watts / 1000"}
bom:
  - {part: body}
  - {part: base-unit}
stations:
  - {id: assembly, name: Assembly, cost_per_hour: 40}
routing:
  - {id: assemble, station: assembly, time: "60 + 30 * timer", parameters: {w: watts}}
features:
  - {id: boil-alert, name: Boil alert, kind: app, included: true}
  - id: keep-warm
    name: Keep warm
    kind: firmware
    price: {model: one-time, amount: 5}
    available_when: timer
pricing:
  base: 30
  rules:
    - {id: large, label: Large, when: "size == 'large'", amount: 10}
value_model:
  attach_rates: {keep-warm: 0.2}
"""


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def line_of(text: str, needle: str) -> int:
    assert text.count(needle) >= 1, needle
    return text[: text.index(needle)].count("\n") + 1


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ProductError) as info:
        load_product(text, file="kettle.yaml")
    return info.value.problems


def test_base_is_valid():
    product = load_product(BASE, file="kettle.yaml")
    r = resolve(product, {"size": "large", "litres": Fraction(2), "timer": True})
    assert r.price == 40 and r.unit_cost == 4 * 2 + 6 + 1  # 90 s at 40 per hour
    assert r.purchased_parts() == {"body": 1, "element": 2}


# (old, new, path, line needle in the edited text, message fragment)
CASES = {
    "malformed yaml": (
        "values: [small, large]",
        "values: [small, large",
        "",
        "  - id: litres",
        "not valid YAML: expected ',' or ']', but got ':'",
    ),
    "version read as a number": (
        "version: 1.0.0",
        "version: 1.0",
        "version",
        "version:",
        "YAML read 1.0 as a number, so quote it",
    ),
    "name read as a number": (
        "name: Kettle",
        "name: 2024",
        "name",
        "name: 2024",
        "YAML read 2024 as a number, so quote it",
    ),
    "text for a decimal": (
        "unit_cost: 6}",
        "unit_cost: six}",
        "parts[1].unit_cost",
        "{id: body",
        "Input should be a valid decimal",
    ),
    "negative lead time": (
        "lead_time_days: 10}",
        "lead_time_days: -1}",
        "parts[0].lead_time_days",
        "{id: element",
        "greater than or equal to 0",
    ),
    "bad product id": (
        "id: org.example.kettle",
        "id: Kettle",
        "id",
        "id: Kettle",
        "String should match pattern",
    ),
    "missing field": ("name: Kettle\n", "", "name", "id: org", "Field required"),
    "unknown field": (
        "    type: bool\n",
        "    type: bool\n    colour: red\n",
        "options[2].colour",
        "colour: red",
        "Extra inputs are not permitted",
    ),
    "unknown top-level field": (
        "value_model:",
        "pricng: {}\nvalue_model:",
        "pricng",
        "pricng:",
        "Extra inputs are not permitted",
    ),
    "duplicate yaml key": (
        "    type: bool\n",
        "    type: bool\n    type: enum\n",
        "options[2].type",
        "    type: enum\nderived:",
        "'type' appears twice",
    ),
    "duplicate part id": (
        "{id: body, name: Body",
        "{id: element, name: Body",
        "parts[1].id",
        "{id: element, name: Body",
        "the id 'element' is used twice in parts",
    ),
    "duplicate option id": (
        "  - id: timer\n    type: bool",
        "  - id: litres\n    type: bool",
        "options[2].id",
        "  - id: litres\n    type: bool",
        "the id 'litres' is used twice in options",
    ),
    "duplicate enum value": (
        "values: [small, large]",
        "values: [small, small, large]",
        "options[0].values",
        "values: [small",
        "a value is listed twice",
    ),
    "unknown bom part": (
        "{part: body}",
        "{part: bodyy}",
        "bom[0].part",
        "{part: bodyy}",
        "unknown part 'bodyy'",
    ),
    "unknown component part": (
        "{part: element, quantity",
        "{part: elemnt, quantity",
        "parts[2].components[0].part",
        "{part: elemnt",
        "unknown part 'elemnt'",
    ),
    "unknown supplier": (
        "supplier: acme, unit_cost: 6",
        "supplier: acne, unit_cost: 6",
        "parts[1].supplier",
        "{id: body",
        "unknown supplier 'acne'",
    ),
    "unknown station": (
        "station: assembly,",
        "station: assmbly,",
        "routing[0].station",
        "{id: assemble",
        "unknown station 'assmbly'",
    ),
    "unknown table column": (
        "columns: [size]",
        "columns: [sise]",
        "constraints[1].table.columns[0]",
        "columns: [sise]",
        "unknown option 'sise'",
    ),
    "unknown table value": (
        "rows: [[large]]",
        "rows: [[huge]]",
        "constraints[1].table.rows[0][0]",
        "rows: [[huge]]",
        "'huge' is not a value of size (small, large)",
    ),
    "table row of the wrong width": (
        "rows: [[large]]",
        "rows: [[large, 1]]",
        "constraints[1].table.rows[0]",
        "rows: [[large, 1]]",
        "a row has 1 cells, one per column",
    ),
    "unknown attach-rate feature": (
        "{keep-warm: 0.2}",
        "{keep-wrm: 0.2}",
        "value_model.attach_rates.keep-wrm",
        "attach_rates:",
        "unknown feature 'keep-wrm'",
    ),
    "unknown uses-per-month feature": (
        "  attach_rates: {keep-warm: 0.2}",
        "  attach_rates: {keep-warm: 0.2}\n  uses_per_month: {boil: 2}",
        "value_model.uses_per_month.boil",
        "uses_per_month:",
        "unknown feature 'boil'",
    ),
    "unknown reference option": (
        "  attach_rates: {keep-warm: 0.2}",
        "  attach_rates: {keep-warm: 0.2}\n  reference: {colour: red}",
        "value_model.reference.colour",
        "reference:",
        "unknown option 'colour'",
    ),
    "reference value outside the domain": (
        "  attach_rates: {keep-warm: 0.2}",
        "  attach_rates: {keep-warm: 0.2}\n  reference: {litres: 3}",
        "value_model.reference.litres",
        "reference:",
        "litres is between 1 and 2",
    ),
    "direct bom cycle": (
        "{part: element, quantity",
        "{part: base-unit, quantity",
        "parts[2].components",
        "      - {part: base-unit",
        "the BOM is cyclic: base-unit → base-unit",
    ),
    "indirect bom cycle": (
        "parts:\n",
        "parts:\n"
        "  - {id: a, name: A, components: [{part: b}]}\n"
        "  - {id: b, name: B, components: [{part: c, quantity: 2}]}\n"
        "  - {id: c, name: C, components: [{part: a, when: timer}]}\n",
        "parts[2].components",
        "  - {id: c,",
        "the BOM is cyclic: a → b → c → a",
    ),
    "unknown name": (
        'time: "60 + 30 * timer"',
        'time: "60 + 30 * timr"',
        "routing[0].time",
        "{id: assemble",
        "unknown name 'timr' (at column 11): '60 + 30 * timr'",
    ),
    "derived used before it is defined": (
        "    value: \"1500 + 500 * (size == 'large')\"",
        '    value: "1500 + 500 * (size == \'large\') + later"\n  - id: later\n    value: "1"',
        "derived[0].value",
        "    value: ",
        "unknown name 'later'",
    ),
    "derived id of an option": (
        "  - id: watts\n",
        "  - id: watts\n    value: 1\n  - id: timer\n",
        "derived[1].id",
        "  - id: timer\n    value",
        "'timer' is already an option",
    ),
    "text in arithmetic": (
        "amount: 10}",
        'amount: "size * 10"}',
        "pricing.rules[0].amount",
        "{id: large",
        "'*' needs numbers, not text",
    ),
    "unknown enum value": (
        "when: \"size == 'large'\", amount",
        "when: \"size == 'huge'\", amount",
        "pricing.rules[0].when",
        "{id: large",
        "'huge' is not a value of size (one of small, large)",
    ),
    "division by an option": (
        'time: "60 + 30 * timer"',
        'time: "60 / litres"',
        "routing[0].time",
        "{id: assemble",
        "the divisor must be a constant",
    ),
    "a number where a condition is wanted": (
        "available_when: timer",
        "available_when: litres",
        "features[1].available_when",
        "available_when: litres",
        "this expression gives a number, a true/false value is needed",
    ),
    "text where a number is wanted": (
        'quantity: "watts / 1000"',
        "quantity: size",
        "parts[2].components[0].quantity",
        "{part: element",
        "this expression gives a text value, a number is needed",
    ),
    "too long expression": (
        'time: "60 + 30 * timer"',
        'time: "max(' + ", ".join(["litres"] * 300) + ')"',
        "routing[0].time",
        "{id: assemble",
        "an expression is at most 2000 characters",
    ),
    "two kinds in one constraint": (
        '    requires: {if: "size == \'large\'", then: "litres > 1"}',
        '    requires: {if: "size == \'large\'", then: "litres > 1"}\n    rule: timer',
        "constraints[0]",
        "  - id: large-holds-more",
        "a constraint has exactly one of rule, requires, excludes, table",
    ),
    "excludes with one condition": (
        '    requires: {if: "size == \'large\'", then: "litres > 1"}',
        "    excludes: [timer]",
        "constraints[0].excludes",
        "excludes: [timer]",
        "List should have at least 2 items",
    ),
    "bool option with values": (
        "    type: bool\n",
        "    type: bool\n    values: [a, b]\n",
        "options[2]",
        "  - id: timer",
        "a bool option has no 'values'",
    ),
    "int option with a fractional step": (
        "    type: decimal\n",
        "    type: int\n",
        "options[1]",
        "  - id: litres",
        "an int option has whole-number min, max and step",
    ),
    "max not reached in whole steps": (
        "    max: 2\n",
        "    max: 2.2\n",
        "options[1].max",
        "    max: 2.2",
        "max is not reached from min in whole steps",
    ),
    "too many values": (
        "    step: 0.5\n",
        "    step: 0.000001\n",
        "options[1]",
        "  - id: litres",
        "more than 1,000,000 values; widen the step",
    ),
    "default outside the domain": (
        "    step: 0.5\n",
        "    step: 0.5\n    default: 3\n",
        "options[1].default",
        "    default: 3",
        "litres is between 1 and 2",
    ),
    "subscription without a period": (
        "price: {model: one-time, amount: 5}",
        "price: {model: subscription, amount: 5}",
        "features[1].price",
        "    price:",
        "a subscription price has a period (month or year)",
    ),
    "included feature with a price": (
        "kind: app, included: true}",
        "kind: app, included: true, price: {model: one-time, amount: 1}}",
        "features[0]",
        "{id: boil-alert",
        "an included feature has the 'included' price model",
    ),
    "unsupported yaml value": (
        "name: Kettle",
        "name: 2024-01-01",
        "name",
        "name: 2024",
        "date values are not accepted",
    ),
    "python tag": (
        "name: Kettle",
        "name: !!python/object/apply:os.system echo",
        "",
        "name: !!python",
        "not valid YAML: could not determine a constructor",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_input_is_located(case):
    old, new, path, needle, message = case
    text = edit(old, new)
    found = problems(text)
    expected_line = line_of(text, needle)
    matching = [p for p in found if p[0] == path and message in p[2]]
    assert matching, f"no problem at {path!r} with {message!r} in {found}"
    assert matching[0][1] == expected_line, found


@pytest.mark.parametrize(
    "construct",
    [
        "__import__('os').system('echo pwned') == 0",
        "litres.real > 1",
        "litres.__class__ == size",
        "(lambda: True)()",
        "[x for x in [1, 2]] == [1]",
        "{x for x in [1]} == {1}",
        "[1, 2][0] == 1",
        "len(size) > 1",
        "eval('True')",
        "f'{size}' == 'large'",
        "(x := litres) > 1",
        "litres ** 2 > 1",
    ],
)
def test_unsafe_expressions_are_refused_with_their_line(construct, monkeypatch):
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("os.system was called"))
    text = edit('then: "litres > 1"', f'then: "{construct}"')
    found = problems(text)
    assert len(found) == 1
    path, line, message = found[0]
    assert path == "constraints[0].requires.then"
    assert line == line_of(text, "requires: {if")
    assert "not part of the language" in message or "only min(), max() and abs()" in message


def test_every_problem_is_reported_at_once():
    text = edit("{part: body}", "{part: bodyy}").replace("station: assembly,", "station: x,")
    text = text.replace('time: "60 + 30 * timer"', 'time: "60 + 30 * timr"')
    with pytest.raises(ProductError) as info:
        load_product(text, file="kettle.yaml")
    paths = [p[0] for p in info.value.problems]
    assert paths == ["bom[0].part", "routing[0].station", "routing[0].time"]
    lines = str(info.value).splitlines()
    assert (
        lines[0]
        == f"kettle.yaml:{line_of(text, '{part: bodyy}')}: bom[0].part: unknown part 'bodyy'"
    )
    assert len(lines) == 3


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_is_refused(text, tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProductError) as info:
        load_product(path)
    assert info.value.problems == [("", 1, "the file is empty")]
    assert str(info.value) == f"{path}:1: the file is empty"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_a_file_that_is_not_a_mapping_is_refused(text):
    assert problems(text) == [("", 1, "a product file is a mapping of fields")]


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    padding = "# " + "x" * 78 + "\n"
    path.write_text(BASE + padding * (MAX_PRODUCT_BYTES // len(padding) + 1), encoding="utf-8")
    assert path.stat().st_size > MAX_PRODUCT_BYTES
    with pytest.raises(ProductError) as info:
        load_product(path)
    assert info.value.problems == [("", None, f"larger than {MAX_PRODUCT_BYTES} bytes")]
    assert str(info.value).startswith(str(path) + ": larger than")
    with pytest.raises(ProductError, match="larger than"):
        load_product(path.read_text(encoding="utf-8"))


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("Kettle", "Kessel für Tee").encode("latin-1"))
    with pytest.raises(ProductError, match="the file is not UTF-8 text"):
        load_product(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ProductError, match="cannot read the file"):
        load_product(tmp_path / "nope.yaml")


def test_tags_on_collections_construct_nothing(monkeypatch):
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("os.system was called"))
    text = edit("name: Kettle", 'name: !!python/object/apply:os.system ["echo pwned"]')
    found = problems(text)
    assert [(p[0], p[1]) for p in found] == [("name", 3)]


def test_problems_from_data_have_no_line():
    from liquidfab.product.source import read_source

    data = read_source(edit("{part: body}", "{part: bodyy}")).data
    with pytest.raises(ProductError) as info:
        product_from_data(data)
    assert info.value.problems == [("bom[0].part", None, "unknown part 'bodyy'")]
    assert str(info.value) == "<document>: bom[0].part: unknown part 'bodyy'"


def test_an_infinite_quantity_is_a_located_error():
    text = edit('quantity: "watts / 1000"', "quantity: .inf")
    found = problems(text)
    assert found[0][0] == "parts[2].components[0].quantity"


def test_yaml_booleans_get_a_true_false_hint():
    text = edit("values: [small, large]", "values: [yes, large]")
    messages = [p[2] for p in problems(text)]
    assert any("as true/false, so quote it" in m for m in messages), messages
