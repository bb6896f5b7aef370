"""Build programs compiled from the e-bike: the routing, evaluated for each configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from liquidfab.errors import ProductError
from liquidfab.product import load_product
from liquidfab.product.resolved import coerce_choices, resolve
from liquidfab.production.program import (
    PROGRAM_SCHEMA_VERSION,
    BuildProgram,
    compile_program,
    compile_resolved,
    program_json_schema,
)

EBIKE = load_product(Path(__file__).parents[2] / "examples" / "ebike" / "product.yaml")

# The value model's reference bike: a mid-motor trekking bike, medium frame, graphite.
# As JSON carries it: decimals become numbers (2.2), whole ones integers (600).
TREKKING = json.loads(
    json.dumps(EBIKE.spec.value_model.reference, default=lambda d: float(d) if d % 1 else int(d))
)
# An S-pedelec in XL, traffic red, belt drive: many parameters differ.
SPEED = {
    **TREKKING,
    "frame_size": "XL",
    "frame_colour": "traffic-red",
    "motor": "mid-350-speed",
    "battery_wh": 700,
    "gearing": "belt-cvt",
    "brakes": "disc-hydraulic-4p",
    "suspension_fork": "air-100",
    "lights": "high-beam-ece",
    "tyre_width_in": 2.0,
    "rack": False,
}


def routing(choices):
    return resolve(EBIKE, coerce_choices(EBIKE, choices, complete=True)).operations


def step(program, operation):
    (found,) = [s for s in program.steps if s.operation == operation]
    return found


@pytest.mark.parametrize("choices", [TREKKING, SPEED], ids=["trekking", "speed"])
def test_steps_are_the_routing_in_order(choices):
    program = compile_program(EBIKE, choices)
    ops = routing(choices)
    assert [s.index for s in program.steps] == list(range(len(ops)))
    assert [s.operation for s in program.steps] == [op.id for op in ops]
    assert [s.station for s in program.steps] == [op.station for op in ops]
    assert [s.expected_seconds for s in program.steps] == [float(op.seconds) for op in ops]
    assert program.stations == [
        "frame-prep",
        "paint",
        "electrical",
        "drivetrain",
        "final-assembly",
        "test-flash",
    ]
    assert program.product == EBIKE.id
    assert program.product_version == EBIKE.version
    assert program.product_digest == EBIKE.digest()
    assert program.schema_version == PROGRAM_SCHEMA_VERSION


def test_parameters_follow_the_configuration():
    trekking = compile_program(EBIKE, TREKKING)
    speed = compile_program(EBIKE, SPEED)

    assert step(trekking, "inspect-and-face").parameters == {
        "jig": "M",
        "style": "diamond",
        "mid_motor_mount": True,
    }
    assert step(speed, "inspect-and-face").parameters["jig"] == "XL"
    assert step(speed, "inspect-and-face").expected_seconds == 540  # 480 + 60 for XL

    paint_a = step(trekking, "powder-coat").parameters
    paint_b = step(speed, "powder-coat").parameters
    assert (paint_a["colour"], paint_a["ral_code"]) == ("graphite", 7024)
    assert (paint_b["colour"], paint_b["ral_code"]) == ("traffic-red", 3020)
    assert paint_a["powder_kg"] == 0.45 and paint_b["powder_kg"] == 0.5
    assert step(speed, "powder-coat").expected_seconds == 960  # 840 + 120 for XL

    flash_a = step(trekking, "flash-firmware").parameters
    flash_b = step(speed, "flash-firmware").parameters
    assert (flash_a["motor"], flash_a["speed_limit_kmh"], flash_a["assist_torque_nm"]) == (
        "mid-250",
        25,
        65,
    )
    assert (flash_b["motor"], flash_b["speed_limit_kmh"], flash_b["battery_wh"]) == (
        "mid-350-speed",
        45,
        700,
    )
    tyres_b = step(speed, "mount-tyres").parameters
    assert tyres_b == {"tyres": "allroad", "width_in": 2.0, "pressure_bar": 4.5}
    assert step(speed, "fit-brakes").parameters["rotor_mm"] == 203
    assert step(speed, "fit-fork-and-cockpit").parameters["stem_bolt_nm"] == 5.5
    # optional operations appear only when their condition holds
    assert "fit-plate-and-mirror" in [s.operation for s in speed.steps]
    assert "fit-plate-and-mirror" not in [s.operation for s in trekking.steps]


def test_numbers_are_ints_when_whole_and_exact_decimals_otherwise():
    program = compile_program(EBIKE, TREKKING)
    for s in program.steps:
        for value in s.parameters.values():
            assert isinstance(value, bool | int | float | str)
    assert type(step(program, "powder-coat").parameters["ral_code"]) is int
    assert type(step(program, "mount-tyres").parameters["pressure_bar"]) is float
    assert type(step(program, "inspect-and-face").parameters["mid_motor_mount"]) is bool
    assert '"powder_kg":0.45' in program.model_dump_json()
    assert program.choices["battery_wh"] == 600 and type(program.choices["battery_wh"]) is int
    assert program.choices["tyre_width_in"] == 2.2
    assert program.choices["rack"] is True


def test_a_raw_frame_is_brushed_instead_of_painted():
    program = compile_program(EBIKE, {**TREKKING, "frame_colour": "raw-brushed"})
    operations = [s.operation for s in program.steps]
    assert "powder-coat" not in operations
    assert step(program, "brush-and-clear").parameters == {
        "grit": 240,
        "clear_coat_kg": 0.3,
        "oven_c": 180,
        "cure_min": 15,
    }


def test_steps_for_a_station():
    program = compile_program(EBIKE, TREKKING)
    paint = program.steps_for("paint")
    assert [s.operation for s in paint] == ["powder-coat", "decals-and-headset"]
    assert program.steps_for("no-such-station") == []
    assert sum(len(program.steps_for(st)) for st in program.stations) == len(program.steps)


def test_features_included_and_bought():
    plain = compile_program(EBIKE, TREKKING)
    assert plain.features == ["anti-theft"]
    bought = compile_program(EBIKE, TREKKING, features=["auto-shift", "range-boost"])
    assert bought.features == ["anti-theft", "range-boost", "auto-shift"]  # definition order
    # auto shifting needs a stepless hub: not available with a derailleur
    with pytest.raises(ProductError, match="auto-shift: not available"):
        compile_program(EBIKE, SPEED | {"gearing": "derailleur-12"}, features=["auto-shift"])
    with pytest.raises(ProductError, match="no such feature"):
        compile_program(EBIKE, TREKKING, features=["warp-drive"])


def test_digest_is_stable_and_changes_with_the_program():
    a1 = compile_program(EBIKE, TREKKING, order_id="order-1")
    a2 = compile_program(EBIKE, dict(reversed(list(TREKKING.items()))), order_id="order-1")
    assert a1.digest() == a2.digest()
    assert len(a1.digest()) == 64 and int(a1.digest(), 16) >= 0
    again = BuildProgram.model_validate_json(a1.model_dump_json())
    assert again == a1 and again.digest() == a1.digest()
    assert compile_program(EBIKE, SPEED, order_id="order-1").digest() != a1.digest()
    assert compile_program(EBIKE, {**TREKKING, "rack": False}).digest() != a1.digest()
    assert compile_program(EBIKE, TREKKING, order_id="order-2").digest() != a1.digest()
    # a copy never keeps a stale digest
    assert a1.model_copy(update={"order_id": "order-3"}).digest() != a1.digest()


def test_compile_resolved_equals_compile_program():
    resolved = resolve(EBIKE, coerce_choices(EBIKE, SPEED, complete=True))
    assert compile_resolved(resolved, order_id="x") == compile_program(EBIKE, SPEED, order_id="x")


def test_json_schema_is_generated_from_the_model():
    schema = program_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"product", "product_digest", "choices", "steps"}
    step_schema = schema["$defs"]["ProgramStep"]
    assert set(step_schema["properties"]) == {
        "index",
        "station",
        "operation",
        "name",
        "parameters",
        "expected_seconds",
    }
    assert step_schema["additionalProperties"] is False
    json.dumps(schema)  # plain JSON


@pytest.mark.parametrize(
    ("choices", "fragment"),
    [
        ({**TREKKING, "motor": "warp-9"}, "is not a value of motor"),
        ({**TREKKING, "battery_wh": 650}, "steps of 100"),
        ({**TREKKING, "colour": "red"}, "has no option 'colour'"),
        ({k: v for k, v in TREKKING.items() if k != "saddle"}, "saddle: not chosen"),
        ({**SPEED, "brakes": "disc-mech"}, "s-pedelec-brakes"),
    ],
    ids=["unknown-value", "off-step", "unknown-option", "missing", "constraint"],
)
def test_invalid_choices_raise_product_error(choices, fragment):
    with pytest.raises(ProductError, match=fragment):
        compile_program(EBIKE, choices)


def test_a_program_document_is_checked():
    good = compile_program(EBIKE, TREKKING).document()
    shuffled = {**good, "steps": [good["steps"][1], good["steps"][0], *good["steps"][2:]]}
    with pytest.raises(ValidationError, match="numbered 0, 1, 2"):
        BuildProgram.model_validate(shuffled)
    with pytest.raises(ValidationError, match="Extra inputs"):
        BuildProgram.model_validate({**good, "surprise": 1})
    with pytest.raises(ValidationError):
        BuildProgram.model_validate({**good, "schema_version": 2})
