"""The station interface: one way to run a program step, whatever the station is.

``Station.run`` is the safe public method and the only one callers use; a subclass
fills one hook, ``_execute``. The base class checks that the step belongs to this
station and to the program, runs one step at a time, bounds each attempt with the step
timeout, retries a station it cannot reach, and checks the result it gets back. The
same executor therefore drives a ``SimulatedStation`` (in process, virtual time) and an
``OpcUaStation`` (a PLC gateway on the network) without knowing which it has.

What can come out of ``run``:

- a ``StepResult`` with ``ok=True``: the step was done;
- a ``StepResult`` with ``ok=False``: the machine ran and failed the step (a fault, a
  measurement out of tolerance, or no result within the step timeout). The unit is
  physically affected, so it goes to rework or scrap; the caller decides;
- a ``StationFault``: no result exists, because the station could not be asked or
  could not answer. Nothing is known about the unit at this station.

Errors, drawn as a tree::

    LiquidfabError
    └── StationFault          no result: the station could not run the step
        ├── StepRefused       refused before anything moved (wrong station, a step not
        │                     in its program, a station that rejects the request)
        └── StationUnreachable  communication lost; ``run`` retries it
                              ``limits.retries`` times with backoff, then raises it

A hook signals a communication failure by raising ``StationUnreachable``; any other
exception from a hook is a defect of the station adapter and becomes a plain
``StationFault`` (not retried), with the original exception kept as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from liquidfab.errors import LiquidfabError
from liquidfab.production.program import BuildProgram, ProgramStep

if TYPE_CHECKING:
    from liquidfab.factory.model import Layout

__all__ = [
    "ProcessTime",
    "SimulatedStation",
    "Station",
    "StationFault",
    "StationLimits",
    "StationUnreachable",
    "StepRefused",
    "StepResult",
    "simulated_result",
]


class ProcessTime(Protocol):
    """A process-time distribution, as ``liquidfab.factory`` defines them."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray: ...

    @property
    def mean(self) -> float: ...


class StationFault(LiquidfabError):
    """A station could not run a step and there is no result for it.

    ``station`` and ``step`` (the step index, when known) say where; ``code`` is a
    stable name for the kind of fault.
    """

    code = "station-fault"

    def __init__(self, message: str, *, station: str, step: int | None = None) -> None:
        super().__init__(message)
        self.station = station
        self.step = step


class StepRefused(StationFault):
    """The step was refused before the station did anything."""

    code = "step-refused"


class StationUnreachable(StationFault):
    """The station could not be reached or stopped answering.

    A hook raises it for a lost connection; ``Station.run`` retries and, when the
    retries are spent, raises it to the caller with the last failure as its cause.
    """

    code = "station-unreachable"


@dataclass(frozen=True)
class StationLimits:
    """Every limit the station interface enforces, in one place (seconds of wall time).

    ``step_timeout`` bounds one attempt of one step, from the request to the result;
    a step still unfinished then is a failed step. A station that cannot be reached is
    tried ``retries`` more times, waiting ``retry_backoff * 2**k`` before retry k (never
    more than ``max_backoff``). ``connect_timeout`` bounds opening a connection and
    ``request_timeout`` each request on it (network stations only). The worst case for
    one ``run`` is about (retries + 1) * step_timeout plus the backoffs.
    """

    step_timeout: float = 60.0
    retries: int = 2
    retry_backoff: float = 0.2
    max_backoff: float = 5.0
    connect_timeout: float = 5.0
    request_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("step_timeout", "connect_timeout", "request_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"StationLimits.{name} is a positive number of seconds")
        if self.retries < 0:
            raise ValueError("StationLimits.retries is zero or more")
        if not (self.retry_backoff >= 0 and self.max_backoff >= 0):
            raise ValueError("StationLimits backoffs are zero or more seconds")

    def backoff(self, retry: int) -> float:
        """How long to wait before retry number ``retry`` (0 for the first retry)."""
        return min(self.retry_backoff * 2**retry, self.max_backoff)


class StepResult(BaseModel):
    """What a station reports for one step. ``started`` and ``finished`` are seconds
    on the station's own clock (virtual for a simulated station)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station: str
    program_digest: str
    step: int = Field(ge=0, description="The step's index in the program.")
    operation: str
    ok: bool
    started: float
    finished: float
    measurements: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict, description="Values measured during the step, e.g. torque_nm."
    )
    message: str = ""

    @property
    def seconds(self) -> float:
        """How long the step took on the station's clock."""
        return self.finished - self.started


class Station(ABC):
    """A station that performs program steps. Subclasses implement ``_execute`` only."""

    def __init__(self, id: str, *, limits: StationLimits | None = None) -> None:
        if not id:
            raise ValueError("a station has an id")
        self.id = id
        self.limits = limits or StationLimits()
        self._busy: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    def now(self) -> float:
        """The station's clock in seconds; used to stamp results made by ``run`` itself."""
        return asyncio.get_running_loop().time()

    async def run(self, step: ProgramStep, program: BuildProgram) -> StepResult:
        """Perform one step of ``program`` and report how it went.

        Returns a result (``ok`` False for a machine fault or a timeout); raises
        ``StepRefused`` for a step that is not this station's or not in the program and
        ``StationFault`` (``StationUnreachable`` for lost communication, after retries)
        when no result can be had.
        """
        self._check(step, program)
        if self._busy is None:
            self._busy = asyncio.Lock()
        async with self._busy:
            attempt = 0
            while True:
                try:
                    return await self._attempt(step, program)
                except StationUnreachable as e:
                    if attempt >= self.limits.retries:
                        raise StationUnreachable(
                            f"station {self.id} unreachable for step {step.index} "
                            f"({step.operation}) after {attempt + 1} attempts: {e}",
                            station=self.id,
                            step=step.index,
                        ) from e
                    await asyncio.sleep(self.limits.backoff(attempt))
                    attempt += 1

    def _check(self, step: ProgramStep, program: BuildProgram) -> None:
        if step.station != self.id:
            raise StepRefused(
                f"step {step.index} ({step.operation}) is for station {step.station}, "
                f"not {self.id}",
                station=self.id,
                step=step.index,
            )
        if step.index >= len(program.steps) or program.steps[step.index] != step:
            raise StepRefused(
                f"step {step.index} ({step.operation}) is not step {step.index} of the "
                f"program {program.digest()[:12]}",
                station=self.id,
                step=step.index,
            )

    async def _attempt(self, step: ProgramStep, program: BuildProgram) -> StepResult:
        started = self.now()
        timeout = asyncio.timeout(self.limits.step_timeout)
        try:
            async with timeout:
                result = await self._execute(step, program)
        except StationFault:
            raise
        except TimeoutError as e:
            if not timeout.expired():
                raise self._defect(step, "timed out on its own") from e
            return StepResult(
                station=self.id,
                program_digest=program.digest(),
                step=step.index,
                operation=step.operation,
                ok=False,
                started=started,
                finished=self.now(),
                message=f"no result within {self.limits.step_timeout:g} s; "
                "the unit's state at this station is unknown",
            )
        except Exception as e:
            raise self._defect(step, f"failed: {type(e).__name__}: {e}") from e
        return self._checked(result, step, program)

    def _defect(self, step: ProgramStep, what: str) -> StationFault:
        return StationFault(
            f"station {self.id} {what} (step {step.index}, {step.operation})",
            station=self.id,
            step=step.index,
        )

    def _checked(self, result: Any, step: ProgramStep, program: BuildProgram) -> StepResult:
        if not isinstance(result, StepResult):
            raise self._defect(step, f"returned {type(result).__name__}, not a StepResult")
        expected = (self.id, program.digest(), step.index, step.operation)
        got = (result.station, result.program_digest, result.step, result.operation)
        if got != expected:
            raise self._defect(
                step,
                f"answered for station {got[0]}, program {got[1][:12]}, step {got[2]} ({got[3]})",
            )
        if result.finished < result.started:
            raise self._defect(step, "reported a step that finished before it started")
        return result

    @abstractmethod
    async def _execute(self, step: ProgramStep, program: BuildProgram) -> StepResult:
        """Perform the step; raise ``StationUnreachable`` when the station cannot be
        reached (``run`` retries it). Called by ``run`` with the step checked, one step
        at a time, under the step timeout."""


class SimulatedStation(Station):
    """A station in process: process times drawn from a distribution, on a virtual clock.

    Each step takes its routing time (``expected_seconds``) spread by ``process``: the
    draw is ``expected_seconds * sample / mean``, so the distribution (for example a
    layout station's ``times[variant]``) gives the variability and the routing the
    scale. Without ``process`` a step takes exactly its expected time. With
    ``fault_probability`` p a step fails (``ok`` False) with probability p, part way
    through. Every draw comes from one NumPy generator, so a seed reproduces a run.

    The clock (``clock``, seconds) only advances by process times; nothing sleeps
    unless ``real_time_factor`` > 0, in which case a step also waits its time times that
    factor of wall time (0.001 turns a 900 s operation into 0.9 s).

    Measurements: ``cycle_s`` (the process time) and, for every parameter ending in
    ``_nm`` with a positive value, the torque reached, near the set value.
    """

    def __init__(
        self,
        id: str,
        *,
        process: ProcessTime | None = None,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        fault_probability: float = 0.0,
        real_time_factor: float = 0.0,
        clock: float = 0.0,
        limits: StationLimits | None = None,
    ) -> None:
        super().__init__(id, limits=limits)
        if not 0.0 <= fault_probability <= 1.0:
            raise ValueError("fault_probability is between 0 and 1")
        if not (math.isfinite(real_time_factor) and real_time_factor >= 0):
            raise ValueError("real_time_factor is zero or a positive number")
        if rng is not None and seed is not None:
            raise ValueError("give a seed or a generator, not both")
        self.process = process
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.fault_probability = fault_probability
        self.real_time_factor = real_time_factor
        self.clock = clock

    @classmethod
    def from_layout(
        cls, layout: Layout, station: str, *, variant: int | str = 0, **kwargs: Any
    ) -> SimulatedStation:
        """A simulated station with the process-time distribution of a layout's
        station for one variant of its mix (by index or name)."""
        st = layout.stations[layout.index(station)]
        if isinstance(variant, str):
            names = [v.name for v in layout.variants]
            if variant not in names:
                raise ValueError(f"layout {layout.id} has no variant {variant!r}")
            variant = names.index(variant)
        return cls(station, process=st.times[variant], **kwargs)

    def now(self) -> float:
        return self.clock

    def _duration(self, step: ProgramStep, draw: float) -> float:
        if self.process is None:
            return step.expected_seconds
        mean = self.process.mean
        if mean <= 0:
            return step.expected_seconds
        return step.expected_seconds * draw / mean

    async def _execute(self, step: ProgramStep, program: BuildProgram) -> StepResult:
        # three draws per step whatever happens, so streams stay aligned across runs
        draw = float(self.process.sample(self.rng, 1)[0]) if self.process is not None else 0.0
        fault_u, share = self.rng.random(2)
        seconds = self._duration(step, draw)
        faulted = bool(fault_u < self.fault_probability)
        if faulted:
            seconds *= float(share)
        if self.real_time_factor > 0:
            await asyncio.sleep(seconds * self.real_time_factor)
        else:
            await asyncio.sleep(0)
        started = self.clock
        self.clock = started + seconds
        return simulated_result(self.id, step, program, started, seconds, faulted, self.rng)


def simulated_result(
    station: str,
    step: ProgramStep,
    program: BuildProgram,
    started: float,
    seconds: float,
    faulted: bool,
    rng: np.random.Generator,
    extra: dict[str, float] | None = None,
) -> StepResult:
    """What a simulated machine reports for a step: its cycle time, the torques it
    reached (within 1% of each ``*_nm`` set value), or the fault."""
    measurements = {"cycle_s": round(seconds, 6), **(extra or {})}
    if not faulted:
        for name, value in step.parameters.items():
            if name.endswith("_nm") and not isinstance(value, bool | str) and value > 0:
                measurements[name] = round(value * (1 + 0.01 * float(rng.standard_normal())), 3)
    return StepResult(
        station=station,
        program_digest=program.digest(),
        step=step.index,
        operation=step.operation,
        ok=not faulted,
        started=started,
        finished=started + seconds,
        measurements=measurements,
        message=f"fault at {station} during {step.operation} after {seconds:.1f} s"
        if faulted
        else "",
    )
