"""Programmable production: personal orders compiled into build programs and built on
the line, lot size one.

A ``BuildProgram`` is one configuration's operations per station with their parameters
and expected times. An ``Executor`` runs it step by step through the ``Station``
interface, which a ``SimulatedStation`` and an ``OpcUaStation`` (talking to an
``OpcUaStationServer``, the way a PLC gateway would) both implement. Sequencing and
scheduling live in ``jobshop``, ``carseq`` and ``mixed_model``.
"""

from liquidfab.production.carseq import (
    CarSequencing,
    Sequencing,
    parse_csplib,
    sequence,
    violations,
)
from liquidfab.production.cost import CostReport, cost_model, write_cost_chart
from liquidfab.production.executor import BuildRecord, Executor
from liquidfab.production.jobshop import Job, JobShop, Schedule, parse_jobshop, solve_jobshop
from liquidfab.production.mixed_model import LinePlan, LineProblem, Order, evaluate, plan_line
from liquidfab.production.program import (
    BuildProgram,
    ProgramStep,
    compile_program,
    compile_resolved,
    program_json_schema,
)
from liquidfab.production.stations import (
    SimulatedStation,
    Station,
    StationFault,
    StationLimits,
    StationUnreachable,
    StepRefused,
    StepResult,
)
from liquidfab.production.units import RecordedUnit, passport, record_unit
from liquidfab.production.virtual_line import DesStation, LineRun, UnitRun, VirtualLine

__all__ = [
    "BuildProgram",
    "BuildRecord",
    "CarSequencing",
    "CostReport",
    "DesStation",
    "Executor",
    "Job",
    "JobShop",
    "LinePlan",
    "LineProblem",
    "LineRun",
    "OpcUaStation",
    "OpcUaStationServer",
    "Order",
    "ProgramStep",
    "RecordedUnit",
    "Schedule",
    "Sequencing",
    "SimulatedStation",
    "Station",
    "StationFault",
    "StationLimits",
    "StationUnreachable",
    "StepRefused",
    "StepResult",
    "UnitRun",
    "VirtualLine",
    "compile_program",
    "compile_resolved",
    "cost_model",
    "evaluate",
    "parse_csplib",
    "parse_jobshop",
    "passport",
    "plan_line",
    "program_json_schema",
    "record_unit",
    "sequence",
    "solve_jobshop",
    "violations",
    "write_cost_chart",
]

_LAZY = {"OpcUaStation", "OpcUaStationServer"}  # asyncua loads only when OPC UA is used


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from liquidfab.production import opcua_station

        return getattr(opcua_station, name)
    raise AttributeError(f"module 'liquidfab.production' has no attribute {name!r}")
