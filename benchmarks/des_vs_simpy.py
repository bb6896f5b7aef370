"""The general discrete-event engine against a hand-written SimPy model, in one run.

The line (a liquidfab layout, below): 5 stations, saturated, blocking after service, a
buffer of 3 places in front of every station after the first; the middle station has 3
parallel servers; stations 1 and 4 break down on the operating clock (exponential time
between failures, lognormal / exponential repairs); exponential and lognormal process
times; no setups, no calendar, no inspection.

The reference is the same line written by hand in plain SimPy, the honest fast way: one
process per server, a ``Store(capacity=3)`` in front of each station, jobs as ints, and
preempt-resume failures by remaining-time-to-failure arithmetic (no interrupts). It reads
the same sampled process times (``Samples``) and draws failures and repairs from the same
per-server streams as the engine, so both should produce the same schedule: the run
checks that every job's completion time is identical (and stops if not), and prints the
throughput of both.

Each is timed best of 3 on the same replication (sampling is done once, before timing,
and not counted). The goal: the engine takes at most 1.5 times SimPy's time (it also
records every departure, a state log for utilization over any window, and WIP).

    python benchmarks/des_vs_simpy.py          # 20,000 jobs
    python benchmarks/des_vs_simpy.py --full   # 200,000 jobs
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from liquidfab.factory import des
from liquidfab.factory.model import Layout, load_layout
from liquidfab.factory.sampling import Samples, draw, stream

GOAL_RATIO = 1.5  # engine time / SimPy time, at most
REPEATS = 3

LAYOUT = """
layout: {id: org.liquidfab.bench.des-line, version: 1.0.0, name: DES benchmark line}
blocking: after-service
arrivals: {kind: saturated}
stations:
  - id: cut
    buffer: 3
    process: {kind: exponential, mean: 10}
    breakdowns:
      mtbf: {kind: exponential, mean: 2000}
      mttr: {kind: lognormal, mean: 100, cv: 0.5}
      clock: operating
  - id: weld
    buffer: 3
    process: {kind: lognormal, mean: 11, cv: 0.5}
  - id: assemble
    servers: 3
    buffer: 3
    process: {kind: lognormal, mean: 30, cv: 0.3}
  - id: paint
    buffer: 3
    process: {kind: exponential, mean: 10.5}
    breakdowns:
      mtbf: {kind: exponential, mean: 3000}
      mttr: {kind: exponential, mean: 150}
      clock: operating
  - id: pack
    buffer: 3
    process: {kind: lognormal, mean: 10, cv: 0.25}
run: {jobs: 20000, seed: 20261124}
"""


# --- the hand-written SimPy model -------------------------------------------------------


def hand_model(layout: Layout, samples: Samples, jobs: int) -> np.ndarray:
    """The line in plain SimPy; returns each job's completion time."""
    env = simpy.Environment()
    stations = layout.stations
    m = len(stations)
    inbox = [simpy.Store(env, capacity=st.buffer) for st in stations]
    times = [samples.process[s][:jobs].tolist() for s in range(m)]
    complete = [math.nan] * jobs
    state = {"released": 0, "done": 0}
    finished = env.event()

    def server(s: int, k: int):
        st = stations[s]
        row = times[s]
        get = inbox[s].get
        put = inbox[s + 1].put if s + 1 < m else None
        ttf = math.inf
        if st.mtbf is not None:
            f_rng = stream(samples.rep, "failure", st.id, extra=k)
            r_rng = stream(samples.rep, "repair", st.id, extra=k)
            ttf = float(st.mtbf.sample(f_rng, 1)[0])
        while True:
            if s == 0:  # saturated: the next job as soon as this machine is free
                job = state["released"]
                if job == jobs:
                    return
                state["released"] = job + 1
            else:
                job = yield get()
            rest = row[job]
            while ttf <= rest:  # fails during this job: work, repair, work on
                yield env.timeout(ttf)
                rest -= ttf
                yield env.timeout(float(st.mttr.sample(r_rng, 1)[0]))
                ttf = float(st.mtbf.sample(f_rng, 1)[0])
            ttf -= rest
            yield env.timeout(rest)
            if put is not None:
                yield put(job)  # blocking after service: wait for room downstream
            else:
                complete[job] = env.now
                state["done"] += 1
                if state["done"] == jobs:
                    finished.succeed()

    for s, st in enumerate(stations):
        for k in range(st.servers):
            env.process(server(s, k))
    env.run(until=finished)
    return np.array(complete)


# --- timing ---------------------------------------------------------------------------


def best_of(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


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
        "simpy": simpy.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="200,000 jobs instead of 20,000")
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    jobs = 200_000 if args.full else 20_000
    layout = load_layout(LAYOUT)
    (samples,) = draw(layout, jobs, seed=args.seed, replications=1)
    print(
        f"{len(layout.stations)} stations, servers "
        f"{[st.servers for st in layout.stations]}, buffers 3, saturated, "
        f"{jobs:,} jobs, best of {REPEATS}",
        flush=True,
    )

    t_hand, hand = best_of(lambda: hand_model(layout, samples, jobs))
    t_des, run = best_of(lambda: des.simulate(layout, samples, jobs=jobs))
    same = bool(np.array_equal(run.complete, hand))
    th_hand = jobs / float(np.nanmax(hand)) * 3600
    th_des = run.throughput() * 3600
    print()
    print("| model | time (s) | jobs/s | throughput (jobs/h) | events |")
    print("|---|---:|---:|---:|---:|")
    print(f"| hand-written SimPy | {t_hand:.3f} | {jobs / t_hand:,.0f} | {th_hand:.4f} | |")
    print(f"| liquidfab des | {t_des:.3f} | {jobs / t_des:,.0f} | {th_des:.4f} | {run.events:,} |")
    ratio = t_des / t_hand
    met = "met" if ratio <= GOAL_RATIO else "**not met**"
    print()
    print(f"ratio engine / SimPy time: {ratio:.2f} (goal at most {GOAL_RATIO}: {met})")
    print(
        "completion times identical job by job: "
        + ("yes" if same else f"NO (max difference {np.nanmax(np.abs(run.complete - hand)):g} s)")
    )
    shares = run.state_shares()
    print(
        "engine state shares (working/setup/failed/blocked/starved/off): "
        + "; ".join(
            f"{st.id} " + "/".join(f"{x:.2f}" for x in row)
            for st, row in zip(layout.stations, shares, strict=True)
        )
    )
    print()
    print("  ".join(f"{k}: {v}" for k, v in machine().items()))
    print(f"command: python benchmarks/des_vs_simpy.py{' --full' if args.full else ''}")
    if not same:
        raise SystemExit("the engine and the hand-written model disagree")


if __name__ == "__main__":
    main()
