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
from liquidfab.factory.experiment import SweepFile, SweepResult, load_sweep, run_sweep
from liquidfab.factory.format import LayoutFile, layout_json_schema
from liquidfab.factory.model import Calendar, Layout, Station, layout_from_data, load_layout
from liquidfab.factory.sampling import Samples, draw, exact_times
from liquidfab.factory.simulation import (
    STATES,
    Replication,
    Report,
    StationKpi,
    simulate,
    simulate_buffer_variants,
)
from liquidfab.factory.statistics import Comparison, Estimate, mean_ci, paired_difference

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
