"""A buffer-allocation sweep: every layout on the exact engine's variants axis at once,
against the same layouts simulated one after another, in one run.

The line: 5 stations in series, exponential and lognormal process times around 60 s,
saturated, blocking after service. The sweep: every allocation of ``total`` buffer
places over the 4 buffers, each at least 1 (``liquidfab.factory.experiment``'s grid).
Both ways use the same engine, the same seed and an explicit warm-up, so every layout's
figures must come out identical (checked, or the run stops); what differs is whether
the layouts share one draw of the random times and one kernel call
(``simulate_buffer_variants``) or each draws and runs alone (``simulate``). The one-by-one
reference runs on a sample of the layouts when all of them would take long, and its
time is scaled to all of them (printed as such).

    python benchmarks/sweep_buffers.py          # 12 places (165 layouts), 10 x 5,000 jobs
    python benchmarks/sweep_buffers.py --full   # 24 places (1,771 layouts), 20 x 10,000 jobs
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime

import numba
import numpy as np

from liquidfab.factory import load_layout, simulate, simulate_buffer_variants
from liquidfab.factory.experiment import allocations

LINE = """
layout: {id: com.example.bench, version: 1.0.0, name: Five-station line}
stations:
  - {id: s1, process: {kind: exponential, mean: 60}}
  - {id: s2, process: {kind: exponential, mean: 60}}
  - {id: s3, process: {kind: lognormal, mean: 62, cv: 0.5}}
  - {id: s4, process: {kind: exponential, mean: 58}}
  - {id: s5, process: {kind: exponential, mean: 61}}
run: {jobs: 1000, replications: 2}
"""
SAMPLE = 60  # layouts the one-by-one reference runs at most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the headline size")
    args = parser.parse_args()
    total, reps, jobs = (24, 20, 10_000) if args.full else (12, 10, 5_000)
    base = load_layout(LINE)
    ids = ["s2", "s3", "s4", "s5"]
    spreads = list(allocations(total, len(ids), 1))
    layouts = [base.revised({"buffers": dict(zip(ids, a, strict=True))}) for a in spreads]
    warm = 100
    started = time.perf_counter()
    simulate_buffer_variants(layouts[:2], jobs=200, replications=2, warmup=10)  # compile
    compile_s = time.perf_counter() - started

    started = time.perf_counter()
    reports = []
    for i in range(0, len(layouts), 32):  # the chunks a sweep task runs
        reports += simulate_buffer_variants(
            layouts[i : i + 32], jobs=jobs, replications=reps, warmup=warm
        )
    together = time.perf_counter() - started

    step = max(1, len(layouts) // SAMPLE)
    sample = list(range(0, len(layouts), step))[:SAMPLE]
    started = time.perf_counter()
    for i in sample:
        alone = simulate(layouts[i], jobs=jobs, replications=reps, warmup=warm, trace_jobs=0)
        if not np.array_equal(alone.values("throughput"), reports[i].values("throughput")):
            raise SystemExit(f"layout {spreads[i]}: figures differ between the two ways")
    one_by_one = (time.perf_counter() - started) / len(sample) * len(layouts)

    best = max(range(len(reports)), key=lambda i: reports[i].throughput.mean)
    jobs_total = len(layouts) * reps * jobs
    print(
        f"line: 5 stations, saturated, blocking after service; {len(layouts):,} allocations "
        f"of {total} places over 4 buffers (each >= 1); {reps} replications x {jobs:,} jobs; "
        f"warm-up {warm} jobs"
    )
    print(f"compile or cache load (excluded): {compile_s:.2f} s")
    print(f"figures identical both ways: yes ({len(sample)} layouts checked)")
    print(f"best allocation: {spreads[best]} at {reports[best].throughput}")
    print()
    print("| way | seconds | layouts/s | jobs/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    note = "" if len(sample) == len(layouts) else f" (timed on {len(sample)}, scaled)"
    print(
        f"| one by one, `simulate`{note} | {one_by_one:.2f} | {len(layouts) / one_by_one:,.0f} "
        f"| {jobs_total / one_by_one:,.0f} | 1.0 |"
    )
    print(
        f"| together, `simulate_buffer_variants` | {together:.2f} | "
        f"{len(layouts) / together:,.0f} | {jobs_total / together:,.0f} | "
        f"{one_by_one / together:.1f} |"
    )
    print()
    print(
        f"cpu: {platform.processor() or platform.machine()}  cores: {os.cpu_count()}  python: "
        f"{platform.python_implementation()} {platform.python_version()}  numpy: "
        f"{np.__version__}  numba: {numba.__version__} ({numba.threading_layer()}, "
        f"{numba.get_num_threads()} threads)  date: {datetime.now(UTC):%Y-%m-%d}"
    )
    print(f"command: python benchmarks/sweep_buffers.py{' --full' if args.full else ''}")


if __name__ == "__main__":
    main()
