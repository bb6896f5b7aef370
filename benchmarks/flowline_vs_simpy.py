"""The exact flow-line engine against a plain SimPy model of the same line, in one run.

The line: 5 stations in series, a buffer of 3 places between neighbours, blocking after
service, saturated (station 0 never waits for work), exponential process times with mean
1.0 s at every station (a balanced line, where blocking and starving are heaviest).

For each replication count R, with N jobs per replication:

1. process times are sampled with NumPy, one ``Generator`` per replication from
   ``SeedSequence(seed).spawn(R)``, in chunks of replications (at most ~256 MB of times
   at once), on every core (``Generator`` methods release the GIL, so one thread per
   core fills its share of a chunk);
2. the engine runs each chunk: ``departures`` for one replication (every departure time
   returned), ``summarize`` for more (the same recursion, no departure times kept);
   engine time and sampling time are reported separately, and their sum;
3. the plain SimPy model (``benchmarks/simpy_models.py``) runs on the same sampled
   times of the first replications, one after another, until a time budget is spent
   (SimPy on every replication would take hours at full size); its jobs/s comes from
   those replications, and its departure times must equal the engine's exactly
   (``departures`` on the same replications), or the run stops.

Jobs/s counts jobs through the whole line (R x N). Numba compiles the engine on first
use (or loads it from its cache); a warm-up on a tiny line before any timing keeps that
out of the figures, and its duration is printed.

    python benchmarks/flowline_vs_simpy.py          # 10,000 jobs; 1 and 100 replications
    python benchmarks/flowline_vs_simpy.py --full   # 100,000 jobs; 1 and 1,000 replications
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numba
import numpy as np
import simpy
from simpy_models import serial_line

from liquidfab.factory.flowline import departures, summarize

STATIONS = 5
BUFFER = 3
MEAN = 1.0  # seconds, every station
CHUNK_BYTES = 256 * 2**20  # process times sampled at once
KEEP_BYTES = 64 * 2**20  # process times kept for the SimPy comparison
GOAL_RATIO = 1_000  # engine / SimPy, at 1,000 replications
GOAL_SECONDS = 5.0  # 1,000 replications x 100,000 jobs, sampling included


@dataclass(frozen=True)
class Size:
    jobs: int
    replications: tuple[int, ...]
    simpy_budget: float  # seconds of SimPy per replication count


SMALL = Size(10_000, (1, 100), 10.0)
FULL = Size(100_000, (1, 1_000), 30.0)


@dataclass
class Run:
    replications: int
    jobs: int
    engine_call: str
    chunk: int
    sampling: float  # seconds
    engine: float  # seconds
    line_rate: float  # mean jobs per second of simulated time, a sanity figure
    simpy_reps: int
    simpy: float  # seconds for simpy_reps replications
    identical: bool

    @property
    def total(self) -> float:
        return self.sampling + self.engine

    @property
    def all_jobs(self) -> int:
        return self.replications * self.jobs

    @property
    def engine_rate(self) -> float:
        return self.all_jobs / self.engine

    @property
    def total_rate(self) -> float:
        return self.all_jobs / self.total

    @property
    def simpy_rate(self) -> float:
        return self.simpy_reps * self.jobs / self.simpy


def sample(pool: ThreadPoolExecutor, gens: list[np.random.Generator], out: np.ndarray) -> None:
    """Fill out[k] from gens[k], replications spread over the pool's threads."""

    def one(k: int) -> None:
        gens[k].standard_exponential(out=out[k])
        if MEAN != 1.0:
            out[k] *= MEAN

    list(pool.map(one, range(len(gens))))


def measure(reps: int, jobs: int, budget: float, seed: int, pool: ThreadPoolExecutor) -> Run:
    buffers = np.full(STATIONS - 1, BUFFER, dtype=np.int64)
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(reps)]
    per_rep = STATIONS * jobs * 8
    chunk = max(1, min(reps, CHUNK_BYTES // per_rep))
    keep = max(1, min(reps, chunk, KEEP_BYTES // per_rep))
    buf = np.empty((chunk, STATIONS, jobs))
    sampling = engine = 0.0
    rates = []
    engine_D: np.ndarray | None = None
    kept = np.empty(0)
    for c0 in range(0, reps, chunk):
        n = min(chunk, reps - c0)
        t0 = time.perf_counter()
        sample(pool, gens[c0 : c0 + n], buf[:n])
        t1 = time.perf_counter()
        if reps == 1:
            D = departures(buf[:n], buffers)
            makespan = D[0, :, -1, -1]
        else:
            makespan = summarize(buf[:n], buffers).makespan[0]
        t2 = time.perf_counter()
        sampling += t1 - t0
        engine += t2 - t1
        rates.append(jobs / makespan)
        if c0 == 0:
            kept = buf[:keep].copy()
            engine_D = D[0] if reps == 1 else None
    # SimPy on the first replications, as many as the budget allows (at least one)
    if engine_D is None:
        engine_D = departures(kept, buffers)[0]  # not timed: only for the check
    simpy_time, k, identical = 0.0, 0, True
    while k < len(kept) and (k == 0 or simpy_time < budget):
        t0 = time.perf_counter()
        D_simpy = serial_line(kept[k], buffers)
        simpy_time += time.perf_counter() - t0
        identical = identical and bool(np.array_equal(D_simpy, engine_D[k]))
        if not identical:
            bad = np.argwhere(D_simpy != engine_D[k])[0]
            raise SystemExit(f"departures differ from SimPy: replication {k}, (i, j) = {bad}")
        k += 1
    assert identical
    return Run(
        replications=reps,
        jobs=jobs,
        engine_call="departures" if reps == 1 else "summarize",
        chunk=chunk,
        sampling=sampling,
        engine=engine,
        line_rate=float(np.mean(np.concatenate(rates))),
        simpy_reps=k,
        simpy=simpy_time,
        identical=identical,
    )


def warm_up() -> float:
    """Compile (or load from Numba's cache) both kernels on a tiny line; not timed."""
    t0 = time.perf_counter()
    tiny = np.ones((2, STATIONS, 10))
    departures(tiny, [BUFFER] * (STATIONS - 1))
    summarize(tiny, [BUFFER] * (STATIONS - 1))
    return time.perf_counter() - t0


# --- report -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
        "numba": f"{numba.__version__} ({numba.threading_layer()}, "
        f"{numba.get_num_threads()} threads)",
        "simpy": simpy.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def goals(run: Run, full_size: bool) -> str:
    if run.replications != 1_000 or not full_size:
        return ""
    ratio = run.engine_rate / run.simpy_rate
    met1 = "met" if ratio >= GOAL_RATIO else "**not met**"
    met2 = "met" if run.total < GOAL_SECONDS else "**not met**"
    return (
        f"engine >= {GOAL_RATIO:,}x SimPy: {met1}; "
        f"1,000 x 100,000 jobs < {GOAL_SECONDS:g} s incl. sampling: {met2}"
    )


def table(runs: list[Run], full_size: bool) -> list[str]:
    rows = [
        "| replications x jobs | engine call | sampling s | engine s | total s "
        "| engine jobs/s | incl. sampling jobs/s | SimPy jobs/s (replications run) "
        "| engine / SimPy | incl. sampling / SimPy | goal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        rows.append(
            f"| {r.replications:,} x {r.jobs:,} | `{r.engine_call}` | {r.sampling:.4f} "
            f"| {r.engine:.4f} | {r.total:.4f} | {r.engine_rate:,.0f} | {r.total_rate:,.0f} "
            f"| {r.simpy_rate:,.0f} ({r.simpy_reps}) | {r.engine_rate / r.simpy_rate:,.0f} "
            f"| {r.total_rate / r.simpy_rate:,.0f} | {goals(r, full_size)} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="100,000 jobs, 1,000 replications")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    size = FULL if args.full else SMALL
    print(
        f"line: {STATIONS} stations, buffers of {BUFFER}, blocking after service, saturated, "
        f"exponential process times, mean {MEAN:g} s at every station"
    )
    print(f"warm-up (Numba compile or cache load, excluded from the figures): {warm_up():.2f} s")
    runs = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for reps in size.replications:
            print(f"{reps:,} replications x {size.jobs:,} jobs ...", flush=True)
            run = measure(reps, size.jobs, size.simpy_budget, args.seed, pool)
            runs.append(run)
            print(
                f"  chunks of {run.chunk:,} replications; sampling {run.sampling:.4f} s, "
                f"engine ({run.engine_call}) {run.engine:.4f} s, total {run.total:.4f} s; "
                f"line throughput {run.line_rate:.4f} jobs per simulated second"
            )
            print(
                f"  SimPy on the first {run.simpy_reps} of {reps:,} replications "
                f"(budget {size.simpy_budget:g} s): {run.simpy:.2f} s; "
                f"departures identical: {'yes' if run.identical else 'NO'}"
            )
    print()
    print("\n".join(table(runs, args.full)))
    if not args.full:
        print(
            f"(goals: >= {GOAL_RATIO:,}x SimPy at 1,000 replications, and 1,000 x 100,000 "
            f"jobs in under {GOAL_SECONDS:g} s: measured by --full)"
        )
    print()
    print("  ".join(f"{k}: {v}" for k, v in machine().items()))
    print(f"command: python benchmarks/flowline_vs_simpy.py{' --full' if args.full else ''}")


if __name__ == "__main__":
    main()
