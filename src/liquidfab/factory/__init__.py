"""The virtual factory: layouts simulated before they are built.

A layout is one YAML file (``LayoutFile``); ``load_layout`` checks and compiles it.
``simulate`` runs it on the exact max-plus engine when it is a plain serial line and on
the discrete-event engine otherwise, with replications, warm-up deletion and confidence
intervals; ``run_sweep`` compares many variants of a layout with common random numbers.
"""

from liquidfab.factory.distributions import (
    Deterministic,
    Empirical,
    Exponential,
    Lognormal,
    Triangular,
    Uniform,
)
from liquidfab.factory.format import LayoutFile, layout_json_schema
from liquidfab.factory.model import Calendar, Layout, Station, layout_from_data, load_layout

__all__ = [
    "STATES",
    "Calendar",
    "Comparison",
    "Deterministic",
    "Empirical",
    "Estimate",
    "Exponential",
    "Layout",
    "LayoutFile",
    "Lognormal",
    "Replication",
    "Report",
    "Samples",
    "Station",
    "StationKpi",
    "SweepFile",
    "SweepResult",
    "Triangular",
    "Uniform",
    "draw",
    "exact_times",
    "layout_from_data",
    "layout_json_schema",
    "load_layout",
    "load_sweep",
    "mean_ci",
    "paired_difference",
    "run_sweep",
    "simulate",
    "simulate_buffer_variants",
]

# The engines pull in NumPy's compiled kernels, SciPy, SimPy and Dask; a node that only
# stores layouts should not pay for them at start-up, so they load on first use.
_LAZY = {
    "STATES": "simulation",
    "Replication": "simulation",
    "Report": "simulation",
    "StationKpi": "simulation",
    "simulate": "simulation",
    "simulate_buffer_variants": "simulation",
    "SweepFile": "experiment",
    "SweepResult": "experiment",
    "load_sweep": "experiment",
    "run_sweep": "experiment",
    "Samples": "sampling",
    "draw": "sampling",
    "exact_times": "sampling",
    "Comparison": "statistics",
    "Estimate": "statistics",
    "mean_ci": "statistics",
    "paired_difference": "statistics",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"liquidfab.factory.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'liquidfab.factory' has no attribute {name!r}")
