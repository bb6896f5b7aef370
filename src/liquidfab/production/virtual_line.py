"""The virtual line: build programs executed on a layout's line in discrete-event time.

``VirtualLine(layout).run(programs, sequence)`` builds one unit per program on the
layout's line stations, in SimPy, the way the factory engine (``liquidfab.factory.des``)
moves jobs:

- each line station has its ``servers`` and a buffer of ``buffer`` places in front
  (unbounded when the layout says so); a unit holds a place at a station from the
  moment it enters its buffer until it leaves;
- blocking after service: a unit done at a station keeps its server until it has a
  place at the next one;
- units enter the line in the given sequence (for example ``LinePlan.order`` from
  ``mixed_model.plan_line``), as fast as the first station takes them;
- a server remembers the variant of its last unit: a unit of another variant first
  waits ``setup[previous, variant]`` from the station's from→to matrix (no setup for a
  server's first unit). A program's variant is the layout mix variant whose choices
  agree with most of the program's choices (the first such one on a tie).

At each station visit the unit's steps for that station (``program.steps_for``) run one
after another through the ``Station`` interface: a ``DesStation`` per line station,
whose ``_execute`` draws the step's time (its ``expected_seconds`` spread by the layout
station's distribution for the variant, ``expected * draw / mean``, as
``SimulatedStation`` does) on a clock the SimPy process sets to the simulated time, and
the SimPy process then waits that long. Step results therefore carry simulated start
and finish times on the station's clock, and each unit gets the same ``BuildRecord`` an
``Executor`` produces on OPC UA stations.

Units move through the line in line order, whatever the routing's order (the e-bike
routing lists electrical before drivetrain; the line runs drivetrain first); the record
lists results in program order. With ``fault_probability`` p each step fails with
probability p part way through; the unit then leaves the line at once, as failed at
that step (its record holds the steps done until then, the failed one included), and
releases its server, so the others go on.

Every draw for a unit comes from its own generator, seeded by ``(seed, index of the
program)``, so a run is reproducible and two sequences of the same programs see the same
process times (common random numbers). Breakdowns, shift calendars, inspections and
rework stations of the layout are not modelled here: the factory engine is the place
for those; this line answers what the programs themselves cost in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from liquidfab.factory.model import Layout
from liquidfab.production.executor import BuildRecord
from liquidfab.production.program import BuildProgram, ProgramStep
from liquidfab.production.stations import (
    ProcessTime,
    Station,
    StationFault,
    StationLimits,
    StepResult,
    simulated_result,
)

__all__ = ["DesStation", "LineRun", "UnitRun", "VirtualLine", "variant_of"]


class DesStation(Station):
    """A line station driven by the discrete-event engine.

    The SimPy process that owns the station's server calls ``load`` with the simulated
    time and the unit's context before it runs the unit's steps with ``run``; each
    ``_execute`` then draws the step's time, advances the station clock by it and
    returns the result. Nothing sleeps: the SimPy process waits out the simulated time
    the results report.

    Measurements: ``cycle_s`` (the process time), ``setup_s`` on the first step of a
    visit that needed a changeover, and, for every parameter ending in ``_nm`` with a
    positive value, the torque reached (near the set value), as ``SimulatedStation``
    reports them.
    """

    def __init__(
        self,
        id: str,
        *,
        fault_probability: float = 0.0,
        limits: StationLimits | None = None,
    ) -> None:
        super().__init__(id, limits=limits)
        if not 0.0 <= fault_probability <= 1.0:
            raise ValueError("fault_probability is between 0 and 1")
        self.fault_probability = fault_probability
        self.clock = 0.0
        self.process: ProcessTime | None = None
        self.rng = np.random.default_rng(0)
        self._setup = 0.0

    def now(self) -> float:
        return self.clock

    def load(
        self,
        clock: float,
        *,
        process: ProcessTime | None,
        rng: np.random.Generator,
        setup: float = 0.0,
    ) -> None:
        """Set the station for one unit's visit: the simulated time the visit's first
        step starts, the process-time distribution of the unit's variant, the unit's
        generator, and the setup that preceded the visit (reported, not timed again)."""
        self.clock = clock
        self.process = process
        self.rng = rng
        self._setup = setup

    def _duration(self, step: ProgramStep, draw: float) -> float:
        if self.process is None:
            return step.expected_seconds
        mean = self.process.mean
        if not mean > 0:
            return step.expected_seconds
        return step.expected_seconds * draw / mean

    async def _execute(self, step: ProgramStep, program: BuildProgram) -> StepResult:
        # three draws per step whatever happens, so a unit's stream stays aligned
        draw = float(self.process.sample(self.rng, 1)[0]) if self.process is not None else 0.0
        fault_u, share = self.rng.random(2)
        seconds = self._duration(step, draw)
        faulted = bool(fault_u < self.fault_probability)
        if faulted:
            seconds *= float(share)
        started = self.clock
        self.clock = started + seconds
        extra = {"setup_s": round(self._setup, 6)} if self._setup > 0 else None
        self._setup = 0.0
        return simulated_result(self.id, step, program, started, seconds, faulted, self.rng, extra)


@dataclass(frozen=True)
class UnitRun:
    """One unit built (or failed) on the virtual line.

    ``program`` is the program's index in the list given to ``run``, ``position`` its
    place in the sequence; ``start`` is when it entered the line (its place in the first
    station's buffer), ``finish`` when it left (done at the last station, or failed).
    """

    program: int
    position: int
    program_digest: str
    order_id: str | None
    variant: str
    record: BuildRecord
    start: float
    finish: float

    @property
    def lead_time(self) -> float:
        return self.finish - self.start

    @property
    def ok(self) -> bool:
        return self.record.ok

    @property
    def failed_step(self) -> int | None:
        return self.record.failed_step


@dataclass(frozen=True)
class LineRun:
    """A run of the virtual line: the units in sequence order and the line's figures.

    ``makespan`` is when the last unit left the line (the run starts at 0);
    ``throughput_per_hour`` counts good units; ``setup_seconds`` is the changeover time
    spent at each line station (every line station is a key).
    """

    units: tuple[UnitRun, ...]
    makespan: float
    setup_seconds: Mapping[str, float]

    @property
    def units_built(self) -> int:
        return sum(1 for u in self.units if u.ok)

    @property
    def units_failed(self) -> int:
        return sum(1 for u in self.units if not u.ok)

    @property
    def throughput_per_hour(self) -> float:
        return 3600.0 * self.units_built / self.makespan if self.makespan > 0 else 0.0

    @property
    def total_setup_seconds(self) -> float:
        return float(sum(self.setup_seconds.values()))

    @property
    def lead_times(self) -> list[float]:
        return [u.lead_time for u in self.units]

    def unit(self, program: int) -> UnitRun:
        """The unit built from ``programs[program]``."""
        for u in self.units:
            if u.program == program:
                return u
        raise KeyError(program)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a) == str(b)


def variant_of(layout: Layout, program: BuildProgram) -> int:
    """The index of the layout's mix variant whose choices agree most with the
    program's choices (the first on a tie)."""
    best, best_score = 0, -1
    for i, v in enumerate(layout.variants):
        score = sum(
            1
            for k, value in v.choices.items()
            if k in program.choices and _same(program.choices[k], value)
        )
        if score > best_score:
            best, best_score = i, score
    return best


class _Server:
    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: int | None = None


class VirtualLine:
    """A layout's line that builds programs in simulated time (see the module's text).

    Raises ``ValueError`` for a fault probability outside [0, 1] or a layout without a
    mix (a program's variant could not be told).
    """

    def __init__(
        self,
        layout: Layout,
        *,
        seed: int = 0,
        fault_probability: float = 0.0,
        limits: StationLimits | None = None,
    ) -> None:
        if not 0.0 <= fault_probability <= 1.0:
            raise ValueError("fault_probability is between 0 and 1")
        if not layout.variants:
            raise ValueError(f"layout {layout.id} has no mix variants")
        self.layout = layout
        self.seed = int(seed)
        self.fault_probability = fault_probability
        self.limits = limits
        self.line = [layout.stations[i] for i in layout.line]

    # -- checks -----------------------------------------------------------------------

    def check(self, programs: Sequence[BuildProgram]) -> None:
        """Raise ``ValueError`` when a program needs a station the line does not have."""
        line_ids = {st.id for st in self.line}
        for i, program in enumerate(programs):
            missing = [s for s in program.stations if s not in line_ids]
            if missing:
                raise ValueError(
                    f"program {i} ({program.order_id or program.digest()[:12]}) needs "
                    f"station{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which "
                    f"the line of layout {self.layout.id} does not have (it has "
                    f"{', '.join(st.id for st in self.line)})"
                )

    def _order(
        self, programs: Sequence[BuildProgram], sequence: Sequence[int | str] | None
    ) -> list[int]:
        n = len(programs)
        if sequence is None:
            return list(range(n))
        by_order: dict[str, int] = {}
        for i, p in enumerate(programs):
            if p.order_id is not None:
                by_order.setdefault(p.order_id, i)
        out = []
        for item in sequence:
            if isinstance(item, str):
                if item not in by_order:
                    raise ValueError(f"the sequence names order {item!r}, which no program builds")
                out.append(by_order[item])
            elif isinstance(item, int | np.integer) and not isinstance(item, bool):
                if not 0 <= item < n:
                    raise ValueError(f"the sequence names program {item}, not in 0..{n - 1}")
                out.append(int(item))
            else:
                raise ValueError(f"a sequence holds program indices or order ids, not {item!r}")
        if sorted(out) != list(range(n)):
            raise ValueError("the sequence must name every program exactly once")
        return out

    # -- running ----------------------------------------------------------------------

    def run(
        self,
        programs: Sequence[BuildProgram],
        sequence: Sequence[int | str] | None = None,
    ) -> LineRun:
        """Build one unit per program, in ``sequence`` (program indices, or order ids;
        default: the list's order). Raises ``ValueError`` before anything runs for a
        program that needs a station the line lacks or a sequence that does not name
        every program once. Call it outside a running event loop (from async code, run
        it in a thread)."""
        programs = list(programs)
        self.check(programs)
        order = self._order(programs, sequence)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "VirtualLine.run drives its stations on its own event loop; from async "
                "code call it in a thread (await asyncio.to_thread(line.run, ...))"
            )
        loop = asyncio.new_event_loop()
        try:
            return self._simulate(programs, order, loop)
        finally:
            loop.close()

    def _simulate(
        self, programs: list[BuildProgram], order: list[int], loop: asyncio.AbstractEventLoop
    ) -> LineRun:
        env = simpy.Environment()
        line = self.line
        stations = [
            DesStation(st.id, fault_probability=self.fault_probability, limits=self.limits)
            for st in line
        ]
        places = [
            simpy.Resource(env, capacity=st.servers + st.buffer) if st.buffer is not None else None
            for st in line
        ]
        servers: list[simpy.Store] = []
        for st in line:
            store = simpy.Store(env)
            store.items.extend(_Server() for _ in range(st.servers))
            servers.append(store)
        setups = {st.id: 0.0 for st in line}
        units: dict[int, UnitRun] = {}
        variants = [variant_of(self.layout, p) for p in programs]

        async def visit(
            station: DesStation, steps: list[ProgramStep], program: BuildProgram
        ) -> tuple[list[StepResult], StationFault | None]:
            done: list[StepResult] = []
            for step in steps:
                try:
                    result = await station.run(step, program)
                except StationFault as e:  # pragma: no cover - a DesStation always answers
                    return done, e
                done.append(result)
                if not result.ok:
                    break
            return done, None

        def job(position: int, index: int) -> Any:
            program = programs[index]
            v = variants[index]
            rng = np.random.default_rng([self.seed, index])
            results: list[StepResult] = []
            failure: tuple[int, str, bool] | None = None
            held = None
            if places[0] is not None:
                held = places[0].request()
                yield held
            start = env.now
            for k, st in enumerate(line):
                steps = program.steps_for(st.id)
                server = None
                if steps:
                    server = yield servers[k].get()
                    su = 0.0
                    if st.setup is not None and server.last is not None and server.last != v:
                        su = float(st.setup[server.last, v])
                    server.last = v
                    if su > 0:
                        setups[st.id] += su
                        yield env.timeout(su)
                    des = stations[k]
                    des.load(env.now, process=st.times[v] if st.times else None, rng=rng, setup=su)
                    done, fault = loop.run_until_complete(visit(des, steps, program))
                    results.extend(done)
                    end = done[-1].finished if done else env.now
                    if end > env.now:
                        yield env.timeout(end - env.now)
                    if fault is not None:  # pragma: no cover - see visit
                        failure = (
                            fault.step if fault.step is not None else steps[0].index,
                            str(fault),
                            True,
                        )
                    elif done and not done[-1].ok:
                        last = done[-1]
                        failure = (last.step, last.message or f"step {last.step} failed", False)
                nxt = None
                if failure is None and k + 1 < len(line) and places[k + 1] is not None:
                    nxt = places[k + 1].request()
                    yield nxt  # blocking after service: the server is held meanwhile
                if server is not None:
                    servers[k].put(server)
                if held is not None:
                    places[k].release(held)
                held = nxt
                if failure is not None:
                    break
            results.sort(key=lambda r: r.step)
            digest = program.digest()
            if failure is None:
                record = BuildRecord(program_digest=digest, ok=True, results=results)
            else:
                record = BuildRecord(
                    program_digest=digest,
                    ok=False,
                    results=results,
                    failed_step=failure[0],
                    reason=failure[1],
                    station_fault=failure[2],
                )
            units[position] = UnitRun(
                program=index,
                position=position,
                program_digest=digest,
                order_id=program.order_id,
                variant=self.layout.variants[v].name,
                record=record,
                start=start,
                finish=env.now,
            )

        for position, index in enumerate(order):
            env.process(job(position, index))
        env.run()
        if len(units) != len(order):  # pragma: no cover - the line cannot lock
            raise RuntimeError(
                f"the virtual line stopped with {len(order) - len(units)} units inside"
            )
        out = tuple(units[p] for p in range(len(order)))
        makespan = max((u.finish for u in out), default=0.0)
        return LineRun(units=out, makespan=makespan, setup_seconds=setups)
