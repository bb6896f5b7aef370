"""The fleet simulation's report in words and as a picture: devices per state over time,
with the waves marked, drawn on a matplotlib Figure with the Agg canvas (no pyplot, so
it is safe in threads and servers)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from liquidfab.fleet.simulate import STATES, SimulationReport

__all__ = ["plot_states", "summary_lines"]

_COLOURS = {
    "factory": "#b0b7c3",
    "updating": "#f2b134",
    "updated": "#2e9e5b",
    "rolled back": "#d64545",
    "refused": "#8e44ad",
    "off": "#34495e",
}


def plot_states(report: SimulationReport, path: Path) -> None:
    """Devices per state over time (stacked), the wave starts as vertical lines."""
    series = report.series
    figure = Figure(figsize=(9, 4.8), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if series:
        times = [s["t"] for s in series]
        axes.stackplot(
            times,
            [[s[state] for s in series] for state in STATES],
            labels=list(STATES),
            colors=[_COLOURS[s] for s in STATES],
        )
        wave = series[0]["wave"]
        for sample in series:
            if sample["wave"] != wave:
                wave = sample["wave"]
                axes.axvline(sample["t"], color="black", linewidth=0.8, linestyle="--")
                axes.annotate(
                    f"wave {wave + 1}",
                    (sample["t"], report.settings["devices"]),
                    fontsize=8,
                    ha="left",
                    va="top",
                )
        axes.set_xlim(times[0], times[-1])
    axes.set_ylim(0, report.settings["devices"])
    axes.set_xlabel("seconds since the rollout started")
    axes.set_ylabel("devices")
    axes.set_title(
        f"{report.settings['devices']:,} devices over {report.settings['transport'].upper()}: "
        f"rollout {report.outcome}",
        fontsize=11,
    )
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path)


def summary_lines(report: SimulationReport) -> list[str]:
    """What a person reads at the end of a run."""
    rollout = report.rollout
    requests = report.requests
    seconds = max(report.seconds, 1e-9)
    polls = requests.get("poll", 0)
    messages = requests.get("message", 0)
    served = sum(n for kind, n in requests.items() if kind != "errors")
    lines = [
        f"outcome: {report.outcome} in {report.seconds:,.1f} s "
        f"(setup {report.setup_seconds:,.1f} s)",
        f"rollout: {rollout.get('state')}, wave {int(rollout.get('wave') or 0) + 1} of "
        f"{len(report.settings['waves'])}, {rollout.get('succeeded')} succeeded, "
        f"{rollout.get('failed')} failed of {rollout.get('assigned')} assigned "
        f"({rollout.get('population')} in the population)",
    ]
    if rollout.get("reason"):
        lines.append(f"paused because {rollout['reason']}")
    lines += [
        "devices at the end: "
        + ", ".join(f"{report.final.get(s, 0)} {s}" for s in STATES if report.final.get(s)),
        "faults injected: "
        + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.injected.items()),
        f"without a working slot: {report.without_working_slot}; failed but not on the "
        f"old image: {report.failed_not_on_old_image}",
        f"node served {polls:,} polls ({polls / seconds:,.0f}/s) and {messages:,} messages "
        f"({messages / seconds:,.0f}/s); node CPU {report.node_cpu_seconds:,.1f} s, "
        f"{1e6 * report.node_cpu_seconds / max(served, 1):,.0f} µs per request",
    ]
    return lines
