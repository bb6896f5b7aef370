"""Sweeps: many layout variants of one line, run with common random numbers, ranked.

A sweep file names a base layout and the variants to try: explicit ones, and a grid
over buffer allocations (every way to spread a number of places over the buffers, or
sizes per buffer), parallel servers and station orders. Every variant runs with the
same seed, so replication r of each sees the same work at every station and the
differences between layouts are measured pair by pair. Variants run in local worker
processes, or on a Dask cluster when given a scheduler address: the same task either
way.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from liquidfab.errors import LayoutError, ProductError
from liquidfab.factory.model import Layout, layout_from_data, load_layout
from liquidfab.factory.statistics import Comparison, mean_ci, paired_difference
from liquidfab.product.format import Slug
from liquidfab.product.source import Located, read_source, validation_problems

__all__ = [
    "SweepFile",
    "SweepResult",
    "allocation_count",
    "allocations",
    "load_sweep",
    "run_sweep",
    "variants_of",
]

MAX_VARIANTS = 100_000
_CHUNK = 32  # layouts per task
KPIS = {"throughput": True, "lead_time": False, "wip": False}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepInfo(_Model):
    name: str = Field(min_length=1, max_length=200)
    layout: str = Field(
        min_length=1,
        max_length=500,
        description="The base layout file, relative to the sweep file.",
    )
    kpi: Literal["throughput", "lead_time", "wip"] = "throughput"
    run: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the layout's "
        "run section for every variant: jobs, replications, seed, warmup.",
    )


class VariantChange(_Model):
    name: Slug
    buffers: dict[Slug, int | Literal["unbounded"]] | list[int | Literal["unbounded"]] | None = None
    servers: dict[Slug, Annotated[int, Field(ge=1, le=256)]] | None = None
    order: list[Slug] | None = None


class BufferGrid(_Model):
    """Every allocation of ``total`` places over ``stations`` (each at least ``min``),
    or explicit sizes per station in ``sizes`` (their cartesian product)."""

    total: int | None = Field(None, ge=0, le=100_000)
    min: int = Field(0, ge=0)
    stations: list[Slug] | None = None
    sizes: dict[Slug, list[Annotated[int, Field(ge=0, le=100_000)]]] | None = None

    @model_validator(mode="after")
    def _one(self) -> BufferGrid:
        if (self.total is None) == (self.sizes is None):
            raise ValueError("give total (allocations of a number of places) or sizes")
        return self


class Grid(_Model):
    buffers: BufferGrid | None = None
    servers: dict[Slug, list[Annotated[int, Field(ge=1, le=256)]]] | None = None
    order: list[list[Slug]] | None = None


class OutputSpec(_Model):
    table: str | None = Field(None, description="A .csv or .parquet file for the results.")
    charts: str | None = Field(None, description="A folder for the pictures (PNG and SVG).")

    @model_validator(mode="after")
    def _suffix(self) -> OutputSpec:
        if self.table and not self.table.endswith((".csv", ".parquet")):
            raise ValueError("the table is written as .csv or .parquet")
        return self


class SweepFile(_Model):
    """A sweep: the base layout, the variants to run (explicit and a grid), and where
    the results go."""

    sweep: SweepInfo
    variants: list[VariantChange] = Field(default_factory=list, max_length=10_000)
    grid: Grid | None = None
    limit: int = Field(5000, ge=1, le=MAX_VARIANTS)
    output: OutputSpec = Field(default_factory=OutputSpec)


@dataclass(frozen=True)
class Sweep:
    spec: SweepFile
    base: Layout
    variants: list[tuple[str, dict[str, Any]]]
    folder: Path
    file: str


def load_sweep(path: Path) -> Sweep:
    """Read a sweep file and its base layout, and list every variant it asks for."""
    try:
        located = read_source(Path(path))
    except ProductError as e:
        raise LayoutError(e.problems, e.file) from None
    if not isinstance(located.data, dict):
        raise LayoutError([("", 1, "a sweep file is a mapping of fields")], located.file)
    try:
        spec = SweepFile.model_validate(located.data)
    except ValidationError as e:
        raise LayoutError(validation_problems(e, located), located.file) from None
    folder = Path(path).parent
    base = load_layout(folder / spec.sweep.layout)
    variants = variants_of(spec, base, located)
    return Sweep(spec, base, variants, folder, located.file)


def allocations(total: int, slots: int, least: int) -> Iterator[tuple[int, ...]]:
    """Every way to spread ``total`` places over ``slots`` buffers, each >= ``least``
    (stars and bars), in lexicographic order."""
    free = total - least * slots
    if free < 0:
        return
    for bars in itertools.combinations(range(free + slots - 1), slots - 1):
        parts, prev = [], -1
        for b in (*bars, free + slots - 1):
            parts.append(b - prev - 1 + least)
            prev = b
        yield tuple(parts)


def variants_of(
    spec: SweepFile, base: Layout, located: Located | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Every (name, changes) the sweep asks for, the base first when it is named."""
    out: list[tuple[str, dict[str, Any]]] = []
    file = located.file if located else "<sweep>"
    line_ids = [base.stations[i].id for i in base.line]
    for v in spec.variants:
        changes = {k: getattr(v, k) for k in ("buffers", "servers", "order") if getattr(v, k)}
        out.append((v.name, changes))
    grid = spec.grid
    if grid is not None:
        planned = len(out) + _grid_size(grid, line_ids)  # counted before anything is listed
        if planned > spec.limit:
            raise LayoutError(
                [
                    (
                        "grid",
                        None,
                        f"{planned:,} layouts exceed the limit of "
                        f"{spec.limit:,}; raise limit or narrow the grid",
                    )
                ],
                file,
            )
        axes: list[list[tuple[str, dict[str, Any]]]] = []
        if grid.buffers is not None:
            b = grid.buffers
            if b.sizes is not None:
                keys = list(b.sizes)
                combos = itertools.product(*(b.sizes[k] for k in keys))
                axes.append(
                    [
                        ("b" + "-".join(map(str, c)), {"buffers": dict(zip(keys, c, strict=True))})
                        for c in combos
                    ]
                )
            else:
                which = line_ids[1:] if b.stations is None else b.stations
                if not which:
                    raise LayoutError(
                        [
                            (
                                "grid.buffers",
                                None,
                                "no buffers to allocate: the line "
                                "has one station, or stations is empty",
                            )
                        ],
                        file,
                    )
                bad = [s for s in which if s not in line_ids]
                if bad:
                    raise LayoutError(
                        [("grid.buffers.stations", None, f"not line stations: {', '.join(bad)}")],
                        file,
                    )
                count = allocation_count(b.total, len(which), b.min)
                if count > spec.limit:
                    raise LayoutError(
                        [
                            (
                                "grid.buffers",
                                None,
                                f"{count} allocations exceed the "
                                f"limit of {spec.limit}; raise limit or narrow the grid",
                            )
                        ],
                        file,
                    )
                axes.append(
                    [
                        ("b" + "-".join(map(str, c)), {"buffers": dict(zip(which, c, strict=True))})
                        for c in allocations(b.total, len(which), b.min)
                    ]
                )
        if grid.servers:
            keys = list(grid.servers)
            axes.append(
                [
                    ("s" + "-".join(map(str, c)), {"servers": dict(zip(keys, c, strict=True))})
                    for c in itertools.product(*(grid.servers[k] for k in keys))
                ]
            )
        if grid.order:
            axes.append([(f"o{k + 1}", {"order": list(o)}) for k, o in enumerate(grid.order)])
        total = math.prod(len(a) for a in axes) if axes else 0
        if len(out) + total > spec.limit:
            raise LayoutError(
                [
                    (
                        "grid",
                        None,
                        f"{len(out) + total} layouts exceed the limit of "
                        f"{spec.limit}; raise limit or narrow the grid",
                    )
                ],
                file,
            )
        for combo in itertools.product(*axes) if axes else ():
            name = "_".join(n for n, _ in combo)
            changes: dict[str, Any] = {}
            for _, c in combo:
                changes.update(c)
            out.append((name, changes))
    if not out:
        out.append(("base", {}))
    from collections import Counter

    dupes = sorted(n for n, c in Counter(n for n, _ in out).items() if c > 1)
    if dupes:
        raise LayoutError([("variants", None, f"names used twice: {', '.join(dupes)}")], file)
    for name, changes in out:  # fail before any run, with the variant named
        try:
            base.revised(changes)
        except LayoutError as e:
            raise LayoutError(
                [
                    (f"variant {name}: {p}" if p else f"variant {name}", ln, m)
                    for p, ln, m in e.problems
                ],
                file,
            ) from None
    return out


# ------------------------------------------------------------------------------ running


@lru_cache(maxsize=8)
def _product(document_json: str) -> Any:
    import json

    from liquidfab.product import product_from_data

    return product_from_data(json.loads(document_json))


def run_task(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A group of variants, run where the task lands (a local process or a Dask worker):
    only plain data goes in and out. Variants that differ from each other only in buffer
    sizes of a serial line run together on the exact engine's variants axis."""
    from liquidfab.factory.simulation import simulate, simulate_buffer_variants

    product = _product(task["product"]) if task.get("product") else None
    base = layout_from_data(task["layout"], product=product, file=task["file"])
    layouts = [base.revised(changes) for _, changes in task["variants"]]
    run = dict(task["run"])
    together = (
        len(layouts) > 1
        and run.get("engine", "auto") in ("auto", "exact")
        and run.get("horizon") is None
        and all(lay.exact_reason() is None for lay in layouts)
    )
    if together:
        kwargs = {
            k: run[k] for k in ("jobs", "replications", "seed", "warmup", "confidence") if k in run
        }
        reports = simulate_buffer_variants(layouts, **kwargs)
    else:
        reports = [simulate(lay, trace_jobs=0, **run) for lay in layouts]
    out = []
    for (name, changes), layout, report in zip(task["variants"], layouts, reports, strict=True):
        out.append(
            {
                "name": name,
                "changes": changes,
                "engine": report.engine,
                "summary": report.to_dict(),
                "values": {k: report.values(k).tolist() for k in KPIS},
                "buffers": sum(
                    s.buffer or 0
                    for s in layout.stations
                    if not s.rework and s.index != layout.line[0]
                ),
                "servers": sum(s.servers for s in layout.stations),
            }
        )
    return out


def _groups(variants: list[tuple[str, dict[str, Any]]]) -> list[list[tuple[str, dict[str, Any]]]]:
    """Variants that differ only in buffers go together, in chunks of a fixed size: the
    chunks (and so each chunk's common warm-up) do not depend on how many workers run
    them, so a sweep gives the same figures locally, on two cores or on a cluster."""
    import json

    by_key: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, changes in variants:
        key = json.dumps({k: v for k, v in changes.items() if k != "buffers"}, sort_keys=True)
        by_key.setdefault(key, []).append((name, changes))
    size = _CHUNK
    return [group[i : i + size] for group in by_key.values() for i in range(0, len(group), size)]


def _init_worker() -> None:
    try:
        import numba

        numba.set_num_threads(1)  # one process per core already
    except Exception:  # pragma: no cover - numba missing or threading layer fixed
        pass


@dataclass
class SweepResult:
    """Every variant's figures, ranked by the sweep's KPI."""

    sweep: Sweep
    results: list[dict[str, Any]]
    kpi: str
    seconds: float = 0.0
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def higher_is_better(self) -> bool:
        return KPIS[self.kpi]

    def ranked(self) -> list[dict[str, Any]]:
        key = f"{self.kpi}_mean"
        sign = -1 if self.higher_is_better else 1
        # ties (common random numbers make them exact when a change cannot matter) go to
        # the shorter lead time, then to the layout with fewer buffer places and servers
        return sorted(
            self.rows(),
            key=lambda r: (
                sign * r[key],
                r["lead_time_mean"],
                r["buffers"],
                r["servers"],
                r["name"],
            ),
        )

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for r in self.results:
            s = r["summary"]
            row: dict[str, Any] = {
                "name": r["name"],
                "engine": r["engine"],
                "buffers": r["buffers"],
                "servers": r["servers"],
            }
            for kpi, key in (
                ("throughput", "throughput_per_hour"),
                ("lead_time", "lead_time_seconds"),
                ("wip", "wip"),
            ):
                row[f"{kpi}_mean"] = s[key]["mean"]
                row[f"{kpi}_low"] = s[key]["low"]
                row[f"{kpi}_high"] = s[key]["high"]
            row["bottleneck"] = s["bottleneck"]
            row["replications"] = s["replications"]
            row["warmup_jobs"] = s["warmup_jobs"]
            row["changes"] = _changes_text(r["changes"])
            row["higher_is_better"] = self.higher_is_better
            out.append(row)
        return out

    def best(self) -> dict[str, Any]:
        return self.ranked()[0]

    def ties(self) -> list[str]:
        """Layouts whose KPI equals the best's on every replication: with common random
        numbers that means the change cannot matter here, not that it was not measured."""
        ranked = self.ranked()
        best = self._values(ranked[0]["name"])
        return [r["name"] for r in ranked[1:] if self._values(r["name"]) == best]

    def runner_up(self) -> str | None:
        """The best layout that differs from the best on some replication."""
        tied = set(self.ties())
        for r in self.ranked()[1:]:
            if r["name"] not in tied:
                return r["name"]
        return None

    def compare_best(self) -> Comparison | None:
        """The best against the runner-up, paired replication by replication."""
        other = self.runner_up()
        if other is None:
            return None
        a = self._values(self.best()["name"])
        b = self._values(other)
        if len(a) != len(b) or len(a) < 2:
            return None
        return paired_difference(a, b, higher_is_better=self.higher_is_better)

    def verdict(self) -> str:
        best = self.best()
        est = mean_ci(self._values(best["name"]))
        unit = {"throughput": "jobs/h", "lead_time": "s", "wip": "jobs"}[self.kpi]
        text = (
            f"Best layout: {best['name']} ({best['changes'] or 'the base'}): "
            f"{self.kpi.replace('_', ' ')} {est} {unit}."
        )
        ties = self.ties()
        if ties:
            text += (
                f" {len(ties)} other layout{'s' if len(ties) > 1 else ''} gave the same "
                f"{self.kpi.replace('_', ' ')} on every replication (e.g. {ties[0]}); the best "
                "of them has the shortest lead time, then the fewest buffer places and servers."
            )
        cmp = self.compare_best()
        other = self.runner_up()
        if cmp is not None and other is not None:
            text += " Against the runner-up: " + cmp.sentence(
                best["name"], other, kpi=self.kpi.replace("_", " "), unit=unit
            )
        return text

    def legend(self) -> str:
        """What the generated layout names mean."""
        grid = self.sweep.spec.grid
        if grid is None:
            return ""
        parts = []
        if grid.buffers is not None:
            b = grid.buffers
            which = (
                list(b.sizes)
                if b.sizes
                else (
                    b.stations or [self.sweep.base.stations[i].id for i in self.sweep.base.line[1:]]
                )
            )
            parts.append(f"b<n>-<n>…: buffer places in front of {', '.join(which)}")
        if grid.servers:
            parts.append(f"s<n>-…: servers at {', '.join(grid.servers)}")
        if grid.order:
            parts.append("o<k>: the k-th station order of the grid")
        return "Names: " + "; ".join(parts) if parts else ""

    def _values(self, name: str) -> list[float]:
        return next(r for r in self.results if r["name"] == name)["values"][self.kpi]

    def write_table(self, path: Path) -> Path:
        path = Path(path)
        if path.suffix not in (".csv", ".parquet"):
            raise LayoutError(
                [
                    (
                        "table",
                        None,
                        f"a table is written as .csv or .parquet, "
                        f"not {path.suffix or 'no suffix'!r}",
                    )
                ],
                str(path),
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self.ranked()
        if path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), path)
        else:
            import csv

            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
        return path


def _changes_text(changes: Mapping[str, Any]) -> str:
    parts = []
    for key in ("buffers", "servers"):
        if changes.get(key):
            value = changes[key]
            if isinstance(value, dict):
                value = " ".join(f"{k}={v}" for k, v in value.items())
            else:
                value = " ".join(map(str, value))
            parts.append(f"{key}: {value}")
    if changes.get("order"):
        parts.append("order: " + " > ".join(changes["order"]))
    return "; ".join(parts)


def run_sweep(
    sweep: Sweep,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    run: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run every variant of ``sweep``: in ``workers`` local processes (all cores by
    default), or on the Dask cluster at ``scheduler`` (``tcp://host:port``)."""
    import json
    import time

    overrides = {**sweep.spec.sweep.run, **(run or {})}
    allowed = {"jobs", "horizon", "replications", "seed", "warmup", "engine", "confidence"}
    bad = sorted(set(overrides) - allowed)
    if bad:
        raise LayoutError(
            [("sweep.run", None, f"unknown: {', '.join(bad)} (use {', '.join(sorted(allowed))})")],
            sweep.file,
        )
    product = sweep.base.product
    product_doc = json.dumps(product.document()) if product is not None else None
    count = workers or os.cpu_count() or 1
    tasks = [
        {
            "file": sweep.base.file,
            "variants": group,
            "layout": sweep.base.document(),
            "product": product_doc,
            "run": overrides,
        }
        for group in _groups(sweep.variants)
    ]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    if scheduler:
        results = _on_dask(tasks, scheduler, progress, len(sweep.variants))
    else:
        results = _locally(tasks, count, progress, len(sweep.variants))
    order = {name: k for k, (name, _) in enumerate(sweep.variants)}
    results.sort(key=lambda r: order[r["name"]])
    out = SweepResult(sweep, results, sweep.spec.sweep.kpi, time.perf_counter() - started)
    out.comparison = out.compare_best()
    return out


def _locally(
    tasks: list[dict[str, Any]],
    workers: int,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    if workers == 1 or len(tasks) == 1:
        for task in tasks:
            results.extend(run_task(task))
            if progress:
                progress(len(results), total)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: Numba's thread pool does not survive a fork
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=_init_worker
    ) as pool:
        futures = [pool.submit(run_task, t) for t in tasks]
        try:
            for fut in as_completed(futures):
                results.extend(fut.result())
                if progress:
                    progress(len(results), total)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return results


def _on_dask(
    tasks: list[dict[str, Any]],
    scheduler: str,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> list[dict[str, Any]]:
    import re

    from distributed import Client, as_completed

    if not re.fullmatch(r"tcp://(\[[0-9a-fA-F:]+\]|[^\s/:\[\]]+):\d{1,5}", scheduler):
        raise LayoutError(
            [
                (
                    "scheduler",
                    None,
                    f"{scheduler!r} is not a Dask scheduler address; write tcp://host:port",
                )
            ],
            "--scheduler",
        )
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, ValueError, TimeoutError) as e:
        raise LayoutError(
            [("scheduler", None, f"cannot reach the Dask scheduler at {scheduler}: {e}")],
            "--scheduler",
        ) from e
    results = []
    try:
        futures = client.map(run_task, tasks, pure=False)
        for fut in as_completed(futures):
            results.extend(fut.result())
            if progress:
                progress(len(results), total)
    finally:
        client.close()
    return results


def _grid_size(grid: Grid, line_ids: list[str]) -> int:
    size = 1
    if grid.buffers is not None:
        b = grid.buffers
        if b.sizes is not None:
            size *= math.prod(len(v) for v in b.sizes.values())
        else:
            slots = len(line_ids) - 1 if b.stations is None else len(b.stations)
            size *= allocation_count(b.total or 0, slots, b.min) if slots > 0 else 1
    if grid.servers:
        size *= math.prod(len(v) for v in grid.servers.values())
    if grid.order:
        size *= len(grid.order)
    return size


def allocation_count(total: int, slots: int, least: int = 0) -> int:
    """How many ways ``total`` places spread over ``slots`` buffers, each >= ``least``."""
    free = total - least * slots
    return math.comb(free + slots - 1, slots - 1) if free >= 0 and slots > 0 else 0
