"""Scheduling and sequencing against published references, in one run.

Job shop (``liquidfab.production.jobshop``): ft06, ft10, abz5 and abz6 from
``../shared/data/jobshop``, each solved by CP-SAT within a time limit; the makespan found
is printed next to the published optimum (55, 930, 1234, 943), with whether CP-SAT proved
it optimal, its lower bound, the seconds it took, and the Giffler-Thompson dispatch
schedule that warm-starts it (the simple rule a shop would use without a solver).

Car sequencing (``liquidfab.production.carseq``): the CSPLib 001 instances of
``../shared/data/carseq-csplib001.txt`` (200 cars, 5 options, all satisfiable), each
sequenced by ``sequence`` (heuristic first, CP-SAT if it is needed); the goal is zero
violations on every instance. The reference is CP-SAT alone on the same instance in the
same run (no hint), its violations and seconds beside.

    python benchmarks/scheduling.py          # ft06 and ft10 (20 s each), 5 instances
    python benchmarks/scheduling.py --full   # the four job shops (60 s), all 40 instances
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import ortools

from liquidfab.production.carseq import parse_csplib, sequence, solve_cp
from liquidfab.production.jobshop import dispatch, parse_jobshop, solve_jobshop
from liquidfab.production.solver import default_workers

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
OPTIMA = {"ft06": 55, "ft10": 930, "abz5": 1234, "abz6": 943}


@dataclass(frozen=True)
class Size:
    shops: tuple[str, ...]
    shop_limit: float  # seconds per job shop
    cars: int | None  # CSPLib instances (None: all)
    car_limit: float  # seconds per instance, for sequence and for CP-SAT alone


SMALL = Size(("ft06", "ft10"), 20.0, 5, 30.0)
FULL = Size(("ft06", "ft10", "abz5", "abz6"), 60.0, None, 60.0)


def jobshop_rows(size: Size, workers: int) -> list[str]:
    rows = [
        "| instance | size | published optimum | makespan found | gap | proven optimal "
        "| lower bound | seconds | dispatch (warm start) |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name in size.shops:
        shop = parse_jobshop((DATA / "jobshop" / f"{name}.txt").read_text())
        warm = max(op.end for op in dispatch(shop))
        print(f"job shop {name}: solving (limit {size.shop_limit:g} s) ...", flush=True)
        s = solve_jobshop(shop, time_limit=size.shop_limit, workers=workers)
        s.validate()
        best = OPTIMA[name]
        gap = (s.makespan - best) / best
        rows.append(
            f"| {name} | {len(shop.jobs)}x{shop.machines} | {best} | {s.makespan} | {gap:.1%} "
            f"| {'yes' if s.status == 'optimal' else 'no (' + s.status + ')'} | {s.bound} "
            f"| {s.seconds:.2f} | {warm} |"
        )
    return rows


def carseq_rows(size: Size, workers: int, seed: int) -> tuple[list[str], list[str]]:
    instances = parse_csplib((DATA / "carseq-csplib001.txt").read_text())
    if size.cars is not None:
        instances = instances[: size.cars]
    rows = [
        "| instance | classes | violations | method | seconds | CP-SAT alone: violations "
        "| CP-SAT alone: seconds |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    ours, alone, zero, cp_zero = [], [], 0, 0
    methods: dict[str, int] = {}
    for name, inst in instances:
        print(f"car sequencing {name} ...", flush=True)
        got = sequence(inst, time_limit=size.car_limit, seed=seed, workers=workers)
        inst.check(got.order)
        ref = solve_cp(inst, time_limit=size.car_limit, workers=workers)
        ours.append(got.seconds)
        alone.append(ref.seconds)
        zero += got.violations == 0
        cp_zero += ref.violations == 0
        methods[got.method] = methods.get(got.method, 0) + 1
        rows.append(
            f"| {name} | {len(inst.counts)} | {got.violations} | {got.method} "
            f"| {got.seconds:.3f} | {ref.violations} | {ref.seconds:.2f} |"
        )
    n = len(instances)
    summary = [
        f"instances with zero violations: {zero} of {n} "
        f"({', '.join(f'{m}: {c}' for m, c in sorted(methods.items()))}); "
        f"CP-SAT alone: {cp_zero} of {n}",
        f"seconds per instance, sequence: median {statistics.median(ours):.3f}, "
        f"max {max(ours):.3f}, total {sum(ours):.2f}; CP-SAT alone: median "
        f"{statistics.median(alone):.2f}, max {max(alone):.2f}, total {sum(alone):.2f} "
        f"(ratio of medians {statistics.median(ours) / statistics.median(alone):.3f})",
    ]
    return rows, summary


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "load (1/5/15 min)": load,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "ortools": ortools.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="all four job shops, all instances")
    parser.add_argument("--seed", type=int, default=0, help="seed of the car heuristic")
    parser.add_argument(
        "--workers", type=int, default=None, help="CP-SAT workers (default: max(8, cores))"
    )
    args = parser.parse_args()
    size = FULL if args.full else SMALL
    workers = args.workers or default_workers()
    info = machine()
    print("  ".join(f"{k}: {v}" for k, v in info.items()))
    started = time.perf_counter()
    shops = jobshop_rows(size, workers)
    cars, summary = carseq_rows(size, workers, args.seed)
    print()
    print(f"Job shop (CP-SAT, {workers} workers, limit {size.shop_limit:g} s each)")
    print()
    print("\n".join(shops))
    print()
    print(f"Car sequencing, CSPLib 001 (limit {size.car_limit:g} s each)")
    print()
    print("\n".join(cars))
    print()
    print("\n".join(summary))
    print()
    wall = time.perf_counter() - started
    print(f"load at the end: {machine()['load (1/5/15 min)']}; wall {wall:.0f} s")
    print(f"command: python benchmarks/scheduling.py{' --full' if args.full else ''}")


if __name__ == "__main__":
    main()
