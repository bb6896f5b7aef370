"""``simulate``: the engine it picks, KPIs a hand calculation or queueing theory knows,
warm-up, replications until a target precision, determinism, and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liquidfab.errors import LayoutError
from liquidfab.factory import STATES, load_layout, simulate, simulate_buffer_variants

HEAD = "layout: {id: com.example.line, version: 1.0.0, name: Test line}\n"


def layout(body: str):
    return load_layout(HEAD + body)


DETERMINISTIC = """\
stations:
  - {id: a, process: 30}
  - {id: b, process: 45, buffer: 2}
  - {id: c, process: 20, buffer: 2}
run: {jobs: 2000, replications: 3}
"""

RANDOM = """\
stations:
  - {id: a, process: {kind: exponential, mean: 20}}
  - {id: b, process: {kind: lognormal, mean: 50, cv: 0.5}, buffer: 3}
  - {id: c, process: {kind: triangular, low: 10, mode: 20, high: 30}, buffer: 3}
run: {jobs: 3000, replications: 5}
"""

PARALLEL = """\
stations:
  - {id: a, process: {kind: exponential, mean: 20}}
  - {id: b, servers: 2, process: {kind: exponential, mean: 90}, buffer: 4}
  - {id: c, process: {kind: exponential, mean: 20}, buffer: 4}
run: {jobs: 1500, replications: 3}
"""


# --- the engine -----------------------------------------------------------------------


def test_a_serial_line_runs_on_the_exact_engine():
    report = simulate(layout(RANDOM))
    assert report.engine == "exact"
    assert report.notes == []
    assert len(report.replications) == 5
    assert report.jobs == 3000 and report.horizon is None


def test_the_exact_engine_refuses_what_it_cannot_run():
    with pytest.raises(LayoutError, match="2 parallel servers at b"):
        simulate(layout(PARALLEL), engine="exact")
    with pytest.raises(LayoutError, match="horizon"):
        simulate(layout(RANDOM), horizon=3600.0, engine="exact")


def test_parallel_servers_run_on_the_des_engine():
    report = simulate(layout(PARALLEL))
    assert report.engine == "des"
    assert report.notes == ["general engine: 2 parallel servers at b"]
    assert len(report.replications) == 3


def test_a_horizon_runs_on_the_des_engine():
    report = simulate(layout(RANDOM), horizon=20 * 3600.0, replications=2, warmup=20)
    assert report.engine == "des"
    assert report.horizon == 20 * 3600.0 and report.jobs is None
    assert report.throughput.mean == pytest.approx(3600 / 50, rel=0.15)


SETUPS = """\
mix: [{name: x, weight: 2}, {name: y}]
stations:
  - id: a
    process: {kind: by-variant, times: {x: {kind: exponential, mean: 20}, y: 30}}
    setup: {default: 15, matrix: {x: {y: 5}}}
  - {id: b, process: {kind: lognormal, mean: 50, cv: 0.5}, buffer: 3, setup: {default: 7}}
  - {id: c, process: {kind: triangular, low: 10, mode: 20, high: 30}, buffer: 0}
"""

ORDERS = """\
arrivals: {kind: orders, interarrival: {kind: exponential, mean: 60}}
stations:
  - {id: a, process: {kind: exponential, mean: 20}}
  - {id: b, process: {kind: lognormal, mean: 40, cv: 0.5}, buffer: 1}
  - {id: c, process: {kind: exponential, mean: 30}, buffer: 0}
"""


@pytest.mark.parametrize("body", [RANDOM, SETUPS], ids=["plain", "setups"])
def test_both_engines_agree_on_a_serial_line(body):
    lay = layout(body)
    exact = simulate(lay, jobs=800, replications=3, warmup=50, engine="exact")
    des = simulate(lay, jobs=800, replications=3, warmup=50, engine="des")
    assert exact.engine == "exact" and des.engine == "des"
    np.testing.assert_allclose(des.values("throughput"), exact.values("throughput"), rtol=1e-9)
    np.testing.assert_allclose(des.values("lead_time"), exact.values("lead_time"), rtol=1e-9)
    np.testing.assert_allclose(des.values("wip"), exact.values("wip"), rtol=1e-6)
    for e, d in zip(exact.stations(), des.stations(), strict=True):
        assert e.shares["setup"] == pytest.approx(d.shares["setup"], abs=0.01)
        assert e.shares["working"] == pytest.approx(d.shares["working"], abs=0.01)


def test_both_engines_agree_on_an_order_stream_throughput():
    lay = layout(ORDERS)
    exact = simulate(lay, jobs=800, replications=3, warmup=50, engine="exact")
    des = simulate(lay, jobs=800, replications=3, warmup=50, engine="des")
    np.testing.assert_allclose(des.values("throughput"), exact.values("throughput"), rtol=1e-9)


def test_both_engines_agree_on_an_order_stream_lead_time():
    lay = layout(ORDERS)
    exact = simulate(lay, jobs=800, replications=3, warmup=50, engine="exact")
    des = simulate(lay, jobs=800, replications=3, warmup=50, engine="des")
    np.testing.assert_allclose(des.values("lead_time"), exact.values("lead_time"), rtol=1e-9)
    np.testing.assert_allclose(des.values("wip"), exact.values("wip"), rtol=1e-6)


# --- KPIs -------------------------------------------------------------------------------


def test_deterministic_line_throughput_is_one_over_the_slowest_time():
    report = simulate(layout(DETERMINISTIC), warmup=100)
    assert report.throughput.mean == pytest.approx(3600 / 45, rel=1e-12)
    assert report.throughput.half_width == 0
    assert report.values("throughput").tolist() == [report.throughput.mean] * 3
    b = {s.id: s for s in report.stations()}
    assert b["b"].shares["working"] == pytest.approx(1.0)
    assert b["a"].shares["working"] == pytest.approx(30 / 45)
    assert b["a"].shares["blocked"] == pytest.approx(15 / 45)
    assert b["c"].shares["working"] == pytest.approx(20 / 45)
    assert b["c"].shares["starved"] == pytest.approx(25 / 45)
    assert report.bottlenecks()[0].id == "b"


def test_auto_warmup_on_a_deterministic_line_still_gives_the_exact_rate():
    report = simulate(layout(DETERMINISTIC))
    assert report.warmup > 0
    assert report.throughput.mean == pytest.approx(80.0, rel=1e-9)


def test_littles_law_holds():
    report = simulate(layout(RANDOM), jobs=5000, replications=4)
    wip = report.wip.mean
    assert wip == pytest.approx(report.throughput.mean / 3600 * report.lead_time.mean, rel=0.03)
    for r in report.replications:
        assert r.wip == pytest.approx(r.throughput / 3600 * r.lead_time, rel=0.03)


def test_littles_law_holds_on_the_des_engine():
    report = simulate(layout(PARALLEL))
    assert report.wip.mean == pytest.approx(
        report.throughput.mean / 3600 * report.lead_time.mean, rel=0.05
    )


@pytest.mark.parametrize("body", [RANDOM, PARALLEL], ids=["exact", "des"])
def test_state_shares_sum_to_one_per_station(body):
    report = simulate(layout(body))
    for s in report.stations():
        assert set(s.shares) == set(STATES)
        assert sum(s.shares.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(v >= 0 for v in s.shares.values())
        assert 0 <= s.oee <= 1


@pytest.mark.parametrize("body", [RANDOM, PARALLEL], ids=["exact", "des"])
def test_the_slow_station_is_the_bottleneck(body):
    report = simulate(layout(body))
    ranked = report.bottlenecks()
    assert ranked[0].id == "b"
    assert report.to_dict()["bottleneck"] == "b"
    assert report.to_dict()["bottleneck_ranking"][0] == "b"
    # the line runs at about the bottleneck's capacity (50 s, or 90 s over two servers)
    assert report.throughput.mean < 3600 / 45


def test_serial_oee_without_failures():
    report = simulate(layout(RANDOM))
    for s in report.stations():
        assert s.availability == 1.0
        assert s.quality == 1.0
        assert s.performance == pytest.approx(s.shares["working"])


def test_setup_time_is_its_own_state():
    body = """\
mix: [{name: x}, {name: y}]
stations:
  - {id: a, process: 10, setup: {default: 10}}
  - {id: b, process: 12, buffer: 2}
run: {jobs: 4000, replications: 2, warmup: 100}
"""
    report = simulate(layout(body))
    a = next(s for s in report.stations() if s.id == "a")
    # half the jobs change variant: 5 s of setup per 15 s of a's work
    assert a.shares["setup"] / (a.shares["setup"] + a.shares["working"]) == pytest.approx(
        1 / 3, rel=0.05
    )
    assert report.bottlenecks()[0].id == "a"


# --- warm-up and replications -------------------------------------------------------------


def test_explicit_warmup_is_used_as_given():
    report = simulate(layout(RANDOM), warmup=123)
    assert report.warmup == 123
    assert report.warmup_reliable
    assert all(r.completed == 3000 - 123 for r in report.replications)


def test_auto_warmup_comes_from_mser5():
    report = simulate(layout(RANDOM))
    assert report.warmup % 5 == 0
    assert 0 <= report.warmup <= 1500
    assert report.to_dict()["warmup_jobs"] == report.warmup


def test_target_half_width_adds_replications_until_reached():
    report = simulate(layout(RANDOM), jobs=1000, replications=3, target_half_width=0.01)
    assert report.target_reached is True
    assert len(report.replications) > 3
    assert report.throughput.relative_half_width <= 0.01
    assert [r.index for r in report.replications] == list(range(len(report.replications)))


def test_target_half_width_stops_at_the_cap():
    report = simulate(
        layout(RANDOM), jobs=500, replications=3, target_half_width=1e-6, max_replications=7
    )
    assert report.target_reached is False
    assert len(report.replications) == 7


def test_progress_is_reported():
    seen: list[tuple[int, int]] = []
    simulate(layout(RANDOM), replications=4, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (4, 4)


# --- determinism --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [RANDOM, PARALLEL], ids=["exact", "des"])
def test_the_same_seed_gives_the_same_report(body):
    a = simulate(layout(body), seed=5).to_dict()
    b = simulate(layout(body), seed=5).to_dict()
    assert a == b
    c = simulate(layout(body), seed=6).to_dict()
    assert c["throughput_per_hour"]["mean"] != a["throughput_per_hour"]["mean"]
    assert c["lead_time_seconds"]["mean"] != a["lead_time_seconds"]["mean"]


def test_replications_do_not_depend_on_how_many_run():
    few = simulate(layout(RANDOM), replications=2, warmup=50)
    more = simulate(layout(RANDOM), replications=5, warmup=50)
    assert few.values("throughput").tolist() == more.values("throughput").tolist()[:2]


# --- the report ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [RANDOM, PARALLEL], ids=["exact", "des"])
def test_report_to_dict_is_json(body):
    report = simulate(layout(body))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["engine"] == report.engine
    assert d["layout"]["id"] == "com.example.line"
    assert d["layout"]["digest"] == report.layout.digest()
    assert d["replications"] == len(report.replications)
    assert d["throughput_per_hour"]["mean"] == report.throughput.mean
    assert {"low", "high", "half_width", "n"} <= set(d["lead_time_seconds"])
    assert [s["id"] for s in d["stations"]] == ["a", "b", "c"]
    assert set(d["lead_time_quantiles"]) == {"0.5", "0.9", "0.95", "0.99"}
    q = d["lead_time_quantiles"]
    assert q["0.5"] <= q["0.9"] <= q["0.99"]
    assert d["completed"] == sum(r.completed for r in report.replications)


def test_gantt_of_the_first_jobs_on_the_exact_engine():
    report = simulate(layout(DETERMINISTIC), trace_jobs=5)
    rows = report.gantt
    working = [r for r in rows if r["state"] == "working"]
    assert {r["station"] for r in rows} == {"a", "b", "c"}
    assert sorted({r["job"] for r in rows}) == [0, 1, 2, 3, 4]
    assert len(working) == 15
    for r in rows:
        assert r["end"] >= r["start"] >= 0
    first_b = next(r for r in working if r["station"] == "b" and r["job"] == 0)
    assert (first_b["start"], first_b["end"]) == (30.0, 75.0)
    longer = simulate(layout(DETERMINISTIC), trace_jobs=12).gantt
    blocked = [r for r in longer if r["state"] == "blocked"]
    assert blocked and {r["station"] for r in blocked} == {"a"}
    assert simulate(layout(DETERMINISTIC), trace_jobs=0).gantt == []


# --- an order stream: M/M/1 -------------------------------------------------------------


MM1 = """\
arrivals: {kind: orders, interarrival: {kind: exponential, mean: 10}}
stations:
  - {id: a, process: {kind: exponential, mean: 6}}
run: {jobs: 20000, replications: 10, warmup: 500}
"""
# lambda = 0.1/s, mu = 1/6 per s: time in system 1 / (mu - lambda) = 15 s, L = 1.5
MM1_W = 1 / (1 / 6 - 1 / 10)


def test_mm1_throughput_is_the_arrival_rate():
    report = simulate(layout(MM1))
    assert report.engine == "exact"
    assert report.throughput.low <= 360 <= report.throughput.high or (
        report.throughput.mean == pytest.approx(360, rel=0.02)
    )


def test_mm1_time_in_system_on_the_exact_engine():
    report = simulate(layout(MM1), engine="exact")
    lead = report.lead_time
    assert lead.low <= MM1_W <= lead.high, lead
    assert report.wip.mean == pytest.approx(1.5, rel=0.1)


def test_mm1_time_in_system_on_the_des_engine():
    report = simulate(layout(MM1), engine="des", jobs=20000, replications=6)
    lead = report.lead_time
    assert lead.low - 0.3 <= MM1_W <= lead.high + 0.3, lead


# --- the general engine's features, by their long-run figures ---------------------------


def station(report, sid: str):
    return next(s for s in report.stations() if s.id == sid)


def test_breakdowns_take_their_share_of_time():
    body = """\
stations:
  - id: a
    process: 10
    breakdowns:
      mtbf: {kind: exponential, mean: 900}
      mttr: {kind: exponential, mean: 100}
run: {jobs: 20000, replications: 3, warmup: 100}
"""
    report = simulate(layout(body))
    assert report.engine == "des"
    a = station(report, "a")
    # up 900 s of operation, down 100 s: 90% of the time working
    assert a.shares["failed"] == pytest.approx(0.1, abs=0.02)
    assert a.availability == pytest.approx(0.9, abs=0.02)
    assert report.throughput.mean == pytest.approx(360 * 0.9, rel=0.03)


def test_a_shift_calendar_pauses_the_line():
    body = """\
calendar: {shifts: [{start: "06:00", end: "22:00"}]}
stations:
  - {id: a, process: 10}
run: {horizon: 604800, replications: 2, warmup: 0}
"""
    report = simulate(layout(body))
    assert report.engine == "des"
    a = station(report, "a")
    # 80 working hours of the week's 168
    assert a.shares["off-shift"] == pytest.approx(88 / 168, abs=1e-6)
    assert a.shares["working"] == pytest.approx(80 / 168, abs=1e-6)
    assert report.throughput.mean == pytest.approx(360 * 80 / 168, rel=1e-6)
    assert a.availability == pytest.approx(1.0)


def test_inspection_scraps_its_share():
    body = """\
stations:
  - {id: a, process: 10, inspection: {yield: 0.8}}
  - {id: b, process: 5}
run: {jobs: 10000, replications: 3, warmup: 100}
"""
    report = simulate(layout(body))
    d = report.to_dict()
    a = station(report, "a")
    assert a.quality == pytest.approx(0.8, abs=0.02)
    assert d["scrapped"] / (d["scrapped"] + d["completed"]) == pytest.approx(0.2, abs=0.02)
    assert report.throughput.mean == pytest.approx(360 * 0.8, rel=0.03)


def test_rework_sends_failed_jobs_round_again():
    body = """\
stations:
  - {id: a, process: 10}
  - {id: b, process: 5, inspection: {yield: 0.8, failed: fix}}
  - {id: fix, role: rework, returns_to: b, buffer: unbounded, process: 20}
run: {jobs: 10000, replications: 3, warmup: 100}
"""
    report = simulate(layout(body))
    d = report.to_dict()
    # 1 / 0.8 visits to b a job: a quarter of the jobs go through rework once more
    assert d["reworked"] / d["completed"] == pytest.approx(0.25, abs=0.03)
    assert d["scrapped"] == 0
    assert station(report, "b").quality == pytest.approx(0.8, abs=0.02)
    assert report.throughput.mean == pytest.approx(360, rel=0.01)  # a stays the bottleneck
    assert report.bottlenecks()[0].id == "a"


def test_blocking_before_service_on_a_deterministic_line():
    report = simulate(layout("blocking: before-service\n" + DETERMINISTIC), warmup=100)
    assert report.engine == "des"
    assert report.notes == ["general engine: blocking before service"]
    assert report.throughput.mean == pytest.approx(3600 / 45, rel=1e-9)


def test_littles_law_with_an_order_stream_on_the_des_engine():
    report = simulate(layout(MM1), engine="des", jobs=10000, replications=4)
    assert report.wip.mean == pytest.approx(
        report.throughput.mean / 3600 * report.lead_time.mean, rel=0.05
    )
    assert report.wip.mean == pytest.approx(1.5, rel=0.15)  # L = rho / (1 - rho)


# --- buffer variants on the exact engine's variants axis -------------------------------


def _buffer_variants():
    base = layout(RANDOM + "mix: [{name: x, weight: 2}, {name: y}]\n")
    return base, [base.revised({"buffers": b}) for b in ([1, 1, 1], [3, 0, 3], [0, 8, 2])]


def test_buffer_variants_in_one_call_equal_one_run_each():
    _, variants = _buffer_variants()
    together = simulate_buffer_variants(variants, warmup=50, replications=4)
    for lay, got in zip(variants, together, strict=True):
        alone = simulate(lay, warmup=50, replications=4, trace_jobs=0)
        assert got.engine == alone.engine == "exact"
        for kpi in ("throughput", "lead_time", "wip"):
            assert np.array_equal(got.values(kpi), alone.values(kpi))
        assert np.array_equal(
            np.array([r.totals for r in got.replications]),
            np.array([r.totals for r in alone.replications]),
        )


def test_buffer_variants_share_the_longest_auto_warmup():
    _, variants = _buffer_variants()
    together = simulate_buffer_variants(variants, replications=3)
    alone = [simulate(lay, replications=3, trace_jobs=0).warmup for lay in variants]
    assert {r.warmup for r in together} == {max(alone)}


def test_buffer_variants_refuse_other_differences_and_other_engines():
    _, variants = _buffer_variants()
    faster = layout(RANDOM.replace("mean: 20}", "mean: 19}", 1))
    with pytest.raises(LayoutError, match="more than buffer sizes"):
        simulate_buffer_variants([variants[0], faster])
    with pytest.raises(LayoutError, match="exact engine"):
        simulate_buffer_variants([layout(PARALLEL)])
    assert simulate_buffer_variants([]) == []


def test_inspection_outcomes_are_independent_across_servers():
    lay = layout(
        "stations:\n  - {id: a, servers: 4, process: {kind: exponential, mean: 40},"
        " inspection: {yield: 0.5}}\n  - {id: b, process: 1, buffer: 4}\n"
        "run: {jobs: 4000, replications: 1, warmup: 0}\n"
    )
    report = simulate(lay, trace_jobs=0)
    share = report.replications[0].scrapped / 4000
    assert 0.46 < share < 0.54  # 4 servers sharing one stream, not 4 copies of it


def test_jobs_finishing_with_the_warmup_belong_to_it():
    lay = layout("stations: [{id: a, servers: 4, process: 60}]\nrun: {jobs: 400, warmup: 2}\n")
    report = simulate(lay, replications=1, trace_jobs=0)
    assert report.throughput.mean <= 4 * 60  # four machines of a minute each, at most


def test_a_run_where_every_job_is_scrapped_says_so():
    lay = layout(
        "stations:\n  - {id: a, process: 10, inspection: {yield: 0.0001}}\n"
        "  - {id: b, process: 10}\nrun: {jobs: 50, replications: 2}\n"
    )
    with pytest.raises(LayoutError, match="no job was completed"):
        simulate(lay)


def test_the_exact_engine_keeps_lead_times_of_every_replication():
    report = simulate(layout(RANDOM), replications=4, warmup=10, trace_jobs=0)
    assert all(r.leads.size == 3000 - 10 for r in report.replications)
