"""Running a layout: replications on the right engine, warm-up, and the KPIs with
their confidence intervals.

``simulate`` picks the exact flow-line engine when the layout is a plain serial line
(single servers, finite buffers, blocking after service, setups folded into times) and
the discrete-event engine otherwise, deletes the warm-up (MSER-5 on the mean lead-time
series of pilot replications unless a job count is given), and reports per replication
so that two layouts run with the same seed can be compared pair by pair.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from liquidfab.errors import LayoutError
from liquidfab.factory import flowline
from liquidfab.factory.des_run import STATES
from liquidfab.factory.model import Layout
from liquidfab.factory.sampling import Samples, draw, exact_times
from liquidfab.factory.statistics import Estimate, mean_ci, mser_detail, quantiles, replicate_until

__all__ = [
    "STATES",
    "Replication",
    "Report",
    "StationKpi",
    "jsonable",
    "line_buffers",
    "simulate",
    "simulate_buffer_variants",
]

Engine = Literal["auto", "exact", "des"]
Progress = Callable[[int, int], None]
_PILOT = 5
_KEEP_LEADS = 20_000
# Numba's parallel kernels may not be entered from two threads at once under some
# threading layers; a server runs simulations from a thread pool.
_KERNEL = threading.Lock()
_BATCH_BYTES = 256 * 2**20  # sampled times held at once by the exact engine


def _batch(layout: Layout, jobs: int | None) -> int:
    """Replications per exact-engine call: up to 50, fewer when the sampled times of a
    replication are large, so memory stays near ``_BATCH_BYTES`` however long the run."""
    per = max(1, (jobs or 1) * len(layout.stations) * 8 * 2)  # samples + folded times
    return max(1, min(50, _BATCH_BYTES // per))


@dataclass
class Replication:
    """One replication's figures over its measured window (after the warm-up)."""

    index: int
    throughput: float  # jobs per hour
    lead_time: float  # seconds, mean
    wip: float  # jobs, time average
    totals: np.ndarray  # [stations, STATES] seconds, summed over servers
    completed: int
    scrapped: int
    reworked: int
    processed: np.ndarray  # [stations] jobs that left each station (for OEE quality)
    passed: np.ndarray  # [stations] of those, jobs that passed inspection
    leads: np.ndarray = field(repr=False)  # lead times of counted jobs (a sample)


@dataclass(frozen=True)
class StationKpi:
    id: str
    name: str
    servers: int
    shares: dict[str, float]
    availability: float
    performance: float
    quality: float

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality

    @property
    def active(self) -> float:
        """The share of time the station is not waiting on others (working, setting up or
        failed); the station with the largest share holds the line back the most."""
        return self.shares["working"] + self.shares["setup"] + self.shares["failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "servers": self.servers,
            "shares": self.shares,
            "active": self.active,
            "oee": self.oee,
            "availability": self.availability,
            "performance": self.performance,
            "quality": self.quality,
        }


@dataclass
class Report:
    """What a simulation run found, with every KPI as a mean and confidence interval."""

    layout: Layout
    engine: str
    jobs: int | None
    horizon: float | None
    seed: int
    confidence: float
    warmup: int
    warmup_reliable: bool
    replications: list[Replication]
    gantt: list[dict[str, Any]]
    target_reached: bool | None = None
    notes: list[str] = field(default_factory=list)

    def values(self, kpi: str) -> np.ndarray:
        return np.array([getattr(r, kpi) for r in self.replications])

    def estimate(self, kpi: str) -> Estimate:
        return mean_ci(self.values(kpi), self.confidence)

    @property
    def throughput(self) -> Estimate:
        return self.estimate("throughput")

    @property
    def lead_time(self) -> Estimate:
        return self.estimate("lead_time")

    @property
    def wip(self) -> Estimate:
        return self.estimate("wip")

    def lead_time_quantiles(self) -> dict[float, float]:
        leads = np.concatenate([r.leads for r in self.replications])
        return quantiles(leads) if leads.size else {}

    def stations(self) -> list[StationKpi]:
        totals = np.sum([r.totals for r in self.replications], axis=0)
        processed = np.sum([r.processed for r in self.replications], axis=0)
        passed = np.sum([r.passed for r in self.replications], axis=0)
        out = []
        for i, st in enumerate(self.layout.stations):
            t = totals[i]
            whole = float(t.sum())
            shares = {s: (float(t[k]) / whole if whole > 0 else 0.0) for k, s in enumerate(STATES)}
            planned = whole - float(t[5])
            run = planned - float(t[1]) - float(t[2])
            availability = run / planned if planned > 0 else 0.0
            performance = float(t[0]) / run if run > 0 else 0.0
            quality = float(passed[i]) / float(processed[i]) if processed[i] else 1.0
            out.append(
                StationKpi(st.id, st.name, st.servers, shares, availability, performance, quality)
            )
        return out

    def bottlenecks(self) -> list[StationKpi]:
        """Stations ranked by active share, the one holding the line back first."""
        return sorted(self.stations(), key=lambda s: (-s.active, s.shares["blocked"]))

    def to_dict(self) -> dict[str, Any]:
        ranked = self.bottlenecks()
        return {
            "layout": {
                "id": self.layout.id,
                "version": self.layout.version,
                "name": self.layout.name,
                "digest": self.layout.digest(),
            },
            "engine": self.engine,
            "jobs": self.jobs,
            "horizon": self.horizon,
            "replications": len(self.replications),
            "seed": self.seed,
            "confidence": self.confidence,
            "warmup_jobs": self.warmup,
            "warmup_reliable": self.warmup_reliable,
            "target_reached": self.target_reached,
            "throughput_per_hour": self.throughput.to_dict(),
            "lead_time_seconds": self.lead_time.to_dict(),
            "wip": self.wip.to_dict(),
            "lead_time_quantiles": {str(q): v for q, v in self.lead_time_quantiles().items()},
            "completed": int(sum(r.completed for r in self.replications)),
            "scrapped": int(sum(r.scrapped for r in self.replications)),
            "reworked": int(sum(r.reworked for r in self.replications)),
            "stations": [s.to_dict() for s in self.stations()],
            "bottleneck": ranked[0].id,
            "bottleneck_ranking": [s.id for s in ranked],
            "notes": list(self.notes),
        }


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float (a one-replication interval, an infinite
    relative width) as None, so it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def simulate(
    layout: Layout,
    *,
    jobs: int | None = None,
    horizon: float | None = None,
    replications: int | None = None,
    seed: int | None = None,
    warmup: int | Literal["auto"] | None = None,
    engine: Engine = "auto",
    confidence: float | None = None,
    target_half_width: float | None = None,
    max_replications: int | None = None,
    trace_jobs: int = 20,
    progress: Progress | None = None,
    max_events: int | None = None,
) -> Report:
    """Run ``layout``; arguments left out come from the layout's ``run`` section.

    ``max_events`` caps the general engine's events per replication (a server bounds
    the work one request may cause); past it the run stops with a LayoutError.
    """
    run = layout.spec.run
    if jobs is None and horizon is None:
        jobs, horizon = run.jobs, run.horizon
    if (jobs is None) == (horizon is None):
        raise LayoutError([("run", None, "give jobs or horizon, not both")], layout.file)
    if jobs is not None and not 1 <= jobs <= 10_000_000:
        raise LayoutError(
            [("run.jobs", None, "jobs must be between 1 and 10,000,000")], layout.file
        )
    if horizon is not None and not 0 < horizon <= 10 * 365 * 86400:
        raise LayoutError(
            [("run.horizon", None, "horizon must be above 0 and at most ten years of seconds")],
            layout.file,
        )
    reps = replications if replications is not None else run.replications
    seed = run.seed if seed is None else seed
    confidence = confidence or run.confidence
    target = target_half_width if target_half_width is not None else run.target_half_width
    cap = max_replications or run.max_replications
    if reps < 1 or cap < 1:
        raise LayoutError([("run.replications", None, "at least one replication")], layout.file)
    why_not = layout.exact_reason()
    chosen = "exact" if engine == "auto" and why_not is None and jobs is not None else engine
    if chosen == "auto":
        chosen = "des"
    if chosen == "exact" and (why_not is not None or jobs is None):
        reason = why_not or "a horizon (the exact engine runs a job count)"
        raise LayoutError(
            [("engine", None, f"the exact engine cannot run this layout: {reason}")], layout.file
        )
    runner: _Runner = (
        _Exact(layout, jobs or 0, seed)
        if chosen == "exact"
        else _Des(layout, jobs, horizon, seed, max_events=max_events, trace=trace_jobs)
    )
    want = warmup if warmup is not None else run.warmup
    if want == "auto":
        series = runner.pilot(min(_PILOT, reps))
        if series.size == 0:
            raise LayoutError(
                [
                    (
                        "run",
                        None,
                        "no job was completed in the first replications, "
                        "so there is nothing to measure: run longer, or check yields "
                        "and scrap",
                    )
                ],
                layout.file,
            )
        detail = mser_detail(series)
        warm, reliable = detail.truncate, detail.reliable
    else:
        warm, reliable = int(want), True
    if jobs is not None and warm >= jobs:
        raise LayoutError(
            [
                (
                    "run.warmup",
                    None,
                    f"the warm-up ({warm} jobs) leaves nothing of "
                    f"{jobs} jobs to measure; run more jobs",
                )
            ],
            layout.file,
        )
    results: list[Replication] = []
    total = cap if target else reps

    def batch(start: int, count: int) -> np.ndarray:
        got = runner.run(start, count, warm)
        results.extend(got)
        if progress:
            progress(len(results), total)
        return np.array([r.throughput for r in got])

    reached = None
    if target:
        seq = replicate_until(
            batch,
            target=target,
            confidence=confidence,
            min_reps=max(2, min(reps, cap)),
            max_reps=max(cap, 2),
        )
        reached = seq.reached
    else:
        step = max(1, min(reps, _batch(layout, jobs) if chosen == "exact" else 1))
        for start in range(0, reps, step):
            batch(start, min(step, reps - start))
    for r in results:
        if not (math.isfinite(r.throughput) and math.isfinite(r.lead_time)):
            raise LayoutError(
                [
                    (
                        "run",
                        None,
                        f"replication {r.index} gave no finite throughput "
                        "or lead time (no time passed in the measured window): run "
                        "longer",
                    )
                ],
                layout.file,
            )
    notes = []
    if reached is False:
        notes.append(
            f"the target half-width was not reached within {len(results)} "
            "replications (run.max_replications)"
        )
    if not reliable:
        notes.append(
            "MSER-5 put the warm-up late in the run: run more jobs to be sure the "
            "line reached a steady state"
        )
    if why_not and chosen == "des":
        notes.append(f"general engine: {why_not}")
    return Report(
        layout,
        chosen,
        jobs,
        horizon,
        seed,
        confidence,
        warm,
        reliable,
        results,
        runner.gantt(trace_jobs),
        reached,
        notes,
    )


class _Runner:
    def pilot(self, count: int) -> np.ndarray:
        """The mean lead-time series by job over the first replications."""
        raise NotImplementedError

    def run(self, start: int, count: int, warmup: int) -> list[Replication]:
        raise NotImplementedError

    def gantt(self, jobs: int) -> list[dict[str, Any]]:
        raise NotImplementedError


def line_buffers(layout: Layout, jobs: int) -> np.ndarray:
    """The exact engine's buffers: places in front of each line station after the first
    (unbounded as ``jobs``, which no line of ``jobs`` jobs can fill)."""
    line = [layout.stations[i] for i in layout.line]
    return np.array(
        [min(s.buffer if s.buffer is not None else jobs, jobs) for s in line[1:]], dtype=np.int64
    )


class _Exact(_Runner):
    """The exact engine over ``V`` buffer variants of one line (one row of ``buffers``
    each): the same sampled times, one kernel call per batch of replications."""

    def __init__(
        self, layout: Layout, jobs: int, seed: int, buffers: np.ndarray | None = None
    ) -> None:
        self.layout, self.jobs, self.seed = layout, jobs, seed
        self.buffers = line_buffers(layout, jobs)[None] if buffers is None else buffers

    def _samples(
        self, start: int, count: int
    ) -> tuple[list[Samples], np.ndarray, np.ndarray | None]:
        samples = draw(self.layout, self.jobs, seed=self.seed, replications=count, start=start)
        S, A = exact_times(self.layout, samples)
        return samples, S, A

    def pilot_all(self, count: int) -> np.ndarray:
        """The mean lead-time series by job over the first replications, per variant."""
        _, S, A = self._samples(0, count)
        with _KERNEL:
            return flowline.lead_times(S, self.buffers, A).mean(axis=1)

    def pilot(self, count: int) -> np.ndarray:
        return self.pilot_all(count)[0]

    def run(self, start: int, count: int, warmup: int) -> list[Replication]:
        return self.run_all(start, count, warmup)[0]

    def run_all(self, start: int, count: int, warmup: int) -> list[list[Replication]]:
        samples, S, A = self._samples(start, count)
        with _KERNEL:
            summary = flowline.summarize(S, self.buffers, A, warmup=warmup)
            if self.buffers.shape[0] == 1:  # every replication's lead times, for quantiles
                leads = flowline.lead_times(S, self.buffers, A)
            else:  # a sweep's variants: the first replication's are enough
                leads = flowline.lead_times(S[:1], self.buffers, None if A is None else A[:1])
        n_st = len(self.layout.stations)
        setups = np.zeros((len(samples), n_st))  # setup seconds of counted jobs
        for r, s in enumerate(samples):
            for i in self.layout.line:
                setup = self.layout.stations[i].setup
                if setup is not None:
                    v = s.variant[: self.jobs]
                    lo = max(warmup, 1)
                    setups[r, i] = float(setup[v[lo - 1 : -1], v[lo:]].sum())
        counted = self.jobs - warmup
        out: list[list[Replication]] = []
        for v in range(self.buffers.shape[0]):
            reps = []
            for r in range(len(samples)):
                totals = np.zeros((n_st, len(STATES)))
                window = float(summary.makespan[v, r] - summary.warm_time[v, r])
                for k, i in enumerate(self.layout.line):
                    spent = setups[r, i]
                    work = float(summary.working[v, r, k])
                    blocked = float(summary.blocked[v, r, k])
                    starved = float(summary.starved[v, r, k])
                    # the station's own span of counted jobs can end before the line's
                    # window does (it finished its last job earlier): idle, so starved
                    starved += max(0.0, window - (work + blocked + starved))
                    totals[i] = (work - spent, spent, 0.0, blocked, starved, 0.0)
                keep = leads[v, r, warmup:][:_KEEP_LEADS] if r < leads.shape[1] else np.zeros(0)
                reps.append(
                    Replication(
                        index=start + r,
                        throughput=float(summary.throughput[v, r]) * 3600.0,
                        lead_time=float(summary.lead_time_mean[v, r]),
                        wip=float(summary.wip_mean[v, r]),
                        totals=totals,
                        completed=counted,
                        scrapped=0,
                        reworked=0,
                        processed=np.full(n_st, counted),
                        passed=np.full(n_st, counted),
                        leads=keep,
                    )
                )
            out.append(reps)
        return out

    def gantt(self, jobs: int) -> list[dict[str, Any]]:
        if jobs <= 0:
            return []
        samples = draw(self.layout, min(jobs, self.jobs), seed=self.seed, replications=1)
        S, A = exact_times(self.layout, samples)
        rows = []
        with _KERNEL:
            trace = flowline.gantt(S, self.buffers[:1], A, jobs=min(jobs, self.jobs))
        for row in trace:
            st = self.layout.stations[self.layout.line[row["station"]]]
            rows.append(
                {
                    "station": st.id,
                    "server": 0,
                    "job": row["job"],
                    "state": "working",
                    "start": row["start"],
                    "end": row["finish"],
                }
            )
            if row["departure"] > row["finish"]:
                rows.append(
                    {
                        "station": st.id,
                        "server": 0,
                        "job": row["job"],
                        "state": "blocked",
                        "start": row["finish"],
                        "end": row["departure"],
                    }
                )
        return rows


class _Des(_Runner):
    def __init__(
        self,
        layout: Layout,
        jobs: int | None,
        horizon: float | None,
        seed: int,
        *,
        max_events: int | None = None,
        trace: int = 0,
    ) -> None:
        self.layout, self.jobs, self.horizon, self.seed = layout, jobs, horizon, seed
        self.max_events, self.trace = max_events, trace
        self._kept: dict[int, Any] = {}  # pilot runs, reused as the first replications

    def _one(self, index: int) -> Any:
        from liquidfab.factory import des

        if index in self._kept:
            return self._kept.pop(index)
        (samples,) = draw(
            self.layout, self.jobs or 1024, seed=self.seed, replications=1, start=index
        )
        run = des.simulate(
            self.layout,
            samples,
            jobs=self.jobs,
            horizon=self.horizon,
            trace_jobs=self.trace if index == 0 else 0,
            max_events=self.max_events,
        )
        if index == 0:
            self._trace = run.trace
        return run

    def pilot(self, count: int) -> np.ndarray:
        series = []
        for r in range(count):
            run = self._one(r)
            self._kept[r] = run
            lead = run.complete - run.release
            series.append(lead[~np.isnan(lead)])
        n = min(len(s) for s in series)
        return np.mean([s[:n] for s in series], axis=0) if n else np.zeros(0)

    def run(self, start: int, count: int, warmup: int) -> list[Replication]:
        out = []
        for index in range(start, start + count):
            run = self._one(index)
            done = np.sort(run.complete[~np.isnan(run.complete)])
            if done.size <= warmup:
                raise LayoutError(
                    [
                        (
                            "run",
                            None,
                            f"replication {index} completed {done.size} "
                            f"jobs, no more than the warm-up ({warmup}); run longer",
                        )
                    ],
                    self.layout.file,
                )
            warm = float(done[warmup - 1]) if warmup else 0.0
            end = float(self.horizon) if self.horizon is not None else float(done[-1])
            # jobs finishing at the warm-up instant itself belong to the warm-up
            counted = done[(done > warm) & (done <= end)]
            span = end - warm
            lead = run.complete - run.release
            mask = (~np.isnan(run.complete)) & (run.complete > warm) & (run.complete <= end)
            leads = lead[mask]
            out.append(
                Replication(
                    index=index,
                    throughput=counted.size / span * 3600.0 if span > 0 else 0.0,
                    lead_time=float(leads.mean()) if leads.size else float("nan"),
                    wip=float(run.wip(warm, end)),
                    totals=run.state_totals(warm, end),
                    completed=int(counted.size),
                    scrapped=int(
                        np.count_nonzero(run.scrapped & (run.leave > warm) & (run.leave <= end))
                    ),
                    reworked=int(run.reworked),
                    processed=np.asarray(run.processed, dtype=np.float64),
                    passed=np.asarray(run.passed, dtype=np.float64),
                    leads=leads[:_KEEP_LEADS],
                )
            )
        return out

    def gantt(self, jobs: int) -> list[dict[str, Any]]:
        if jobs <= 0:
            return []
        trace = getattr(self, "_trace", None)
        if trace is None:
            self._kept.pop(0, None)
            self.trace = jobs
            trace = self._one(0).trace
        return [
            {**row, "station": self.layout.stations[row["station"]].id}
            if isinstance(row["station"], int | np.integer)
            else row
            for row in trace
        ]


def simulate_buffer_variants(
    layouts: Sequence[Layout],
    *,
    jobs: int | None = None,
    replications: int | None = None,
    seed: int | None = None,
    warmup: int | Literal["auto"] | None = None,
    confidence: float | None = None,
    progress: Progress | None = None,
) -> list[Report]:
    """Layouts of one serial line that differ only in buffer sizes, on the exact engine's
    variants axis: every layout runs on the same sampled times in one kernel call per
    batch of replications, so a thousand allocations cost little more than one.

    The warm-up is one for all: the longest MSER-5 finds for any of them, so every
    layout is measured over the same jobs. Arguments left out come from the first
    layout's ``run`` section.
    """
    if not layouts:
        return []
    base = layouts[0]
    reason = base.exact_reason()
    if reason is not None:
        raise LayoutError(
            [("engine", None, f"not a serial line for the exact engine: {reason}")], base.file
        )
    shape = _without_buffers(base)
    for other in layouts[1:]:
        if _without_buffers(other) != shape:
            raise LayoutError(
                [
                    (
                        "layouts",
                        None,
                        f"{other.file} differs from {base.file} in more than buffer sizes",
                    )
                ],
                base.file,
            )
    run = base.spec.run
    jobs = jobs or run.jobs
    if jobs is None:
        raise LayoutError([("run.jobs", None, "the exact engine runs a job count")], base.file)
    reps = replications or run.replications
    seed = run.seed if seed is None else seed
    confidence = confidence or run.confidence
    buffers = np.stack([line_buffers(lay, jobs) for lay in layouts])
    runner = _Exact(base, jobs, seed, buffers)
    want = warmup if warmup is not None else run.warmup
    if want == "auto":
        details = [mser_detail(series) for series in runner.pilot_all(min(_PILOT, reps))]
        warm = max(d.truncate for d in details)
        reliable = all(d.reliable for d in details)
    else:
        warm, reliable = int(want), True
    if warm >= jobs:
        raise LayoutError(
            [
                (
                    "run.warmup",
                    None,
                    f"the warm-up ({warm} jobs) leaves nothing of "
                    f"{jobs} jobs to measure; run more jobs",
                )
            ],
            base.file,
        )
    results: list[list[Replication]] = [[] for _ in layouts]
    step = max(1, min(reps, 50))
    for start in range(0, reps, step):
        for v, got in enumerate(runner.run_all(start, min(step, reps - start), warm)):
            results[v].extend(got)
        if progress:
            progress(len(results[0]), reps)
    notes = [] if reliable else ["MSER-5 put the warm-up late in the run: run more jobs"]
    return [
        Report(
            lay,
            "exact",
            jobs,
            None,
            seed,
            confidence,
            warm,
            reliable,
            results[v],
            [],
            None,
            list(notes),
        )
        for v, lay in enumerate(layouts)
    ]


def _without_buffers(layout: Layout) -> Any:
    doc = layout.document()
    for st in doc["stations"]:
        st.pop("buffer", None)
    doc.pop("run", None)
    return doc
