"""Sweeps: the variants a sweep file asks for, refusals before anything runs, running
them locally, in worker processes and on a Dask cluster with identical results, the
ranking and verdict, and the table and pictures."""

from __future__ import annotations

import csv
import math
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from liquidfab.errors import LayoutError
from liquidfab.factory import SweepFile, load_layout, load_sweep, run_sweep
from liquidfab.factory.charts import render_sweep
from liquidfab.factory.experiment import allocation_count, variants_of

LINE = """\
layout: {id: com.example.line, version: 1.0.0, name: Test line}
stations:
  - {id: load, process: {kind: exponential, mean: 20}}
  - {id: mill, buffer: 1, process: {kind: exponential, mean: 24}}
  - {id: drill, buffer: 1, process: {kind: exponential, mean: 22}}
  - {id: pack, buffer: 1, process: {kind: exponential, mean: 18}}
run: {jobs: 1000, replications: 5}
"""

SWEEP = """\
sweep:
  name: Buffers of the test line
  layout: line.yaml
  kpi: throughput
  run: {jobs: 600, replications: 4, warmup: 50}
variants:
  - name: base
  - name: deep
    buffers: {mill: 8, drill: 8, pack: 8}
grid:
  buffers: {total: 3, min: 0, stations: [mill, drill]}
"""


def write(folder: Path, sweep: str = SWEEP, line: str = LINE) -> Path:
    (folder / "line.yaml").write_text(line)
    path = folder / "sweep.yaml"
    path.write_text(sweep)
    return path


def spec(**data) -> SweepFile:
    return SweepFile.model_validate({"sweep": {"name": "s", "layout": "line.yaml"}, **data})


@pytest.fixture(scope="module")
def base():
    return load_layout(LINE)


# --- the variants ------------------------------------------------------------------------


def test_allocation_count_by_hand():
    assert allocation_count(6, 3, 1) == math.comb(5, 2) == 10
    assert allocation_count(3, 2, 0) == 4
    assert allocation_count(2, 3, 1) == 0
    assert allocation_count(0, 3, 0) == 1


def test_a_grid_of_allocations(base):
    out = variants_of(spec(grid={"buffers": {"total": 6, "min": 1}}), base)
    assert len(out) == 10
    for name, changes in out:
        sizes = changes["buffers"]
        assert list(sizes) == ["mill", "drill", "pack"]  # every buffer but the first's
        assert sum(sizes.values()) == 6 and min(sizes.values()) >= 1
        assert name == "b" + "-".join(str(sizes[k]) for k in sizes)
    assert len({n for n, _ in out}) == 10


def test_a_grid_of_allocations_and_servers(base):
    out = variants_of(
        spec(grid={"buffers": {"total": 6, "min": 1}, "servers": {"mill": [1, 2]}}), base
    )
    assert len(out) == 20
    assert {c["servers"]["mill"] for _, c in out} == {1, 2}
    assert "b1-1-4_s2" in {n for n, _ in out}


def test_explicit_variants_come_first_and_grids_combine(base):
    out = variants_of(
        spec(
            variants=[{"name": "base"}, {"name": "two-mills", "servers": {"mill": 2}}],
            grid={
                "buffers": {"sizes": {"mill": [1, 3], "pack": [0, 2]}},
                "order": [["load", "drill", "mill", "pack"]],
            },
        ),
        base,
    )
    names = [n for n, _ in out]
    assert names[:2] == ["base", "two-mills"]
    assert out[0][1] == {}
    assert names[2:] == ["b1-0_o1", "b1-2_o1", "b3-0_o1", "b3-2_o1"]
    assert out[3][1] == {
        "buffers": {"mill": 1, "pack": 2},
        "order": ["load", "drill", "mill", "pack"],
    }


def test_no_variants_means_the_base(base):
    assert variants_of(spec(), base) == [("base", {})]


def test_too_many_allocations_are_refused(base):
    with pytest.raises(LayoutError) as info:
        variants_of(spec(grid={"buffers": {"total": 20}}, limit=100), base)
    path, _, message = info.value.problems[0]
    assert path == "grid"
    assert "231 layouts exceed the limit of 100" in message  # counted, never listed


def test_too_many_layouts_are_refused(base):
    with pytest.raises(LayoutError) as info:
        variants_of(
            spec(
                variants=[{"name": "base"}],
                grid={"buffers": {"total": 6, "min": 1}, "servers": {"mill": [1, 2]}},
                limit=20,
            ),
            base,
        )
    path, _, message = info.value.problems[0]
    assert path == "grid"
    assert "21 layouts exceed the limit of 20" in message


def test_duplicate_names_are_refused(base):
    with pytest.raises(LayoutError, match="names used twice: a"):
        variants_of(spec(variants=[{"name": "a"}, {"name": "a", "servers": {"mill": 2}}]), base)
    with pytest.raises(LayoutError, match="names used twice: b0-3"):
        variants_of(
            spec(
                variants=[{"name": "b0-3"}],
                grid={"buffers": {"total": 3, "stations": ["mill", "drill"]}},
            ),
            base,
        )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"variants": [{"name": "x", "buffers": {"lathe": 3}}]}, "variant x: buffers.lathe"),
        ({"variants": [{"name": "x", "servers": {"lathe": 2}}]}, "variant x: servers.lathe"),
        ({"variants": [{"name": "x", "buffers": [1, 2]}]}, "variant x: buffers"),
        ({"variants": [{"name": "x", "order": ["load", "mill"]}]}, "variant x: order"),
        ({"grid": {"servers": {"lathe": [1, 2]}}}, "variant s1: servers.lathe"),
        ({"grid": {"buffers": {"total": 3, "stations": ["lathe"]}}}, "grid.buffers.stations"),
    ],
)
def test_a_bad_station_in_a_variant_is_refused_before_any_run(tmp_path, data, words):
    doc = yaml.safe_load(SWEEP)
    doc.pop("grid")
    doc.pop("variants")
    doc.update(data)
    path = write(tmp_path, yaml.safe_dump(doc))
    with pytest.raises(LayoutError) as info:
        load_sweep(path)
    assert info.value.file == str(path)
    assert words in str(info.value)


def test_bad_sweep_files_are_refused_with_path_and_line(tmp_path):
    path = write(tmp_path, SWEEP.replace("kpi: throughput", "kpi: speed"))
    with pytest.raises(LayoutError) as info:
        load_sweep(path)
    assert info.value.problems[0][:2] == ("sweep.kpi", 4)
    path = write(tmp_path, SWEEP + "output: {table: results.xlsx}\n")
    with pytest.raises(LayoutError, match=r"\.csv or \.parquet"):
        load_sweep(path)


def test_unknown_run_overrides_are_refused(tmp_path):
    sweep = load_sweep(write(tmp_path))
    with pytest.raises(LayoutError, match="unknown: speed"):
        run_sweep(sweep, workers=1, run={"speed": 3})


# --- running -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def local(sweep_file):
    sweep = load_sweep(sweep_file)
    seen = []
    result = run_sweep(sweep, workers=1, progress=lambda d, t: seen.append((d, t)))
    result.progress_seen = seen
    return result


def essentials(result) -> list[tuple]:
    return [(r["name"], r["values"], r["summary"], r["buffers"]) for r in result.results]


def test_the_sweep_runs_every_variant_in_order(local):
    sweep = local.sweep
    assert [n for n, _ in sweep.variants] == ["base", "deep", "b0-3", "b1-2", "b2-1", "b3-0"]
    assert [r["name"] for r in local.results] == [n for n, _ in sweep.variants]
    assert all(r["engine"] == "exact" for r in local.results)
    assert all(len(r["values"]["throughput"]) == 4 for r in local.results)
    assert local.progress_seen[-1] == (6, 6)
    by = {r["name"]: r for r in local.results}
    assert by["deep"]["buffers"] == 24
    assert by["base"]["buffers"] == 3
    assert by["b0-3"]["summary"]["warmup_jobs"] == 50


def test_ranking_is_by_the_kpi(local):
    ranked = local.ranked()
    means = [r["throughput_mean"] for r in ranked]
    assert means == sorted(means, reverse=True)
    assert local.best()["name"] == "deep"  # the most buffer places
    assert ranked[0]["throughput_low"] <= ranked[0]["throughput_mean"]
    assert ranked[0]["changes"] == "buffers: mill=8 drill=8 pack=8"


def test_common_random_numbers_make_the_deep_buffers_clearly_better(local):
    cmp = local.comparison
    assert cmp is not None and cmp.paired
    assert cmp.better == "a"  # deep beats the runner-up, replication by replication
    deep = next(r for r in local.results if r["name"] == "deep")["values"]["throughput"]
    base = next(r for r in local.results if r["name"] == "base")["values"]["throughput"]
    assert all(d > b for d, b in zip(deep, base, strict=True))


def test_verdict_names_the_best_with_a_confidence_interval(local):
    text = local.verdict()
    assert text.startswith("Best layout: deep (buffers: mill=8 drill=8 pack=8)")
    assert "CI" in text
    assert "jobs/h" in text
    assert "Against the runner-up: deep is better: throughput +" in text
    assert "paired replications" in text


def test_workers_in_processes_give_identical_results(sweep_file, local):
    started = time.perf_counter()
    spawned = run_sweep(load_sweep(sweep_file), workers=2)
    assert time.perf_counter() - started < 60
    assert essentials(spawned) == essentials(local)
    assert [r["name"] for r in spawned.ranked()] == [r["name"] for r in local.ranked()]


def test_run_overrides_apply_to_every_variant(sweep_file):
    result = run_sweep(load_sweep(sweep_file), workers=1, run={"jobs": 200, "replications": 2})
    assert {r["summary"]["jobs"] for r in result.results} == {200}
    assert {r["summary"]["replications"] for r in result.results} == {2}


def test_des_variants_in_a_sweep(tmp_path):
    path = write(
        tmp_path,
        SWEEP.replace(
            "grid:\n  buffers: {total: 3, min: 0, stations: [mill, drill]}\n",
            "grid:\n  servers: {mill: [1, 2]}\n",
        ).replace("jobs: 600, replications: 4", "jobs: 300, replications: 2"),
    )
    result = run_sweep(load_sweep(path), workers=1)
    engines = {r["name"]: r["engine"] for r in result.results}
    assert engines == {"base": "exact", "deep": "exact", "s1": "exact", "s2": "des"}
    by = {r["name"]: r for r in result.results}
    # the same line, the same streams: both engines give the same figures
    assert by["s1"]["values"] == by["base"]["values"]
    assert by["s2"]["servers"] == 5


# --- the table and the pictures -----------------------------------------------------------


def test_write_table_csv(local, tmp_path):
    path = local.write_table(tmp_path / "out" / "table.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [r["name"] for r in local.ranked()]
    assert float(rows[0]["throughput_mean"]) == pytest.approx(local.best()["throughput_mean"])
    assert {"throughput_low", "throughput_high", "lead_time_mean", "wip_mean", "bottleneck"} <= set(
        rows[0]
    )


def test_write_table_parquet(local, tmp_path):
    import pyarrow.parquet as pq

    path = local.write_table(tmp_path / "table.parquet")
    table = pq.read_table(path).to_pylist()
    assert table == local.ranked()


def test_render_sweep_png_and_svg(local):
    rows = local.rows()
    png = render_sweep(rows, kpi="throughput", fmt="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = render_sweep(rows, kpi="lead_time", title="lead", fmt="svg")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    with pytest.raises(LayoutError, match="png or svg"):
        render_sweep(rows, fmt="gif")
    with pytest.raises(LayoutError, match="no results"):
        render_sweep([], fmt="png")


# --- Dask ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield c
    finally:
        c.close()


def test_a_dask_cluster_gives_identical_results(sweep_file, local, cluster):
    started = time.perf_counter()
    seen = []
    remote = run_sweep(
        load_sweep(sweep_file),
        scheduler=cluster.scheduler_address,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert time.perf_counter() - started < 30
    assert essentials(remote) == essentials(local)
    assert remote.verdict() == local.verdict()
    assert seen[-1] == (6, 6)


def test_an_unreachable_scheduler_is_a_layout_error(sweep_file):
    started = time.perf_counter()
    with pytest.raises(LayoutError) as info:
        run_sweep(load_sweep(sweep_file), scheduler="tcp://127.0.0.1:1")
    assert time.perf_counter() - started < 30
    path, _, message = info.value.problems[0]
    assert path == "scheduler"
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in message


@pytest.mark.parametrize("address", ["not-an-address", "tcp://127.0.0.1"])
def test_a_malformed_scheduler_address_is_a_layout_error(sweep_file, address):
    with pytest.raises(LayoutError, match="scheduler"):
        run_sweep(load_sweep(sweep_file), scheduler=address)


# --- the example ---------------------------------------------------------------------------


def test_the_example_sweep_loads():
    folder = Path(__file__).resolve().parents[2] / "examples" / "ebike"
    sweep = load_sweep(folder / "sweep.yaml")
    assert sweep.base.id == "com.voltwerk.trail.line-a"
    assert sweep.variants[0] == ("base", {})
    assert len(sweep.variants) > 10
    assert len({n for n, _ in sweep.variants}) == len(sweep.variants)
    assert sweep.spec.output.table and sweep.spec.output.table.endswith((".csv", ".parquet"))


def test_a_huge_grid_is_refused_by_counting_not_listing(base):
    sizes = list(range(1000))  # 10^9 layouts: listing them would never finish
    grid = {"buffers": {"sizes": {"mill": sizes, "drill": sizes, "pack": sizes}}}
    with pytest.raises(LayoutError) as info:
        variants_of(spec(grid=grid, limit=100), base)
    assert "1,000,000,000 layouts exceed the limit of 100" in info.value.problems[0][2]


def test_a_one_station_line_has_no_buffers_to_allocate():
    one = load_layout(LINE.split("  - {id: mill")[0] + "run: {jobs: 100}\n")
    with pytest.raises(LayoutError, match="no buffers to allocate"):
        variants_of(spec(grid={"buffers": {"total": 3}}), one)
