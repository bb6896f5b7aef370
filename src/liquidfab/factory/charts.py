"""Pictures of simulation results: where each station spends its time, a Gantt chart of
the first jobs, and throughput across the layouts of a sweep.

Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so
it is safe in a server, a worker process or a test run. Every function returns the
bytes of a PNG or an SVG; ``write`` puts them in a file named for the format.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from liquidfab.errors import LayoutError
from liquidfab.factory.simulation import STATES, Report

__all__ = ["render_gantt", "render_lead_times", "render_state_shares", "render_sweep", "write"]

COLOURS = {
    "working": "#2e7d32",
    "setup": "#f9a825",
    "failed": "#c62828",
    "blocked": "#6a1b9a",
    "starved": "#90a4ae",
    "off-shift": "#e0e0e0",
}
FORMATS = ("png", "svg")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _bytes(fig: Figure, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise LayoutError([("format", None, f"a chart is png or svg, not {fmt!r}")])
    out = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {}
    fig.savefig(out, format=fmt, metadata=meta)
    return out.getvalue()


def write(data: bytes, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def render_state_shares(report: Report, fmt: str = "png") -> bytes:
    """A stacked bar per station: the share of its time in each state, bottleneck marked."""
    stations = report.stations()
    bottleneck = report.bottlenecks()[0].id
    fig = _figure(9, 0.55 * len(stations) + 1.6)
    ax = fig.subplots()
    names = [f"{s.name} \u00d7{s.servers}" if s.servers > 1 else s.name for s in stations]
    left = np.zeros(len(stations))
    for state in STATES:
        widths = np.array([s.shares[state] for s in stations])
        if not widths.any():
            continue
        ax.barh(names, widths, left=left, color=COLOURS[state], label=state, height=0.6)
        left += widths
    for k, s in enumerate(stations):
        if s.id == bottleneck:
            ax.annotate(
                "bottleneck",
                (1.0, k),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color="#c62828",
            )
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("share of time (all servers)")
    ax.legend(ncol=6, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_title(
        f"{report.layout.name}: station states after warm-up "
        f"({len(report.replications)} replications)",
        fontsize=10,
        pad=24,
    )
    return _bytes(fig, fmt)


def render_lead_times(report: Report, fmt: str = "png") -> bytes:
    """The distribution of lead times after the warm-up, with its quantiles marked."""
    leads = np.concatenate([r.leads for r in report.replications])
    if not leads.size:
        raise LayoutError([("lead_times", None, "no job was counted, so there is no lead time")])
    hours = leads.max() > 4 * 3600
    scale, unit = (3600.0, "hours") if hours else (60.0, "minutes")
    fig = _figure(9, 4.2)
    ax = fig.subplots()
    ax.hist(leads / scale, bins=40, color="#1565c0", alpha=0.8)
    for k, (q, value) in enumerate(report.lead_time_quantiles().items()):
        ax.axvline(value / scale, color="#c62828", lw=0.8, ls="--")
        ax.annotate(
            f"p{round(q * 100)}",
            (value / scale, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10 - 10 * k),  # stacked, so close quantiles stay readable
            textcoords="offset points",
            fontsize=8,
            color="#c62828",
        )
    ax.set_xlabel(f"lead time ({unit})")
    ax.set_ylabel("jobs")
    ax.set_title(
        f"{report.layout.name}: lead times of {leads.size:,} jobs after warm-up", fontsize=10
    )
    return _bytes(fig, fmt)


def render_gantt(report: Report, fmt: str = "png") -> bytes:
    """The first jobs of replication 0 across the stations: working, setup, blocked and
    failed spans per server, one colour per job."""
    rows = report.gantt
    if not rows:
        raise LayoutError([("gantt", None, "the run kept no trace; run with trace_jobs > 0")])
    lanes: list[tuple[str, int]] = []
    order = {st.id: st.index for st in report.layout.stations}
    for row in sorted(rows, key=lambda r: (order.get(r["station"], 0), r.get("server", 0))):
        lane = (row["station"], int(row.get("server", 0)))
        if lane not in lanes:
            lanes.append(lane)
    fig = _figure(11, 0.42 * len(lanes) + 1.5)
    ax = fig.subplots()
    jobs = sorted({int(r["job"]) for r in rows})
    palette = [f"C{k % 10}" for k in range(len(jobs))]
    colour = {j: palette[k] for k, j in enumerate(jobs)}
    hours = 3600.0 if max(r["end"] for r in rows) > 4 * 3600 else 60.0
    for row in rows:
        y = lanes.index((row["station"], int(row.get("server", 0))))
        start, width = row["start"] / hours, (row["end"] - row["start"]) / hours
        state = row["state"]
        if state == "working":
            ax.barh(
                y,
                width,
                left=start,
                color=colour[int(row["job"])],
                height=0.7,
                edgecolor="white",
                linewidth=0.4,
            )
        else:
            ax.barh(y, width, left=start, color=COLOURS.get(state, "#999"), height=0.35, alpha=0.8)
    labels = [
        f"{sid}" + (f" #{srv + 1}" if any(s == sid and v > 0 for s, v in lanes) else "")
        for sid, srv in lanes
    ]
    ax.set_yticks(range(len(lanes)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("hours" if hours == 3600.0 else "minutes")
    ax.set_title(
        f"{report.layout.name}: the first {len(jobs)} jobs (wide bars: working, "
        "one colour per job; thin: setup, blocked, failed)",
        fontsize=10,
    )
    return _bytes(fig, fmt)


def render_sweep(
    rows: Sequence[dict[str, Any]],
    *,
    kpi: str = "throughput",
    x: str = "buffers",
    title: str = "",
    best_name: str | None = None,
    fmt: str = "png",
) -> bytes:
    """KPI with its confidence interval against a layout factor (total buffer places by
    default), one point per layout; the best is marked."""
    if not rows:
        raise LayoutError([("sweep", None, "no results to draw")])
    fig = _figure(10, 4.8)
    ax = fig.subplots()
    xs = np.array([float(r[x]) for r in rows])
    ys = np.array([r[f"{kpi}_mean"] for r in rows])
    lo = ys - np.array([r[f"{kpi}_low"] for r in rows])
    hi = np.array([r[f"{kpi}_high"] for r in rows]) - ys
    jitter = np.zeros(len(xs))
    if len(set(xs)) < len(xs):  # spread layouts that share a total so all stay visible
        for value in set(xs):
            idx = np.flatnonzero(xs == value)
            jitter[idx] = np.linspace(-0.25, 0.25, len(idx)) if len(idx) > 1 else 0
    groups = sorted({r.get("servers", 0) for r in rows})
    for k, g in enumerate(groups):
        idx = np.array([r.get("servers", 0) == g for r in rows])
        label = f"{g} servers in all" if len(groups) > 1 else "layout"
        ax.errorbar(
            xs[idx] + jitter[idx],
            ys[idx],
            yerr=[lo[idx], hi[idx]],
            fmt="o",
            ms=3,
            lw=0.8,
            color=f"C{k % 10}",
            capsize=2,
            label=f"{label} (mean and CI)",
        )
    names = [r["name"] for r in rows]
    if best_name in names:
        best = names.index(best_name)
    else:
        best = int(np.argmax(ys)) if rows[0].get("higher_is_better", True) else int(np.argmin(ys))
    ax.plot(
        xs[best] + jitter[best],
        ys[best],
        "*",
        ms=14,
        color="#c62828",
        label=f"best: {rows[best]['name']}",
    )
    ax.set_xlabel({"buffers": "buffer places in the line"}.get(x, x))
    unit = {"throughput": "jobs per hour", "lead_time": "seconds", "wip": "jobs"}.get(kpi, "")
    ax.set_ylabel(f"{kpi.replace('_', ' ')} ({unit})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{kpi.replace('_', ' ')} against {x}", fontsize=10)
    return _bytes(fig, fmt)
