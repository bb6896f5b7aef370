"""The virtual line: build programs executed in SimPy on a layout's line stations."""

from __future__ import annotations

from pathlib import Path

import pytest

from liquidfab.factory.model import Layout, load_layout
from liquidfab.product import Configurator, load_product
from liquidfab.production.executor import BuildRecord
from liquidfab.production.program import BuildProgram, compile_program
from liquidfab.production.stations import Station
from liquidfab.production.virtual_line import DesStation, LineRun, VirtualLine, variant_of

ROOT = Path(__file__).resolve().parents[2]
EBIKE = ROOT / "examples" / "ebike" / "factory.yaml"
LAMP = ROOT / "tests" / "product" / "lamp.yaml"

LAMP_LINE = """
layout: {id: org.example.lamp.line, version: 1.0.0, name: Lamp line}
blocking: after-service
arrivals: {kind: saturated}
mix:
  - {name: paper, weight: 1, choices: {shade: paper, colour: white, arm_cm: 30, watts: 5}}
  - {name: glass, weight: 1, choices: {shade: glass, colour: white, arm_cm: 40, watts: 6}}
stations:
  - {id: assembly, buffer: 2, process: {kind: routing, cv: 0}}
  - id: test
    buffer: 1
    process: {kind: routing, cv: 0}
    setup: {default: 100}
"""


@pytest.fixture(scope="module")
def ebike() -> Layout:
    return load_layout(EBIKE)


@pytest.fixture(scope="module")
def variants(ebike: Layout) -> dict[str, dict]:
    """Each mix variant's complete configuration."""
    configurator = Configurator(ebike.product)
    out = {}
    for v in ebike.variants:
        done = configurator.complete(v.choices)
        assert done.resolved is not None
        out[v.name] = dict(done.resolved.choices)
    return out


def programs_for(ebike: Layout, variants: dict[str, dict], names: list[str]) -> list[BuildProgram]:
    return [
        compile_program(ebike.product, variants[name], order_id=f"order-{i}-{name}")
        for i, name in enumerate(names)
    ]


@pytest.fixture(scope="module")
def lamp_line() -> Layout:
    return load_layout(LAMP_LINE, product=load_product(LAMP))


def lamp(shade: str = "paper", arm_cm: int = 30, dimmer: bool = False, i: int = 0) -> BuildProgram:
    product = load_product(LAMP)
    choices = {"shade": shade, "colour": "white", "arm_cm": arm_cm, "watts": 6, "dimmer": dimmer}
    choices["watts"] = 5 if shade == "paper" else 6
    return compile_program(product, choices, order_id=f"lamp-{i}")


MIXED = ["city-m", "trail-l", "speed-xl", "city-m", "trail-l", "speed-xl", "city-m", "city-m"]


def test_records_have_one_result_per_step_in_order(ebike, variants) -> None:
    programs = programs_for(ebike, variants, MIXED)
    run = VirtualLine(ebike, seed=3).run(programs)
    assert isinstance(run, LineRun)
    assert len(run.units) == len(programs)
    assert run.units_failed == 0
    for unit in run.units:
        program = programs[unit.program]
        record = unit.record
        assert isinstance(record, BuildRecord)
        assert record.ok and record.failed_step is None
        assert record.program_digest == program.digest() == unit.program_digest
        assert unit.order_id == program.order_id
        assert [r.step for r in record.results] == [s.index for s in program.steps]
        assert [r.station for r in record.results] == [s.station for s in program.steps]
        assert [r.operation for r in record.results] == [s.operation for s in program.steps]
        assert all(r.ok and r.finished >= r.started >= unit.start for r in record.results)
        assert max(r.finished for r in record.results) == pytest.approx(unit.finish)
        assert unit.lead_time > 0
    assert run.throughput_per_hour > 0
    assert run.makespan == max(u.finish for u in run.units)


def test_variant_mapping(ebike, variants) -> None:
    for i, v in enumerate(ebike.variants):
        (program,) = programs_for(ebike, variants, [v.name])
        assert variant_of(ebike, program) == i


def test_reproducible_with_a_seed(ebike, variants) -> None:
    programs = programs_for(ebike, variants, MIXED)
    a = VirtualLine(ebike, seed=7, fault_probability=0.05).run(programs)
    b = VirtualLine(ebike, seed=7, fault_probability=0.05).run(programs)
    c = VirtualLine(ebike, seed=8, fault_probability=0.05).run(programs)
    assert a == b
    assert [u.record for u in a.units] != [u.record for u in c.units]


def test_no_setup_for_a_single_variant(ebike, variants) -> None:
    programs = programs_for(ebike, variants, ["trail-l"] * 6)
    run = VirtualLine(ebike, seed=1).run(programs)
    assert run.setup_seconds["paint"] == 0
    assert run.total_setup_seconds == 0


def test_grouped_sequence_has_less_setup_than_alternating(ebike, variants) -> None:
    names = ["city-m", "trail-l"] * 4
    programs = programs_for(ebike, variants, names)
    alternating = list(range(len(programs)))
    grouped = [i for i in alternating if names[i] == "city-m"] + [
        i for i in alternating if names[i] == "trail-l"
    ]
    line = VirtualLine(ebike, seed=2)
    alt = line.run(programs, alternating)
    grp = line.run(programs, grouped)
    # paint: city-m → trail-l 900 s, trail-l → city-m 1500 s (the layout's matrix)
    assert grp.setup_seconds["paint"] == 900
    assert alt.setup_seconds["paint"] == 4 * 900 + 3 * 1500
    assert grp.total_setup_seconds < alt.total_setup_seconds
    assert [u.program for u in grp.units] == grouped
    # order ids work as a sequence too (LinePlan.order)
    by_id = line.run(programs, [programs[i].order_id for i in grouped])
    assert by_id == grp


def test_faults_fail_some_units_and_the_others_finish(ebike, variants) -> None:
    programs = programs_for(ebike, variants, MIXED * 4)
    run = VirtualLine(ebike, seed=11, fault_probability=0.03).run(programs)
    failed = [u for u in run.units if not u.ok]
    built = [u for u in run.units if u.ok]
    assert failed and built
    assert run.units_failed == len(failed)
    assert run.units_built == len(built)
    for unit in failed:
        record = unit.record
        program = programs[unit.program]
        assert record.failed_step is not None and not record.station_fault
        bad = [r for r in record.results if not r.ok]
        assert [r.step for r in bad] == [record.failed_step]
        assert bad[0].station == program.steps[record.failed_step].station
        assert "fault at" in (record.reason or "")
        assert len(record.results) < len(program.steps)
        assert unit.finish == pytest.approx(bad[0].finished)
    for unit in built:
        assert len(unit.record.results) == len(programs[unit.program].steps)


def test_everything_fails_without_locking(ebike, variants) -> None:
    programs = programs_for(ebike, variants, MIXED)
    run = VirtualLine(ebike, fault_probability=1.0).run(programs)
    assert run.units_failed == len(programs)
    assert all(u.record.failed_step == 0 for u in run.units)
    assert run.throughput_per_hour == 0


def test_program_with_an_unknown_station(ebike, variants, lamp_line) -> None:
    (program,) = programs_for(ebike, variants, ["city-m"])
    with pytest.raises(ValueError, match="assembly"):
        VirtualLine(ebike).run([program, lamp()])
    with pytest.raises(ValueError, match="frame-prep"):
        VirtualLine(lamp_line).run([program])


def test_bad_sequences(ebike, variants) -> None:
    programs = programs_for(ebike, variants, ["city-m", "trail-l"])
    line = VirtualLine(ebike)
    for bad in ([0], [0, 0], [0, 2], ["nope", 0]):
        with pytest.raises(ValueError):
            line.run(programs, bad)
    with pytest.raises(ValueError):
        VirtualLine(ebike, fault_probability=1.5)


def test_lead_times_cover_the_expected_times(ebike, variants) -> None:
    programs = programs_for(ebike, variants, MIXED)
    run = VirtualLine(ebike, seed=4).run(programs)
    first = run.units[0]
    # the spread is a lognormal around the mean: a unit's total is near its expected time
    assert first.lead_time == pytest.approx(programs[first.program].expected_seconds, rel=0.25)
    assert all(u.lead_time > 0 for u in run.units)


def test_deterministic_line_lead_time_is_exact(lamp_line) -> None:
    programs = [lamp("paper", 30, i=0), lamp("glass", 40, True, i=1), lamp("paper", 50, i=2)]
    run = VirtualLine(lamp_line).run(programs)
    assert run.units_failed == 0
    first = run.units[0]
    assert first.lead_time == programs[0].expected_seconds  # 45 + 20 + 60 = 125
    assert first.lead_time == 125
    for unit in run.units:
        assert unit.lead_time >= programs[unit.program].expected_seconds
        for result, step in zip(unit.record.results, programs[unit.program].steps, strict=True):
            assert result.seconds == pytest.approx(step.expected_seconds)
    # glass follows paper at test: one 100 s setup, then paper again: another
    assert run.setup_seconds == {"assembly": 0.0, "test": 200.0}
    second = run.units[1]
    test_step = second.record.results[-1]
    assert test_step.measurements["setup_s"] == 100
    # unit 2 enters assembly at 0 (buffer 2), starts at 65 when unit 1 leaves it
    assert second.start == 0
    assert second.record.results[0].started == 65
    assert run.throughput_per_hour == pytest.approx(3 * 3600 / run.makespan)


def test_des_station_is_a_station() -> None:
    station = DesStation("assembly")
    assert isinstance(station, Station)
    with pytest.raises(ValueError):
        DesStation("x", fault_probability=-0.1)


def test_refuses_inside_an_event_loop(lamp_line) -> None:
    import asyncio

    async def inside() -> None:
        VirtualLine(lamp_line).run([lamp()])

    with pytest.raises(RuntimeError, match="thread"):
        asyncio.run(inside())
