"""One way to run CP-SAT for production's models: a time limit, a worker count, and
OR-Tools' failures turned into LiquidfabError at this one boundary."""

from __future__ import annotations

import os

from ortools.sat.python import cp_model

from liquidfab.errors import LiquidfabError

__all__ = ["DEFAULT_WORKERS", "default_workers", "solve_model"]

#: CP-SAT workers when none are asked for: its portfolio, not the core count, is what
#: closes ft10 quickly (measured in the module docstring).
DEFAULT_WORKERS = 8


def default_workers() -> int:
    """The CP-SAT worker count used when the caller gives none."""
    return max(DEFAULT_WORKERS, os.cpu_count() or 1)


def solve_model(
    model: cp_model.CpModel, seconds: float, workers: int
) -> tuple[int, cp_model.CpSolver]:
    """Run CP-SAT; its failures become ``LiquidfabError``, never a raw OR-Tools exception."""
    solver = cp_model.CpSolver()
    if seconds <= 0:
        return cp_model.UNKNOWN, solver
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    try:
        status = solver.solve(model)
    except Exception as e:  # OR-Tools raises RuntimeError, ValueError and others
        raise LiquidfabError(f"the CP-SAT solver failed: {e}") from e
    if status == cp_model.MODEL_INVALID:
        raise LiquidfabError(f"the CP-SAT solver rejected the model: {model.validate()}")
    return status, solver
