"""Published factory layouts, compiled once, simulated once, and drawn once.

A layout version never changes, so what the node builds from it never goes stale: the
compiled layout, the KPI report of one bounded simulation run (at most ``MAX_JOBS`` jobs,
or a horizon that many jobs would take, times at most ``MAX_REPLICATIONS``
replications), the diagram and the charts. The run happens on the first request that
needs it, under a lock, so a version is simulated once however many ask at the same
time, and one simulation runs on the node at a time.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from liquidfab.db import Database
from liquidfab.errors import LayoutError, LiquidfabError, ProtocolError
from liquidfab.factory import catalog
from liquidfab.factory.diagram import layout_svg
from liquidfab.factory.messages import parse_product_ref
from liquidfab.factory.model import Layout, layout_from_data, visit_ratios
from liquidfab.product import catalog as product_catalog
from liquidfab.product import product_from_data

__all__ = [
    "CHARTS",
    "MAX_JOBS",
    "MAX_REPLICATIONS",
    "FactoryItem",
    "FactoryShelf",
    "bounded_run",
]

MAX_JOBS = 1000
MAX_REPLICATIONS = 5
#: Events of the general engine per replication: what bounds the work (and the memory)
#: of one run, whatever a published layout says (jobs alone do not: a job can cost
#: many events with tiny failure intervals, long repairs or many servers).
MAX_EVENTS = 2_000_000
CHARTS = ("states", "gantt")
CHART_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}

# One simulation at a time on the node: a page load waits for the run before it,
# never competes with it for the CPU.
_SIMULATING = threading.Lock()

if TYPE_CHECKING:
    from liquidfab.factory.simulation import Report


def simulate(layout: Layout, **kwargs: Any) -> Report:
    """The factory's simulate, imported on first use: the engines (Numba, SciPy, SimPy)
    stay out of the node's start-up until a page asks for a run."""
    from liquidfab.factory.simulation import simulate as run

    return run(layout, **kwargs)


def _cycle_seconds(layout: Layout) -> float:
    """Rough seconds between finished jobs: the slowest station's load per job (with
    its visits, servers and breakdowns), stretched by the shift calendar; or the time
    between orders when they come slower."""
    per_job = 0.0
    for st, visits in zip(layout.stations, visit_ratios(layout), strict=True):
        per_job = max(
            per_job, visits * st.mean_time(layout.shares) / (st.servers * st.availability())
        )
    if layout.calendar is not None and layout.calendar.share > 0:
        per_job /= layout.calendar.share
    if layout.interarrival is not None:
        per_job = max(per_job, layout.interarrival.mean)
    return per_job if math.isfinite(per_job) and per_job > 0 else 1.0


def bounded_run(layout: Layout) -> tuple[dict[str, Any], str | None]:
    """The arguments of the node's one run of ``layout``, and a note when they are
    smaller than what the layout's ``run`` section asks for."""
    run = layout.spec.run
    reps = min(run.replications, MAX_REPLICATIONS)
    kwargs: dict[str, Any] = {
        "replications": reps,
        "max_replications": min(run.max_replications, MAX_REPLICATIONS),
        "max_events": MAX_EVENTS,
    }
    smaller = reps < run.replications
    if run.horizon is not None:
        horizon = min(run.horizon, MAX_JOBS * _cycle_seconds(layout))
        kwargs["horizon"] = horizon
        asked, ran = f"a horizon of {run.horizon:g} s", f"a horizon of {horizon:g} s"
        smaller = smaller or horizon < run.horizon
    else:
        jobs = min(run.jobs or MAX_JOBS, MAX_JOBS)
        kwargs["jobs"] = jobs
        asked, ran = f"{run.jobs} jobs", f"{jobs} jobs"
        smaller = smaller or jobs < (run.jobs or MAX_JOBS)
    if isinstance(run.warmup, int) and run.warmup > MAX_JOBS // 5:
        kwargs["warmup"] = MAX_JOBS // 5
        asked += f" with a warm-up of {run.warmup} jobs"
        ran += f" with a warm-up of {MAX_JOBS // 5} jobs"
        smaller = True
    if not smaller:
        return kwargs, None
    return kwargs, (
        f"the node ran {ran} \u00d7 {reps} replications (the layout asks for {asked} \u00d7 "
        f"{run.replications}); run `liquidfab factory simulate` for the full run"
    )


@dataclass
class FactoryItem:
    """One published layout version and what the node made of it."""

    layout: Layout
    lock: threading.Lock = field(default_factory=threading.Lock)
    _report: Report | None = None
    _failure: LayoutError | None = None
    _kpis: dict[str, Any] | None = None
    _diagram: str | None = None
    _charts: dict[tuple[str, str], bytes] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self._report is not None or self._failure is not None

    def report(self) -> Report:
        """The KPI report of the node's bounded run, simulated on first use.

        A run that fails (the warm-up leaves nothing to measure, say) fails the same way
        every time, so its error is kept too: ProtocolError ``simulation-failed``.
        """
        if not self.simulated:
            with self.lock:
                if not self.simulated:
                    kwargs, note = bounded_run(self.layout)
                    with _SIMULATING:
                        try:
                            report = simulate(self.layout, **kwargs)
                        except LayoutError as e:
                            self._failure = e
                        except (LiquidfabError, ArithmeticError, ValueError, MemoryError) as e:
                            # kept like a LayoutError: the same run fails the same way again
                            self._failure = LayoutError(
                                [("run", None, f"the run failed: {e}")], self.layout.file
                            )
                        else:
                            if note:
                                report.notes.append(note)
                            self._report = report
        if self._failure is not None:
            e = self._failure
            first = e.problems[0]
            raise ProtocolError(
                "simulation-failed",
                f"{self.layout.id}@{self.layout.version} could not be simulated: "
                f"{first[0] + ': ' if first[0] else ''}{first[2]}",
                422,
                extra={"problems": [{"path": p, "message": m} for p, _line, m in e.problems]},
            )
        assert self._report is not None
        return self._report

    def kpis(self) -> dict[str, Any]:
        """The report as strict JSON."""
        if self._kpis is None:
            from liquidfab.factory.simulation import jsonable

            self._kpis = jsonable(self.report().to_dict())
        return self._kpis

    def kpis_or_none(self) -> dict[str, Any] | None:
        try:
            return self.kpis()
        except ProtocolError:
            return None

    def failure(self) -> str | None:
        return None if self._failure is None else str(self._failure)

    def diagram(self) -> str:
        """The layout drawn as SVG, coloured by the KPIs when the run succeeded."""
        if self._diagram is None:
            self._diagram = layout_svg(self.layout, self.kpis_or_none())
        return self._diagram

    def chart(self, name: str, fmt: str) -> bytes:
        """A chart of the report (``states`` or ``gantt``, as ``png`` or ``svg``)."""
        key = (name, fmt)
        if key not in self._charts:
            from liquidfab.factory import charts

            render = charts.render_state_shares if name == "states" else charts.render_gantt
            report = self.report()
            with self.lock:
                if key not in self._charts:
                    self._charts[key] = render(report, fmt)
        return self._charts[key]


class FactoryShelf:
    """What the node holds of each published layout version, built on first use."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._items: dict[tuple[str, str], FactoryItem] = {}
        self._lock = threading.Lock()

    def latest(self, layout_id: str) -> str | None:
        row = self.database.read(lambda c: catalog.get_layout(c, layout_id))
        return row["latest"] if row else None

    def get(self, layout_id: str, version: str | None = None) -> FactoryItem | None:
        """The compiled layout, or None when the node holds no such version."""
        if version is None:
            version = self.latest(layout_id)
            if version is None:
                return None
        key = (layout_id, version)
        item = self._items.get(key)
        if item is not None:
            return item

        def load(conn: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
            row = catalog.get_version(conn, layout_id, version)
            ref = parse_product_ref(row["product"]) if row and row["product"] else None
            product = product_catalog.get_version(conn, *ref) if ref else None
            return row, product

        row, product_row = self.database.read(load)
        if row is None:
            return None
        where = f"{layout_id}@{version}"
        try:
            product = (
                product_from_data(product_row["definition"], file=row["product"])
                if product_row
                else None
            )
            layout = layout_from_data(row["document"], product=product, file=where)
        except LiquidfabError as e:  # pragma: no cover - it compiled when it was published
            raise ProtocolError("store-unavailable", f"{where} no longer compiles: {e}", 503) from e
        with self._lock:
            return self._items.setdefault(key, FactoryItem(layout))
