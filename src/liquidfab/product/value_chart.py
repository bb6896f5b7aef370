"""The value model as a picture: when software passes hardware, and cost against volume.

Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so it
is safe in a server or a test run and leaves no global state behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from liquidfab.errors import ProductError
from liquidfab.product.value import ValueReport

__all__ = ["write_chart"]

_FORMATS = {".png": "png", ".svg": "svg"}


def write_chart(report: ValueReport, path: Path) -> Path:
    """Write the two-panel value chart to ``path``: SVG if it ends in .svg, else PNG (.png)."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ProductError(
            [("", None, f"a chart is written as .png or .svg, not {path.suffix or 'no suffix'!r}")],
            str(path),
        )
    fig = Figure(figsize=(12, 4.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    _crossover_panel(left, report)
    _volume_panel(right, report)
    fig.suptitle(f"{report.name} {report.version}: value per unit ({report.currency})", fontsize=12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt)
    return path


def _crossover_panel(ax: Axes, report: ValueReport) -> None:
    currency = report.currency
    months = [0] + [m.month for m in report.months]
    cumulative = [0.0] + [float(m.cumulative) for m in report.months]
    margin = float(report.hardware_margin)
    ax.plot(months, cumulative, color="tab:blue", lw=2, label="cumulative software contribution")
    ax.axhline(margin, color="tab:orange", lw=2, ls="--", label="hardware margin")
    crossover = report.crossover_month
    if crossover is not None:
        y = cumulative[crossover]
        ax.axvline(crossover, color="grey", lw=1, ls=":")
        ax.plot([crossover], [y], "o", color="tab:red", zorder=3)
        label = "at sale (month 0)" if crossover == 0 else f"in month {crossover}"
        ax.annotate(
            f"software passes\nhardware margin\n{label}",
            xy=(crossover, y),
            xytext=(0.97, 0.06),
            textcoords="axes fraction",
            ha="right",
            va="bottom",
            arrowprops={"arrowstyle": "->", "color": "tab:red"},
            color="tab:red",
        )
    else:
        ax.text(
            0.97,
            0.06,
            f"software does not pass hardware\nmargin within the {report.life_months}-month life",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            color="tab:red",
        )
    ax.set_xlim(0, report.life_months)
    ax.set_title("Software contribution against hardware margin, per unit")
    ax.set_xlabel("month of the unit's life")
    ax.set_ylabel(f"{currency} per unit")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _volume_panel(ax: Axes, report: ValueReport) -> None:
    currency = report.currency
    points = sorted(report.volumes, key=lambda v: v.volume)
    lo, hi = points[0].volume, points[-1].volume
    if lo == hi:
        lo, hi = max(1, lo // 10), hi * 10
    grid = np.geomspace(lo, hi, 200)
    fixed = float(report.fixed_cost_total)
    unit = float(report.unit_cost)
    software = float(report.software_cost)
    ax.plot(grid, unit + fixed / grid, color="tab:purple", lw=2, label="hardware, full cost")
    ax.plot(
        [p.volume for p in points],
        [float(p.hardware_full_cost) for p in points],
        "o",
        color="tab:purple",
    )
    ax.plot(grid, np.full_like(grid, unit), color="tab:green", lw=2, label="hardware, marginal")
    ax.plot(
        grid,
        np.full_like(grid, software),
        color="tab:blue",
        lw=2,
        ls="--",
        label="software, marginal (lifetime)",
    )
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_title(f"Cost per unit as volume grows (fixed costs {fixed:,.0f} {currency})")
    ax.set_xlabel("units built (log scale)")
    ax.set_ylabel(f"{currency} per unit")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
