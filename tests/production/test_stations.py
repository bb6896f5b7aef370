"""The station interface: the safe ``run`` around each station's hook, the simulated
station, and the executor that drives a line of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from liquidfab.errors import LiquidfabError
from liquidfab.factory import Deterministic, Lognormal, load_layout
from liquidfab.product import load_product
from liquidfab.production.executor import BuildRecord, Executor
from liquidfab.production.program import BuildProgram, ProgramStep, compile_program
from liquidfab.production.stations import (
    SimulatedStation,
    Station,
    StationFault,
    StationLimits,
    StationUnreachable,
    StepRefused,
    StepResult,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "ebike"
EBIKE = load_product(EXAMPLE / "product.yaml")
BIKE = compile_program(EBIKE, EBIKE.spec.value_model.reference, order_id="o-1")
FAST = StationLimits(step_timeout=0.2, retries=2, retry_backoff=0.001)


def run(coro):
    return asyncio.run(coro)


async def run_all(station: Station, program: BuildProgram) -> list[StepResult]:
    return [await station.run(s, program) for s in program.steps_for(station.id)]


def line(**kwargs) -> dict[str, Station]:
    return {s: SimulatedStation(s, **kwargs) for s in BIKE.stations}


# --- the simulated station ----------------------------------------------------------


def test_without_a_distribution_a_step_takes_its_routing_time():
    station = SimulatedStation("paint")
    results = run(run_all(station, BIKE))
    expected = [s.expected_seconds for s in BIKE.steps_for("paint")]
    assert [r.seconds for r in results] == expected == [840, 360]
    assert results[0].started == 0 and results[1].started == results[0].finished
    assert station.clock == results[-1].finished == sum(expected)  # the virtual clock
    assert all(r.ok and r.program_digest == BIKE.digest() for r in results)


def test_a_seed_reproduces_every_draw():
    def results(seed):
        station = SimulatedStation(
            "drivetrain", process=Lognormal(mean=3000, cv=0.2), seed=seed, fault_probability=0.3
        )
        return [run(run_all(station, BIKE)) for _ in range(5)]

    assert results(11) == results(11)
    assert results(11) != results(12)
    first_unit = results(11)[0]
    ratios = {r.seconds / BIKE.steps[r.step].expected_seconds for r in first_unit if r.ok}
    assert len(ratios) > 1  # the distribution spreads the routing time


def test_the_distribution_spreads_the_routing_time_around_it():
    station = SimulatedStation("x", process=Lognormal(mean=200, cv=0.1), seed=3)
    program = BuildProgram(
        product="p",
        product_version="1.0.0",
        product_digest="0" * 64,
        choices={},
        steps=[ProgramStep(index=0, station="x", operation="op", name="op", expected_seconds=60)],
    )
    seconds = [run(station.run(program.steps[0], program)).seconds for _ in range(400)]
    mean = sum(seconds) / len(seconds)
    assert 57 < mean < 63 and min(seconds) < 55 and max(seconds) > 65


def test_torque_is_measured_near_its_set_value():
    results = run(run_all(SimulatedStation("final-assembly", seed=1), BIKE))
    fit_wheels = next(r for r in results if r.operation == "fit-wheels")
    assert set(fit_wheels.measurements) == {"cycle_s", "thru_axle_nm"}
    assert fit_wheels.measurements["thru_axle_nm"] == pytest.approx(12, rel=0.05)


def test_from_layout_uses_the_station_distribution_for_a_variant():
    layout = load_layout(EXAMPLE / "factory.yaml")
    station = SimulatedStation.from_layout(layout, "paint", variant="speed-xl", seed=5)
    assert station.process == layout.stations[layout.index("paint")].times[2]
    assert run(run_all(station, BIKE))[0].ok
    with pytest.raises(ValueError, match="no variant"):
        SimulatedStation.from_layout(layout, "paint", variant="tandem")


def test_injected_faults_fail_steps_reproducibly():
    always = SimulatedStation("electrical", fault_probability=1.0, seed=2)
    result = run(always.run(BIKE.steps_for("electrical")[0], BIKE))
    assert not result.ok
    assert "fault at electrical during weld-battery-pack" in result.message
    assert result.seconds < BIKE.steps_for("electrical")[0].expected_seconds

    def outcomes(seed):
        station = SimulatedStation("drivetrain", fault_probability=0.25, seed=seed)
        return [r.ok for _ in range(100) for r in run(run_all(station, BIKE))]

    share = outcomes(9).count(False) / len(outcomes(9))
    assert 0.15 < share < 0.35
    assert outcomes(9) == outcomes(9)


def test_real_time_factor_sleeps_a_scaled_time():
    station = SimulatedStation("paint", real_time_factor=0.0001)

    async def timed():
        loop = asyncio.get_running_loop()
        t = loop.time()
        await run_all(station, BIKE)
        return loop.time() - t

    assert run(timed()) >= 0.0001 * (840 + 360) * 0.9


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="fault_probability"):
        SimulatedStation("x", fault_probability=1.5)
    with pytest.raises(ValueError, match="real_time_factor"):
        SimulatedStation("x", real_time_factor=-1)
    with pytest.raises(ValueError, match="step_timeout"):
        StationLimits(step_timeout=0)
    with pytest.raises(ValueError, match="retries"):
        StationLimits(retries=-1)


# --- the safe public method ---------------------------------------------------------


def test_a_step_for_another_station_is_refused():
    station = SimulatedStation("paint")
    with pytest.raises(StepRefused, match="is for station frame-prep, not paint") as e:
        run(station.run(BIKE.steps[0], BIKE))
    assert isinstance(e.value, StationFault) and isinstance(e.value, LiquidfabError)
    assert e.value.station == "paint" and e.value.step == 0
    assert station.clock == 0  # nothing moved


def test_a_step_that_is_not_in_the_program_is_refused():
    other = compile_program(EBIKE, {**EBIKE.spec.value_model.reference, "frame_size": "L"})
    station = SimulatedStation("frame-prep")
    with pytest.raises(StepRefused, match="is not step 0 of the program"):
        run(station.run(other.steps[0], BIKE))
    forged = BIKE.steps[0].model_copy(update={"index": 40})
    with pytest.raises(StepRefused):
        run(station.run(forged, BIKE))


class Hanging(Station):
    """A station whose machine never answers."""

    async def _execute(self, step, program):
        await asyncio.Event().wait()


class Flaky(Station):
    """A station that cannot be reached for its first ``failures`` attempts."""

    def __init__(self, id, failures, **kwargs):
        super().__init__(id, **kwargs)
        self.failures = failures
        self.attempts = 0

    async def _execute(self, step, program):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StationUnreachable("cable unplugged", station=self.id, step=step.index)
        return await SimulatedStation(self.id)._execute(step, program)


class Broken(Station):
    def __init__(self, id, answer, **kwargs):
        super().__init__(id, **kwargs)
        self.answer = answer
        self.attempts = 0

    async def _execute(self, step, program):
        self.attempts += 1
        return self.answer(step, program)


def test_the_timeout_turns_a_hanging_station_into_a_failed_step():
    station = Hanging("paint", limits=FAST)
    result = run(station.run(BIKE.steps_for("paint")[0], BIKE))
    assert not result.ok
    assert "no result within 0.2 s" in result.message
    assert result.step == BIKE.steps_for("paint")[0].index


def test_an_unreachable_station_is_retried_then_reported():
    recovers = Flaky("paint", failures=2, limits=FAST)
    assert run(recovers.run(BIKE.steps_for("paint")[0], BIKE)).ok
    assert recovers.attempts == 3

    gone = Flaky("paint", failures=99, limits=FAST)
    with pytest.raises(StationUnreachable, match="after 3 attempts: cable unplugged") as e:
        run(gone.run(BIKE.steps_for("paint")[0], BIKE))
    assert gone.attempts == 3
    assert isinstance(e.value.__cause__, StationUnreachable)


def test_a_defective_adapter_is_a_station_fault_not_retried():
    def explode(step, program):
        raise KeyError("register 40001")

    station = Broken("paint", explode, limits=FAST)
    with pytest.raises(StationFault, match="KeyError") as e:
        run(station.run(BIKE.steps_for("paint")[0], BIKE))
    assert not isinstance(e.value, StationUnreachable)
    assert isinstance(e.value.__cause__, KeyError)
    assert station.attempts == 1


def test_a_result_for_another_step_is_a_station_fault():
    def wrong_step(step, program):
        return StepResult(
            station="paint",
            program_digest=program.digest(),
            step=step.index + 1,
            operation=step.operation,
            ok=True,
            started=0,
            finished=1,
        )

    with pytest.raises(StationFault, match="answered for station paint"):
        run(Broken("paint", wrong_step).run(BIKE.steps_for("paint")[0], BIKE))


# --- the executor -------------------------------------------------------------------


def test_the_executor_builds_a_unit_step_by_step():
    record = run(Executor(line(seed=4)).build(BIKE))
    assert record.ok and record.failed_step is None and record.reason is None
    assert [r.step for r in record.results] == list(range(len(BIKE.steps)))
    assert [r.station for r in record.results] == [s.station for s in BIKE.steps]
    assert all(r.program_digest == BIKE.digest() for r in record.results)
    assert BuildRecord.model_validate_json(record.model_dump_json()) == record


def test_the_executor_stops_at_the_first_failed_step():
    stations = line()
    stations["electrical"] = SimulatedStation("electrical", fault_probability=1.0)
    record = run(Executor(stations).build(BIKE))
    first = BIKE.steps_for("electrical")[0].index
    assert not record.ok and record.failed_step == first and not record.station_fault
    assert len(record.results) == first + 1 and not record.results[-1].ok
    assert "fault at electrical" in record.reason
    assert stations["test-flash"].clock == 0  # later stations never ran


def test_the_executor_records_a_station_that_cannot_be_reached():
    stations = line()
    stations["paint"] = Flaky("paint", failures=99, limits=FAST)
    record = run(Executor(stations).build(BIKE))
    first = BIKE.steps_for("paint")[0].index
    assert not record.ok and record.failed_step == first and record.station_fault
    assert len(record.results) == first  # no result for the failed step
    assert "unreachable" in record.reason


def test_the_executor_refuses_a_program_for_another_line():
    stations = line()
    del stations["paint"]
    with pytest.raises(StepRefused, match="needs station paint"):
        run(Executor(stations).build(BIKE))
    assert all(s.clock == 0 for s in stations.values())  # nothing ran
    with pytest.raises(ValueError, match="registered as"):
        Executor({"a": SimulatedStation("b")})


def test_a_fixed_process_distribution_scales_to_the_routing():
    station = SimulatedStation("paint", process=Deterministic(value=500))
    results = run(run_all(station, BIKE))
    assert [r.seconds for r in results] == [s.expected_seconds for s in BIKE.steps_for("paint")]
