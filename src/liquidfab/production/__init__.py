"""Programmable production: personal orders compiled into build programs and built on
the line, lot size one.

A ``BuildProgram`` is one configuration's operations per station with their parameters
and expected times. An ``Executor`` runs it step by step through the ``Station``
interface, which a ``SimulatedStation`` and an ``OpcUaStation`` (talking to an
``OpcUaStationServer``, the way a PLC gateway would) both implement. Sequencing and
scheduling live in ``jobshop``, ``carseq`` and ``mixed_model``.
"""

from liquidfab.production.executor import BuildRecord, Executor
from liquidfab.production.opcua_station import OpcUaStation, OpcUaStationServer
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

__all__ = [
    "BuildProgram",
    "BuildRecord",
    "Executor",
    "OpcUaStation",
    "OpcUaStationServer",
    "ProgramStep",
    "SimulatedStation",
    "Station",
    "StationFault",
    "StationLimits",
    "StationUnreachable",
    "StepRefused",
    "StepResult",
    "compile_program",
    "compile_resolved",
    "program_json_schema",
]
