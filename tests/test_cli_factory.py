"""``liquidfab factory``: validate, simulate, compare, sweep and schema, as a user runs them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liquidfab.cli import app
from liquidfab.factory import layout_json_schema

ROOT = Path(__file__).resolve().parents[1]
EBIKE = ROOT / "examples" / "ebike"
runner = CliRunner()

LINE = """\
layout: {id: com.example.line, version: 1.0.0, name: Test line}
stations:
  - {id: saw, process: {kind: exponential, mean: 20}}
  - {id: mill, buffer: 2, process: {kind: exponential, mean: 30}}
  - {id: pack, buffer: 2, process: {kind: exponential, mean: 15}}
run: {jobs: 500, replications: 4}
"""

SWEEP = """\
sweep:
  name: Test sweep
  layout: line.yaml
  run: {jobs: 300, replications: 3, warmup: 30}
variants:
  - name: base
grid:
  buffers: {total: 4, min: 1, stations: [mill, pack]}
"""

PNG = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str):
    return runner.invoke(app, ["factory", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def line(tmp_path) -> Path:
    path = tmp_path / "line.yaml"
    path.write_text(LINE)
    return path


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def assert_pictures(folder: Path, *names: str) -> None:
    for name in names:
        assert (folder / f"{name}.png").read_bytes()[:8] == PNG, name
        root = ET.fromstring((folder / f"{name}.svg").read_bytes())
        assert root.tag.endswith("svg"), name


# --- validate ----------------------------------------------------------------------------


def test_validate_a_good_layout(line):
    result = invoke("validate", line)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "ok com.example.line 1.0.0: 3 stations, 1 variants" in out
    assert "exact (serial line)" in out


def test_validate_names_the_general_engine_and_why():
    result = invoke("validate", EBIKE / "factory.yaml")
    assert result.exit_code == 0, result.output
    assert "general (a shift calendar)" in flat(result.stdout)


def test_validate_a_bad_layout_names_file_line_and_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(LINE.replace("buffer: 2, process: {kind: exponential, mean: 30}", "buffer: -2"))
    result = invoke("validate", bad)
    assert result.exit_code == 1
    assert f"{bad}:4: stations[1].buffer: a buffer holds 0" in result.stderr
    assert "problem" in result.stderr
    assert result.stdout == ""


def test_validate_a_deadlocking_layout(tmp_path):
    bad = tmp_path / "loop.yaml"
    bad.write_text(
        LINE.replace(
            "  - {id: pack,",
            "  - {id: fix, role: rework, returns_to: saw, buffer: 3, process: 5}\n  - {id: pack,",
        ).replace("mean: 30}}", "mean: 30}, inspection: {yield: 0.9, failed: fix}}")
    )
    result = invoke("validate", bad)
    assert result.exit_code == 1
    assert "deadlock" in result.stderr
    assert "stations[2].buffer" in result.stderr


def test_validate_a_missing_file(tmp_path):
    result = invoke("validate", tmp_path / "none.yaml")
    assert result.exit_code == 1
    assert "cannot read the file" in result.stderr


# --- simulate ----------------------------------------------------------------------------


def test_simulate_prints_json(line):
    result = invoke("simulate", line, "--jobs", 300, "--reps", 3, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["engine"] == "exact"
    assert data["jobs"] == 300 and data["replications"] == 3
    assert data["bottleneck"] == "mill"
    assert 0 < data["throughput_per_hour"]["mean"] < 3600 / 30
    assert [s["id"] for s in data["stations"]] == ["saw", "mill", "pack"]


def test_simulate_prints_tables(line):
    result = invoke("simulate", line, "--reps", 2, "--seed", 7)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "exact engine, 2 replications of 500 jobs" in out
    assert "seed 7" in out
    assert "throughput (jobs per hour)" in out
    assert "Bottleneck: mill" in out


def test_simulate_writes_charts(line, tmp_path):
    folder = tmp_path / "charts"
    result = invoke("simulate", line, "--jobs", 300, "--reps", 2, "--charts", folder)
    assert result.exit_code == 0, result.output
    assert_pictures(folder, "states", "gantt", "lead-times")
    assert f"wrote {folder / 'states.png'}" in result.stdout.replace("\n", "")


def test_simulate_refusals(line):
    bad_engine = invoke("simulate", line, "--engine", "fast")
    assert bad_engine.exit_code == 1 and "--engine is auto, exact or des" in bad_engine.stderr
    both = invoke("simulate", line, "--jobs", 10, "--horizon", 100)
    assert both.exit_code == 1 and "not both" in both.stderr
    bad_layout = invoke("simulate", line.parent / "none.yaml")
    assert bad_layout.exit_code == 1 and "cannot read the file" in bad_layout.stderr


def test_simulate_to_a_target_precision(line):
    result = invoke("simulate", line, "--jobs", 300, "--reps", 2, "--target", 0.05, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["target_reached"] is True
    assert data["throughput_per_hour"]["relative_half_width"] <= 0.05
    assert data["replications"] > 2


def test_simulate_the_ebike_example():
    result = invoke("simulate", EBIKE / "factory.yaml", "--jobs", 200, "--reps", 2)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "des engine, 2 replications of 200 jobs" in out
    assert "Bottleneck:" in out
    assert "general engine: a shift calendar" in out


def test_simulate_the_ebike_example_as_json():
    result = invoke("simulate", EBIKE / "factory.yaml", "--jobs", 200, "--reps", 2, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["layout"]["id"] == "com.voltwerk.trail.line-a"
    assert data["completed"] > 0
    assert {s["id"] for s in data["stations"]} == {
        "frame-prep",
        "paint",
        "drivetrain",
        "electrical",
        "final-assembly",
        "test-flash",
        "rework",
    }


# --- compare -----------------------------------------------------------------------------


def test_compare_names_the_better_layout(line, tmp_path):
    faster = tmp_path / "faster.yaml"
    faster.write_text(LINE.replace("mean: 30}", "mean: 22}").replace("Test line", "Faster line"))
    result = invoke("compare", line, faster, "--reps", 5, "--jobs", 400)
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "B (Faster line) is better: throughput +" in text
    assert "paired replications" in text


def test_compare_the_same_layout_finds_no_difference(line):
    result = invoke("compare", line, line, "--reps", 3, "--jobs", 300)
    assert result.exit_code == 0, result.output
    assert "No significant difference" in flat(result.stdout)


def test_compare_as_json(line, tmp_path):
    slower = tmp_path / "slower.yaml"
    slower.write_text(LINE.replace("mean: 30}", "mean: 40}"))
    result = invoke("compare", line, slower, "--reps", 4, "--jobs", 300, "--json", "--kpi", "wip")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kpi"] == "wip"
    assert data["better"] in ("a", "b", None)
    assert data["a"]["replications"] == data["b"]["replications"] == 4
    bad = invoke("compare", line, slower, "--kpi", "speed")
    assert bad.exit_code == 1 and "--kpi" in bad.stderr


# --- sweep -------------------------------------------------------------------------------


def test_sweep_writes_the_table_and_pictures_and_names_the_best(line, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    table = tmp_path / "out" / "table.csv"
    charts = tmp_path / "pictures"
    result = invoke("sweep", sweep, "--workers", 1, "--out", table, "--charts", charts)
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "Test sweep: 4 layouts of com.example.line, on local processes" in text
    assert "Best layout: " in text and "CI" in text
    lines = table.read_text().splitlines()
    assert lines[0].startswith("name,engine,buffers,servers,throughput_mean")
    assert len(lines) == 1 + 4
    best = lines[1].split(",")[0]
    assert f"Best layout: {best} " in text
    assert_pictures(charts, "throughput-by-buffers", "states", "gantt")


def test_sweep_uses_the_output_section(tmp_path):
    (tmp_path / "line.yaml").write_text(LINE)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP + "output: {table: results/sweep.parquet}\n")
    result = invoke("sweep", sweep, "--workers", 1, "--jobs", 200, "--reps", 2)
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "results" / "sweep.parquet").to_pylist()
    assert len(rows) == 4
    assert {r["replications"] for r in rows} == {2}


def test_sweep_with_a_bad_file(tmp_path):
    (tmp_path / "line.yaml").write_text(LINE)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.replace("stations: [mill, pack]", "stations: [mill, lathe]"))
    result = invoke("sweep", sweep, "--workers", 1)
    assert result.exit_code == 1
    assert "grid.buffers.stations: not line stations: lathe" in result.stderr


# --- schema ------------------------------------------------------------------------------


def test_schema_writes_the_layout_schema(tmp_path):
    out = tmp_path / "schemas" / "layout.schema.json"
    result = invoke("schema", "--out", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == layout_json_schema()


def test_the_committed_schema_is_current():
    committed = ROOT / "docs" / "schemas" / "layout.schema.json"
    assert committed.exists(), "run: liquidfab factory schema"
    assert json.loads(committed.read_text()) == layout_json_schema(), (
        "docs/schemas/layout.schema.json is stale: run liquidfab factory schema"
    )
    schema = layout_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://liquidfab.org/schemas/layout.schema.json"


def test_compare_needs_two_replications(line):
    result = invoke("compare", line, line, "--reps", 1)
    assert result.exit_code == 1 and "at least 2 replications" in result.stderr


def test_json_with_one_replication_is_strict_json(line):
    import json

    result = invoke("simulate", line, "--reps", 1, "--json")
    assert result.exit_code == 0, result.output

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    doc = json.loads(result.stdout, parse_constant=refuse)
    assert doc["throughput_per_hour"]["half_width"] is None  # one replication: unknown


def test_cost_prices_a_personalized_unit_and_draws_the_curve(tmp_path):
    chart = tmp_path / "cost.png"
    result = runner.invoke(
        app, ["factory", "cost", str(EBIKE / "factory.yaml"), "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "One changeover costs 19.67 LQD" in result.output
    assert "A personalized unit adds no fixed cost" in result.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    as_json = runner.invoke(app, ["factory", "cost", str(EBIKE / "factory.yaml"), "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output)["currency"] == "LQD"
    bad = runner.invoke(
        app, ["factory", "cost", str(EBIKE / "factory.yaml"), "--line-cost-per-hour", "-5"]
    )
    assert bad.exit_code == 1 and "error" in bad.output
