"""The executor: a build program run step by step on the line's stations.

The executor only knows the station interface (``Station.run``), so the same code
builds on simulated stations and on OPC UA stations. It stops at the first step that
does not succeed and says which one and why; what happens to the unit then (rework or
scrap) is the caller's decision.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from liquidfab.production.program import BuildProgram
from liquidfab.production.stations import Station, StationFault, StepRefused, StepResult

__all__ = ["BuildRecord", "Executor"]


class BuildRecord(BaseModel):
    """How one unit's build went: every step result, in order, and where it stopped.

    ``ok`` is True when every step succeeded. Otherwise ``failed_step`` is the index of
    the step that did not, and ``reason`` says why. ``station_fault`` tells the two
    kinds of failure apart: False, the machine ran the step and failed it (its result is
    the last of ``results``; the unit goes to rework or scrap); True, the station could
    not be commanded or did not answer (no result for that step; the unit's state there
    is unknown and it needs inspecting).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    program_digest: str
    ok: bool
    results: list[StepResult] = Field(default_factory=list)
    failed_step: int | None = None
    reason: str | None = None
    station_fault: bool = False


class Executor:
    """Runs build programs on a line: ``stations`` maps each station id to its station."""

    def __init__(self, stations: Mapping[str, Station]) -> None:
        for key, station in stations.items():
            if key != station.id:
                raise ValueError(f"station {station.id!r} is registered as {key!r}")
        self.stations = dict(stations)

    async def build(self, program: BuildProgram) -> BuildRecord:
        """Run every step of ``program`` in order, stopping at the first failure.

        Raises ``StepRefused`` before any step runs when the program needs a station
        this line does not have; every other failure is in the returned record.
        """
        missing = [s for s in program.stations if s not in self.stations]
        if missing:
            raise StepRefused(
                f"the program needs station{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}, which this line does not have",
                station=missing[0],
            )
        digest = program.digest()
        results: list[StepResult] = []
        for step in program.steps:
            try:
                result = await self.stations[step.station].run(step, program)
            except StationFault as e:
                return BuildRecord(
                    program_digest=digest,
                    ok=False,
                    results=results,
                    failed_step=step.index,
                    reason=str(e),
                    station_fault=True,
                )
            results.append(result)
            if not result.ok:
                return BuildRecord(
                    program_digest=digest,
                    ok=False,
                    results=results,
                    failed_step=step.index,
                    reason=result.message or f"step {step.index} ({step.operation}) failed",
                )
        return BuildRecord(program_digest=digest, ok=True, results=results)
