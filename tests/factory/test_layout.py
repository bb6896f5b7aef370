"""Layout files: what a valid one compiles to, and every way one can be wrong, with the
field's path and line; the static refusals (deadlock, overload); calendars; revisions;
routing times from the product."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from liquidfab.errors import LayoutError
from liquidfab.factory import (
    Calendar,
    Deterministic,
    Empirical,
    Exponential,
    Lognormal,
    Triangular,
    Uniform,
    layout_from_data,
    load_layout,
    simulate,
)
from liquidfab.factory.format import CalendarSpec
from liquidfab.factory.model import visit_ratios

ROOT = Path(__file__).resolve().parents[2]
EBIKE = ROOT / "examples" / "ebike"
HEAD = "layout: {id: com.example.line, version: 1.0.0, name: Test line}\n"
D, H = 86400, 3600
WEEK = 7 * D


def layout(body: str):
    return load_layout(HEAD + body)


def refused(body: str) -> LayoutError:
    with pytest.raises(LayoutError) as info:
        load_layout(HEAD + body)
    return info.value


def problem(error: LayoutError, path: str) -> tuple[str, int | None, str]:
    """The one problem at ``path``; fails listing all problems when there is none."""
    found = [p for p in error.problems if p[0] == path]
    assert found, f"no problem at {path!r}: {error.problems}"
    return found[0]


# --- a valid layout -------------------------------------------------------------------


MINIMAL = """\
stations:
  - id: cut
    process: 30
  - id: weld
    buffer: 3
    process: {kind: exponential, mean: 40}
"""


def test_minimal_layout_compiles_with_defaults():
    lay = layout(MINIMAL)
    assert lay.id == "com.example.line"
    assert lay.version == "1.0.0"
    assert lay.name == "Test line"
    assert lay.file == "<text>"
    assert [s.id for s in lay.stations] == ["cut", "weld"]
    assert lay.line == (0, 1)
    cut, weld = lay.stations
    assert cut.buffer == 5 and cut.servers == 1  # the defaults
    assert weld.buffer == 3
    assert cut.next == 1 and weld.next is None
    assert cut.times == (Deterministic(value=30),)
    assert weld.times == (Exponential(mean=40),)
    assert [v.name for v in lay.variants] == ["standard"]
    assert lay.shares.tolist() == [1.0]
    assert lay.calendar is None
    assert lay.interarrival is None
    assert lay.spec.run.jobs == 1000  # a default run always has an end
    assert lay.exact_reason() is None
    assert lay.index("weld") == 1
    assert lay.digest().startswith("sha256:")
    # the same document compiled from data is the same layout
    assert layout_from_data(lay.document()).stations == lay.stations


def test_layout_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "line.yaml"
    path.write_text(HEAD + MINIMAL.replace("buffer: 3", "buffer: -3"))
    with pytest.raises(LayoutError) as info:
        load_layout(path)
    assert info.value.file == str(path)
    _, line, _ = problem(info.value, "stations[1].buffer")
    assert line == 6
    assert f"{path}:6: stations[1].buffer:" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300", Deterministic(value=300)),
        ("12.5", Deterministic(value=12.5)),
        ("0", Deterministic(value=0)),
        ("{kind: deterministic, value: 7}", Deterministic(value=7)),
        ("{kind: exponential, mean: 60}", Exponential(mean=60)),
        ("{kind: lognormal, mean: 60, cv: 0.3}", Lognormal(mean=60, cv=0.3)),
        ("{kind: triangular, low: 10, mode: 20, high: 40}", Triangular(low=10, mode=20, high=40)),
        ("{kind: uniform, low: 10, high: 20}", Uniform(low=10, high=20)),
        ("{kind: empirical, values: [1, 2, 5]}", Empirical(values=[1, 2, 5])),
        (
            "{kind: empirical, values: [1, 2, 5], weights: [1, 0, 3]}",
            Empirical(values=[1, 2, 5], weights=[1, 0, 3]),
        ),
    ],
)
def test_each_distribution_kind(text, expected):
    # a second station that takes time, so a line of zero times alone is not what is read
    lay = layout(f"stations:\n  - id: a\n    process: {text}\n  - {{id: b, process: 1}}\n")
    dist = lay.stations[0].times[0]
    assert dist == expected
    draws = dist.sample(np.random.default_rng(1), 20_000)
    assert draws.dtype == np.float64 and (draws >= 0).all()
    if dist.mean > 0:
        assert draws.mean() == pytest.approx(dist.mean, rel=0.05)
    if dist.variance > 0:
        assert draws.var() == pytest.approx(dist.variance, rel=0.1)


def test_distribution_moments_by_hand():
    assert Lognormal(mean=100, cv=0.5).variance == pytest.approx(2500)
    assert Lognormal(mean=100, cv=0.5).scv == pytest.approx(0.25)
    mu, sigma = Lognormal(mean=100, cv=0.5).params()
    assert math.exp(mu + sigma**2 / 2) == pytest.approx(100)
    assert Triangular(low=0, mode=3, high=6).mean == 3
    assert Triangular(low=0, mode=3, high=6).variance == 1.5  # (0 + 36 + 9 - 18) / 18
    assert Uniform(low=0, high=12).variance == 12
    assert Empirical(values=[1, 3], weights=[3, 1]).mean == 1.5
    assert Exponential(mean=5).scv == 1
    assert Deterministic(value=5).scv == 0


def test_bare_numbers_are_fixed_times_everywhere():
    lay = layout(
        """\
arrivals: {kind: orders, interarrival: 100}
mix: [{name: x}, {name: y}]
stations:
  - id: a
    process: {kind: by-variant, times: {x: 10, y: {kind: exponential, mean: 20}}}
    breakdowns: {mtbf: 5000, mttr: 100}
"""
    )
    a = lay.stations[0]
    assert lay.interarrival == Deterministic(value=100)
    assert a.times == (Deterministic(value=10), Exponential(mean=20))
    assert a.mtbf == Deterministic(value=5000)
    assert a.mttr == Deterministic(value=100)


# --- bad input, with path and line ---------------------------------------------------


BAD = [
    # (id, body, path, line, words in the message)
    (
        "negative time",
        "stations:\n  - id: a\n    process: -1\n",
        "stations[0].process.deterministic.value",
        4,
        "greater than or equal to 0",
    ),
    (
        "negative value",
        "stations:\n  - id: a\n    process: {kind: deterministic, value: -5}\n",
        "stations[0].process.deterministic.value",
        4,
        "greater than or equal to 0",
    ),
    (
        "nan time",
        "stations:\n  - id: a\n    process: .nan\n",
        "stations[0].process.deterministic.value",
        4,
        "finite",
    ),
    (
        "infinite mean",
        "stations:\n  - id: a\n    process: {kind: exponential, mean: .inf}\n",
        "stations[0].process.exponential.mean",
        4,
        "finite",
    ),
    (
        "zero exponential mean",
        "stations:\n  - id: a\n    process: {kind: exponential, mean: 0}\n",
        "stations[0].process.exponential.mean",
        4,
        "greater than 0",
    ),
    (
        "lognormal cv below 0",
        "stations:\n  - id: a\n    buffer: 2\n    process: {kind: lognormal, mean: 5, cv: -0.1}\n",
        "stations[0].process.lognormal.cv",
        5,
        "greater than or equal to 0",
    ),
    (
        "triangular low above high",
        "stations:\n  - id: a\n    process: {kind: triangular, low: 5, mode: 4, high: 3}\n",
        "stations[0].process.triangular",
        4,
        "low <= mode <= high",
    ),
    (
        "empirical weights mismatched",
        "stations:\n  - id: a\n"
        "    process: {kind: empirical, values: [1, 2, 3], weights: [1, 2]}\n",
        "stations[0].process.empirical",
        4,
        "one weight per value",
    ),
    (
        "empirical weights all zero",
        "stations:\n  - id: a\n    process: {kind: empirical, values: [1, 2], weights: [0, 0]}\n",
        "stations[0].process.empirical",
        4,
        "zero",
    ),
    (
        "unknown distribution kind",
        "stations:\n  - id: a\n    process: {kind: gamma, mean: 3}\n",
        "stations[0].process",
        4,
        "gamma",
    ),
    (
        "unknown field in a distribution",
        "stations:\n  - id: a\n    process: {kind: exponential, mean: 3, rate: 2}\n",
        "stations[0].process.exponential.rate",
        4,
        "",
    ),
    (
        "buffer -1",
        "stations:\n  - id: a\n    process: 1\n  - id: b\n    buffer: -1\n    process: 1\n",
        "stations[1].buffer",
        6,
        "buffer holds 0",
    ),
    (
        "servers 0",
        "stations:\n  - id: a\n    servers: 0\n    process: 1\n",
        "stations[0].servers",
        4,
        "greater than or equal to 1",
    ),
    (
        "bad breakdown time",
        "stations:\n  - id: a\n    process: 1\n    breakdowns: {mtbf: -4, mttr: 3}\n",
        "stations[0].breakdowns.mtbf.deterministic.value",
        5,
        "",
    ),
    (
        "unknown inspection target",
        "stations:\n  - id: a\n    process: 1\n    inspection: {yield: 0.9, failed: nowhere}\n",
        "stations[0].inspection.failed",
        5,
        "no station 'nowhere'",
    ),
    (
        "inspection sends to a line station",
        "stations:\n  - id: a\n    process: 1\n  - id: b\n    process: 1\n"
        "    inspection: {yield: 0.9, failed: a}\n",
        "stations[1].inspection.failed",
        7,
        "not a rework station",
    ),
    (
        "yield 0",
        "stations:\n  - id: a\n    process: 1\n    inspection: {yield: 0, failed: scrap}\n",
        "stations[0].inspection.yield",
        5,
        "greater than 0",
    ),
    (
        "unknown returns_to",
        "stations:\n  - id: a\n    process: 1\n  - id: r\n    role: rework\n"
        "    returns_to: nowhere\n    buffer: unbounded\n    process: 1\n",
        "stations[1].returns_to",
        7,
        "no station 'nowhere'",
    ),
    (
        "rework without returns_to",
        "stations:\n  - id: a\n    process: 1\n  - id: r\n    role: rework\n    process: 1\n",
        "stations[1]",
        5,
        "returns_to",
    ),
    (
        "duplicate station ids",
        "stations:\n  - id: a\n    process: 1\n  - id: b\n    process: 1\n"
        "  - id: a\n    process: 2\n",
        "stations[2].id",
        7,
        "'a' appears twice",
    ),
    (
        "duplicate variants",
        "mix: [{name: x}, {name: x}]\nstations:\n  - id: a\n    process: 1\n",
        "mix[1].name",
        2,
        "'x' appears twice",
    ),
    (
        "setup from an unknown variant",
        "mix: [{name: x}, {name: y}]\nstations:\n  - id: a\n    process: 1\n"
        "    setup:\n      default: 5\n      matrix:\n        w: {x: 1}\n",
        "stations[0].setup.matrix.w",
        9,
        "'w' is not a variant",
    ),
    (
        "setup to an unknown variant",
        "mix: [{name: x}, {name: y}]\nstations:\n  - id: a\n    process: 1\n"
        "    setup:\n      matrix:\n        x:\n          z: 3\n",
        "stations[0].setup.matrix.x.z",
        9,
        "'z' is not a variant",
    ),
    (
        "by-variant time missing a variant",
        "mix: [{name: x}, {name: y}]\nstations:\n  - id: a\n"
        "    process: {kind: by-variant, times: {x: 3}}\n",
        "stations[0].process.times",
        5,
        "no time for y",
    ),
    (
        "run with neither jobs nor horizon",
        "stations:\n  - id: a\n    process: 1\nrun:\n  replications: 3\n",
        "run",
        6,
        "give jobs or horizon",
    ),
    (
        "run with jobs and horizon",
        "stations:\n  - id: a\n    process: 1\nrun:\n  jobs: 3\n  horizon: 100\n",
        "run",
        6,
        "not both",
    ),
    (
        "negative warm-up",
        "stations:\n  - id: a\n    process: 1\nrun: {jobs: 30, warmup: -1}\n",
        "run",
        5,
        "warmup",
    ),
    (
        "routing times without a product",
        "stations:\n  - id: a\n    process: {kind: routing}\n",
        "layout.product",
        1,
        "needs its product",
    ),
    (
        "order stream without interarrival",
        "arrivals: {kind: orders}\nstations:\n  - id: a\n    process: 1\n",
        "arrivals",
        2,
        "interarrival",
    ),
    (
        "overlapping shifts",
        "calendar:\n  shifts:\n    - {start: '06:00', end: '14:00'}\n"
        "    - {start: '13:00', end: '20:00'}\nstations:\n  - id: a\n    process: 1\n",
        "calendar",
        3,
        "overlap",
    ),
    (
        "a time of 25:00",
        "calendar:\n  shifts:\n    - {start: '06:00', end: '25:00'}\nstations:\n"
        "  - id: a\n    process: 1\n",
        "calendar.shifts[0]",
        4,
        "'25:00' is not a time of day",
    ),
    (
        "a shift ending before it starts",
        "calendar:\n  shifts:\n    - {start: '22:00', end: '06:00'}\nstations:\n"
        "  - id: a\n    process: 1\n",
        "calendar.shifts[0]",
        4,
        "ends after it starts",
    ),
    (
        "a day listed twice",
        "calendar:\n  days: [mon, mon]\n  shifts:\n    - {start: '06:00', end: '14:00'}\n"
        "stations:\n  - id: a\n    process: 1\n",
        "calendar",
        3,
        "twice",
    ),
    (
        "an unknown field",
        "stations:\n  - id: a\n    process: 1\n    speed: 3\n",
        "stations[0].speed",
        5,
        "",
    ),
]


@pytest.mark.parametrize(
    ("body", "path", "line", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_is_refused_with_path_and_line(body, path, line, words):
    error = refused(body)
    _, got_line, message = problem(error, path)
    assert got_line == line, error.problems
    assert words in message
    assert f"<text>:{line}: {path}: " in str(error)


def test_bad_input_from_data_has_the_path_but_no_line():
    data = {
        "layout": {"id": "com.example.line", "version": "1.0.0", "name": "x"},
        "stations": [{"id": "a", "process": {"kind": "lognormal", "mean": 5, "cv": -1}}],
    }
    with pytest.raises(LayoutError) as info:
        layout_from_data(data)
    assert info.value.problems[0][:2] == ("stations[0].process.lognormal.cv", None)


def test_every_fault_is_reported_at_once():
    error = refused(
        "stations:\n  - id: a\n    servers: 0\n    process: 1\n"
        "  - id: b\n    buffer: -1\n    process: {kind: gamma}\n"
    )
    paths = {p[0] for p in error.problems}
    assert {"stations[0].servers", "stations[1].buffer", "stations[1].process"} <= paths


def test_rework_returning_downstream_of_the_inspecting_station_is_refused():
    error = refused(
        """\
stations:
  - id: a
    process: 3
  - id: b
    process: 3
    inspection: {yield: 0.9, failed: fix}
  - id: c
    process: 3
  - id: fix
    role: rework
    returns_to: c
    buffer: unbounded
    process: 3
"""
    )
    _, line, message = problem(error, "stations[3].returns_to")
    assert line == 12
    assert "return to b or a station before it" in message


def test_rework_returning_to_a_rework_station_is_refused():
    error = refused(
        """\
stations:
  - id: a
    process: 3
    inspection: {yield: 0.9, failed: fix}
  - id: fix
    role: rework
    returns_to: fix2
    buffer: unbounded
    process: 3
  - id: fix2
    role: rework
    returns_to: a
    buffer: unbounded
    process: 3
"""
    )
    assert "rework returns to a line station" in problem(error, "stations[1].returns_to")[2]


def test_warmup_at_least_the_job_count_is_refused_when_simulating():
    lay = layout("stations:\n  - id: a\n    process: 1\nrun: {jobs: 50, warmup: 50}\n")
    with pytest.raises(LayoutError) as info:
        simulate(lay)
    path, _, message = info.value.problems[0]
    assert path == "run.warmup"
    assert "leaves nothing of 50 jobs" in message
    with pytest.raises(LayoutError, match=r"run\.warmup"):
        simulate(lay, jobs=100, warmup=120)


def test_simulate_needs_exactly_one_end():
    lay = layout(MINIMAL)
    with pytest.raises(LayoutError, match="not both"):
        simulate(lay, jobs=10, horizon=100.0)
    with pytest.raises(LayoutError, match=r"run\.jobs"):
        simulate(lay, jobs=0)
    with pytest.raises(LayoutError, match=r"run\.horizon"):
        simulate(lay, horizon=-5.0, engine="des")


# --- static refusals ------------------------------------------------------------------


REWORK_LOOP = """\
stations:
  - id: a
    buffer: {a}
    process: 3
  - id: b
    process: 3
    inspection: {{yield: 0.9, failed: fix}}
  - id: fix
    role: rework
    returns_to: a
    buffer: {fix}
    process: 3
"""


def test_rework_loop_with_only_finite_buffers_is_refused_as_a_deadlock():
    error = refused(REWORK_LOOP.format(a=4, fix=4))
    _, line, message = problem(error, "stations[2].buffer")
    assert line == 12
    assert "a → b → fix → a" in message
    assert "deadlock" in message
    assert "make the rework station's buffer 'unbounded'" in message


@pytest.mark.parametrize(("a", "fix"), [(4, "unbounded"), ("unbounded", 4)])
def test_rework_loop_with_an_unbounded_buffer_passes(a, fix):
    lay = layout(REWORK_LOOP.format(a=a, fix=fix))
    assert lay.stations[2].rework
    assert lay.stations[1].failed_to == 2
    assert lay.stations[2].next == 0


def orders(mean: float, stations: str) -> str:
    return f"arrivals: {{kind: orders, interarrival: {{kind: exponential, mean: {mean}}}}}\n" + (
        "stations:\n" + stations
    )


def test_order_stream_at_utilization_one_is_refused():
    error = refused(orders(10, "  - id: a\n    process: {kind: exponential, mean: 10}\n"))
    _, line, message = problem(error, "stations[0]")
    assert line == 4
    assert "utilization 1.000" in message
    assert "steady state" in message


def test_order_stream_with_no_time_between_orders_is_refused():
    error = refused(
        "arrivals: {kind: orders, interarrival: 0}\nstations:\n  - id: a\n    process: 1\n"
    )
    _, line, message = problem(error, "arrivals.interarrival")
    assert line == 2
    assert "above 0" in message


def test_utilization_counts_parallel_servers():
    # 15 s of work every 10 s: 1.5 for one server, 0.75 for two
    one = "  - id: a\n    servers: 1\n    process: {kind: exponential, mean: 15}\n"
    assert "utilization 1.500" in str(refused(orders(10, one)))
    lay = layout(orders(10, one.replace("servers: 1", "servers: 2")))
    assert lay.stations[0].servers == 2


def test_utilization_counts_availability():
    # two servers at 0.75, but available 2/3 of the time: 1.125
    body = (
        "  - id: a\n    servers: 2\n    process: {kind: exponential, mean: 15}\n"
        "    breakdowns: {mtbf: 100, mttr: 50}\n"
    )
    assert "utilization 1.125" in str(refused(orders(10, body)))
    lay = layout(orders(10, body.replace("mttr: 50", "mttr: 10")))  # 0.75 / (10/11) = 0.825
    assert lay.stations[0].availability() == pytest.approx(100 / 110)


def test_utilization_counts_visits_through_rework():
    # b sees 1 / 0.5 = 2 visits a job: 2 * 8 / 10 = 1.6
    body = (
        "  - id: a\n    process: 5\n  - id: b\n    process: 8\n"
        "    inspection: {yield: 0.5, failed: fix}\n"
        "  - id: fix\n    role: rework\n    returns_to: b\n    buffer: unbounded\n    process: 1\n"
    )
    error = refused(orders(10, body))
    assert "utilization 1.600" in problem(error, "stations[1]")[2]
    lay = layout(orders(10, body.replace("yield: 0.5", "yield: 0.9")))  # 8 / 0.9 / 10 < 1
    assert visit_ratios(lay) == pytest.approx([1.0, 1 / 0.9, 0.1 / 0.9])
    # at yield 0.8 the load is exactly 1: refused too
    assert "utilization 1.000" in str(refused(orders(10, body.replace("yield: 0.5", "yield: 0.8"))))


def test_utilization_counts_the_calendar():
    body = "  - id: a\n    process: {kind: exponential, mean: 5}\n"
    cal = "calendar:\n  shifts: [{start: '06:00', end: '14:00'}]\n"  # 40 of 168 hours
    error = refused(cal + orders(10, body))
    assert f"utilization {0.5 / (40 / 168):.3f}" in str(error)


def test_utilization_counts_setups():
    # 50/50 mix, a 20 s setup on every change (half the jobs): 5 + 10 = 15 s per job
    body = "mix: [{name: x}, {name: y}]\n" + orders(
        16,
        "  - id: a\n    process: 5\n    setup: {default: 20}\n",
    )
    lay = layout(body)
    assert lay.stations[0].mean_time(lay.shares) == pytest.approx(15)
    assert "utilization 1.071" in str(refused(body.replace("mean: 16", "mean: 14")))


def test_visit_ratios_with_rework_to_an_earlier_station():
    lay = layout(REWORK_LOOP.format(a="unbounded", fix=4))
    assert visit_ratios(lay) == pytest.approx([1 / 0.9, 1 / 0.9, 0.1 / 0.9])


# --- calendars ------------------------------------------------------------------------


def two_shifts() -> Calendar:
    spec = CalendarSpec.model_validate(
        {"shifts": [{"start": "06:00", "end": "14:00"}, {"start": "14:00", "end": "22:00"}]}
    )
    return Calendar.from_spec(spec)


def test_calendar_spans_merge_adjacent_shifts():
    cal = two_shifts()
    assert cal.spans == tuple((d * D + 6 * H, d * D + 22 * H) for d in range(5))
    assert cal.share == pytest.approx(80 / 168)


def test_calendar_finish_across_a_night():
    cal = two_shifts()
    # Monday 21:00 + 2 h of work: 1 h on Monday, the other from Tuesday 06:00
    assert cal.finish(21 * H, 2 * H) == D + 7 * H
    # within one shift
    assert cal.finish(D + 8 * H, 3 * H) == D + 11 * H
    # started at night: waits for the morning
    assert cal.finish(D + 2 * H, 30 * 60) == D + 6 * H + 30 * 60
    # exactly to the end of a shift
    assert cal.finish(20 * H, 2 * H) == 22 * H


def test_calendar_finish_across_a_weekend():
    cal = two_shifts()
    # Friday 20:00 + 3 h: 2 h on Friday, 1 h on Monday from 06:00
    assert cal.finish(4 * D + 20 * H, 3 * H) == WEEK + 7 * H
    # Saturday 10:00 + 1 h: Monday 07:00
    assert cal.finish(5 * D + 10 * H, H) == WEEK + 7 * H
    # 100 h from Wednesday 12:00: Wed 10 h, Thu 16, Fri 16 (42), Mon-Wed 48 (90), Thu 10 h
    assert cal.finish(2 * D + 12 * H, 100 * H) == WEEK + 3 * D + 16 * H
    # a whole working week from inside a shift is exactly a week later
    assert cal.finish(D + 10 * H, 80 * H) == WEEK + D + 10 * H
    assert cal.finish(D + 10 * H, 0) == D + 10 * H


def test_calendar_finish_a_whole_working_week_from_the_weekend():
    cal = two_shifts()
    # Saturday 10:00 + 80 h (one working week): done Friday 22:00 of the next week
    assert cal.finish(5 * D + 10 * H, 80 * H) == WEEK + 4 * D + 22 * H


def test_calendar_next_open():
    cal = two_shifts()
    assert cal.next_open(0) == 6 * H
    assert cal.next_open(D + 9 * H) == D + 9 * H
    assert cal.next_open(4 * D + 22 * H) == WEEK + 6 * H
    assert cal.next_open(5 * D) == WEEK + 6 * H
    assert cal.next_open(3 * WEEK + 2 * D + 23 * H) == 3 * WEEK + 3 * D + 6 * H


def test_calendar_in_a_layout():
    lay = layout(
        "calendar:\n  days: [sat, mon]\n  shifts: [{start: '08:00', end: '12:00'}, "
        "{start: '13:00', end: '24:00'}]\nstations:\n  - id: a\n    process: 1\n"
    )
    assert lay.calendar.spans == (
        (8 * H, 12 * H),
        (13 * H, 24 * H),
        (5 * D + 8 * H, 5 * D + 12 * H),
        (5 * D + 13 * H, 6 * D),
    )
    # Monday 11:00 + 2 h: 1 h to noon, the lunch break, then 13:00-14:00
    assert lay.calendar.finish(11 * H, 2 * H) == 14 * H


# --- which engine can run it ------------------------------------------------------------


STATION = "  - id: a\n    process: 3\n  - id: b\n    process: 4\n"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("blocking: before-service\nstations:\n" + STATION, "blocking before service"),
        (
            "calendar:\n  shifts: [{start: '06:00', end: '14:00'}]\nstations:\n" + STATION,
            "a shift calendar",
        ),
        (
            "stations:\n" + STATION.replace("id: b\n", "id: b\n    servers: 3\n"),
            "3 parallel servers at b",
        ),
        (
            "stations:\n" + STATION + "    breakdowns: {mtbf: 1000, mttr: 10}\n",
            "breakdowns at b",
        ),
        (
            "stations:\n" + STATION + "    inspection: {yield: 0.9}\n",
            "inspection at b",
        ),
        (
            "stations:\n  - id: a\n    process: 3\n  - id: r\n    role: rework\n"
            "    returns_to: a\n    buffer: unbounded\n    process: 3\n",
            "rework station r",
        ),
    ],
    ids=["before-service", "calendar", "servers", "breakdowns", "inspection", "rework"],
)
def test_exact_reason_names_each_non_serial_feature(body, reason):
    assert layout(body).exact_reason() == reason


@pytest.mark.parametrize(
    "body",
    [
        "stations:\n" + STATION,
        "mix: [{name: x}, {name: y}]\nstations:\n" + STATION + "    setup: {default: 5}\n",
        orders(20, STATION),
        "stations:\n" + STATION.replace("process: 4", "buffer: unbounded\n    process: 4"),
    ],
    ids=["plain", "setups", "orders", "unbounded"],
)
def test_serial_lines_run_exactly(body):
    assert layout(body).exact_reason() is None


# --- revisions --------------------------------------------------------------------------


LINE3 = """\
stations:
  - id: a
    process: 3
  - id: b
    buffer: 2
    process: 5
  - id: c
    buffer: 2
    process: 4
"""


def test_revised_buffers_as_a_list_and_as_a_mapping():
    base = layout(LINE3)
    as_list = base.revised({"buffers": [1, 7, "unbounded"]})
    assert [s.buffer for s in as_list.stations] == [1, 7, None]
    as_map = base.revised({"buffers": {"c": 0}})
    assert [s.buffer for s in as_map.stations] == [5, 2, 0]
    assert base.stations[2].buffer == 2  # the base is untouched
    assert as_map.digest() != base.digest()
    assert base.revised({}).digest() == base.digest()


def test_revised_servers_and_order():
    base = layout(LINE3)
    more = base.revised({"servers": {"b": 2}})
    assert [s.servers for s in more.stations] == [1, 2, 1]
    assert more.exact_reason() == "2 parallel servers at b"
    swapped = base.revised({"order": ["a", "c", "b"]})
    assert [s.id for s in swapped.stations] == ["a", "c", "b"]
    assert [s.times[0].mean for s in swapped.stations] == [3, 4, 5]
    assert [s.buffer for s in swapped.stations] == [5, 2, 2]


def test_revised_keeps_rework_stations_after_the_line():
    base = layout(
        REWORK_LOOP.format(a="unbounded", fix=4).replace(
            "  - id: fix\n", "  - id: c\n    process: 2\n  - id: fix\n"
        )
    )
    swapped = base.revised({"order": ["a", "c", "b"]})
    assert [s.id for s in swapped.stations] == ["a", "c", "b", "fix"]
    assert swapped.stations[2].failed_to == 3


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"buffers": {"zz": 3}}, "buffers.zz", "no such station"),
        ({"servers": {"zz": 3}}, "servers.zz", "no such station"),
        ({"buffers": [1, 2]}, "buffers", "needs 3 sizes"),
        ({"order": ["a", "b"]}, "order", "every line station exactly once"),
        ({"order": ["a", "b", "zz"]}, "order", "every line station exactly once"),
        ({"order": ["a", "b", "b"]}, "order", "every line station exactly once"),
        ({"buffers": {"b": -1}}, "stations[1].buffer", "buffer holds"),
        ({"servers": {"b": 0}}, "stations[1].servers", "greater than or equal to 1"),
    ],
)
def test_revised_refuses_bad_changes(changes, path, words):
    with pytest.raises(LayoutError) as info:
        layout(LINE3).revised(changes)
    assert problem(info.value, path)[2].find(words) >= 0, info.value.problems


def test_revised_rechecks_static_refusals():
    base = layout(REWORK_LOOP.format(a="unbounded", fix=4))
    with pytest.raises(LayoutError, match="deadlock"):
        base.revised({"buffers": {"a": 3}})
    loaded = layout(
        orders(10, "  - id: a\n    servers: 2\n    process: {kind: exponential, mean: 15}\n")
    )
    with pytest.raises(LayoutError, match=r"utilization 1\.500"):
        loaded.revised({"servers": {"a": 1}})


# --- routing times from the product -------------------------------------------------------


@pytest.fixture(scope="module")
def ebike_line():
    return load_layout(EBIKE / "factory.yaml")


def routing_seconds(product, choices: dict) -> dict[str, float]:
    """Seconds per station of one configuration, completed the way a configurator
    would, then resolved afresh."""
    from liquidfab.product import Configurator, coerce_choices, resolve

    done = Configurator(product).complete(coerce_choices(product, choices))
    assert done.resolved is not None
    resolved = resolve(product, done.resolved.choices)
    per: dict[str, float] = {}
    for op in resolved.operations:
        per[op.station] = per.get(op.station, 0.0) + float(op.seconds)
    return per


def test_routing_times_are_the_product_operations_per_variant(ebike_line):
    lay = ebike_line
    assert lay.product is not None
    assert [v.name for v in lay.variants] == ["city-m", "trail-l", "speed-xl"]
    assert lay.shares == pytest.approx([0.5, 0.3, 0.2])
    for k, variant in enumerate(lay.variants):
        per = routing_seconds(lay.product, variant.choices)
        for st in lay.stations:
            if st.rework:
                continue
            assert st.times[k].mean == pytest.approx(per.get(st.id, 0.0)), (variant.name, st.id)
    # the variants differ: the routing matters
    drive = lay.stations[lay.index("drivetrain")]
    assert len({d.mean for d in drive.times}) > 1
    # cv 0.15 at frame-prep: lognormal spread around the routing mean
    assert lay.stations[0].times[0] == Lognormal(mean=lay.stations[0].times[0].mean, cv=0.15)


def test_routing_times_of_a_complete_configuration_resolve_directly(ebike_line, tmp_path):
    """A variant given with every option chosen goes straight through ``resolve``."""
    import yaml

    from liquidfab.product import Configurator, coerce_choices, resolve

    product = ebike_line.product
    choices = ebike_line.variants[1].choices
    full = Configurator(product).complete(coerce_choices(product, choices)).resolved.choices
    plain = {k: (float(v) if isinstance(v, Fraction) else v) for k, v in full.items()}
    expected: dict[str, float] = {}
    for op in resolve(product, coerce_choices(product, plain)).operations:
        expected[op.station] = expected.get(op.station, 0.0) + float(op.seconds)
    doc = {
        "layout": {"id": "com.example.bikes", "version": "1.0.0", "name": "x"},
        "mix": [{"name": "full", "choices": plain}],
        "stations": [
            {"id": sid, "process": {"kind": "routing"}, "buffer": "unbounded"}
            for sid in product.stations
        ],
    }
    (tmp_path / "line.yaml").write_text(yaml.safe_dump(doc))
    lay = load_layout(tmp_path / "line.yaml", product=product)
    for st in lay.stations:
        assert st.times == (Deterministic(value=expected.get(st.id, 0.0)),)


def test_routing_station_unknown_to_the_product(ebike_line):
    doc = ebike_line.document()
    doc["stations"][0]["process"] = {"kind": "routing", "station": "welding"}
    with pytest.raises(LayoutError) as info:
        layout_from_data(doc, product=ebike_line.product)
    _, _, message = problem(info.value, "stations[0].process.station")
    assert "no station 'welding'" in message


def test_routing_variant_the_product_refuses(ebike_line):
    doc = ebike_line.document()
    doc["mix"][0]["choices"] = {**doc["mix"][0]["choices"], "frame_size": "XXXL"}
    with pytest.raises(LayoutError) as info:
        layout_from_data(doc, product=ebike_line.product)
    assert any(p[0] == "mix[0].choices" for p in info.value.problems), info.value.problems


def test_a_product_file_that_does_not_load(tmp_path):
    (tmp_path / "product.yaml").write_text("product: {id: 3}\n")
    (tmp_path / "line.yaml").write_text(
        "layout: {id: com.example.line, version: 1.0.0, name: x, product: product.yaml}\n"
        "stations:\n  - id: a\n    process: {kind: routing}\n"
    )
    with pytest.raises(LayoutError) as info:
        load_layout(tmp_path / "line.yaml")
    path, line, message = info.value.problems[0]
    assert (path, line) == ("layout.product", 1)
    assert "does not load" in message


# --- what would never reach a steady state is refused before it runs -------------------


@pytest.mark.parametrize(
    ("body", "path", "says"),
    [
        (
            "stations:\n  - {id: a, process: 60}\n"
            "  - {id: b, process: 60, breakdowns: {mtbf: 0.001, mttr: 315000000}}\n",
            "stations[1].breakdowns",
            "available",
        ),
        (
            "calendar: {days: [mon], shifts: [{start: '06:00', end: '06:01'}]}\n"
            "stations: [{id: a, process: 60}]\n",
            "calendar",
            "1 minutes a week",
        ),
        (
            "stations:\n  - {id: a, process: 60}\n"
            "  - {id: b, process: 60, inspection: {yield: 1.0e-9, failed: rw}}\n"
            "  - {id: rw, role: rework, returns_to: b, buffer: unbounded, process: 10}\n",
            "stations[1].inspection",
            "times on average",
        ),
        (
            "stations: [{id: a, process: 0}, {id: b, process: 0}]\n",
            "stations",
            "no station takes any time",
        ),
    ],
    ids=["never-available", "one-minute-a-week", "endless-rework", "no-time"],
)
def test_models_that_never_settle_are_refused(body, path, says):
    _, _, message = problem(refused(body), path)
    assert says in message


def test_a_rework_station_that_inspects_counts_its_own_passes():
    lay = layout(
        "stations:\n  - {id: a, process: 10}\n"
        "  - {id: b, process: 10, inspection: {yield: 0.5, failed: rw}}\n"
        "  - {id: rw, role: rework, returns_to: b, buffer: unbounded, process: 10,"
        " inspection: {yield: 0.5, failed: scrap}}\n"
    )
    a, b, rw = visit_ratios(lay)
    # b: 1 + 0.5 * 0.5 * b  =>  b = 4/3; rw = 0.5 * b = 2/3 (half of rework is scrapped)
    assert (a, b, rw) == pytest.approx((1.0, 4 / 3, 2 / 3))


def test_a_layout_error_survives_pickling():
    import pickle

    error = refused("stations: [{id: a, process: 0}, {id: b, process: 0}]\n")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is LayoutError and again.problems == error.problems
    assert again.file == error.file
