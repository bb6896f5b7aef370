"""The discrete-event engine: bit-identical to the exact engine and to plain SimPy on serial
lines, and hand-computed schedules for everything the exact engine cannot run."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import simpy

from liquidfab.errors import LayoutError
from liquidfab.factory import Deterministic, des
from liquidfab.factory.model import Layout, load_layout
from liquidfab.factory.sampling import Samples, draw, exact_times, replication_seeds, stream

ROOT = Path(__file__).resolve().parents[2]
HEAD = "layout: {id: com.example.line, version: 1.0.0, name: test line}\n"
H = 3600.0


def layout(text: str) -> Layout:
    return load_layout(HEAD + text)


def samples_for(lay: Layout, jobs: int, seed: int = 7, rep: int = 0) -> Samples:
    (s,) = draw(lay, jobs, seed=seed, replications=1, start=rep)
    return s


def check_invariants(run: des.DesRun, jobs: int | None = None) -> None:
    """Every server is in exactly one state at every instant; every job is accounted for."""
    totals = run.state_totals()
    assert np.allclose(totals.sum(axis=1), run.servers * run.end_time, rtol=1e-12, atol=1e-6)
    assert (totals >= 0).all()
    shares = run.state_shares()
    assert np.allclose(shares.sum(axis=1), 1.0)
    if jobs is not None:
        assert run.completed + run.scrapped_count == jobs == run.jobs
        assert np.isnan(run.complete[run.scrapped]).all()
        assert not np.isnan(run.complete[~run.scrapped]).any()
    assert run.completed == np.count_nonzero(~np.isnan(run.complete))
    assert run.scrapped_count == int(run.scrapped.sum())
    done = ~np.isnan(run.complete)
    assert (run.complete[done] >= run.release[done]).all()


# --- serial lines: the same schedule as the exact engine, bit for bit ---------------------

SERIAL = """
mix: [{name: a, weight: 2}, {name: b}, {name: c}]
stations:
  - {id: s1, buffer: 0, process: {kind: exponential, mean: 10}}
  - {id: s2, buffer: 2, process: {kind: lognormal, mean: 11, cv: 0.5},
     setup: {default: 3, matrix: {a: {b: 7.25}, c: {a: 0.1}}}}
  - {id: s3, buffer: 0, process: {kind: by-variant, times: {a: {kind: exponential, mean: 9},
     b: 12, c: {kind: uniform, low: 5, high: 15}}}}
  - {id: s4, buffer: 1, process: {kind: exponential, mean: 10.5},
     setup: {matrix: {b: {a: 4}, a: {c: 2}}}}
  - {id: s5, buffer: 3, process: {kind: triangular, low: 2, mode: 9, high: 14}}
"""
ORDERS = "arrivals: {kind: orders, interarrival: {kind: exponential, mean: 16}}\n"


def buffers(lay: Layout) -> list[int]:
    """The exact engine's B[i]: the buffer in front of line station i + 1."""
    return [lay.stations[i].buffer for i in lay.line[1:]]  # type: ignore[misc]


@pytest.mark.parametrize("arrivals", ["", ORDERS], ids=["saturated", "orders"])
@pytest.mark.parametrize("seed", [1, 2])
def test_serial_line_equals_the_exact_engine(arrivals: str, seed: int) -> None:
    flowline = pytest.importorskip("liquidfab.factory.flowline")
    lay = layout(SERIAL + arrivals)
    assert lay.exact_reason() is None
    n = 3000
    s = samples_for(lay, n, seed=seed)
    run = des.simulate(lay, s, jobs=n)
    S, A = exact_times(lay, [s])
    D = flowline.departures(S, buffers(lay), A)[0, 0]
    assert np.array_equal(run.departures[list(lay.line)], D)
    assert np.array_equal(run.complete, D[-1])
    check_invariants(run, n)
    if arrivals:
        assert np.array_equal(run.release, s.arrival[:n])
    else:  # released when station 0 starts the job: max(0, D[0, j-1])
        assert np.array_equal(run.release, np.concatenate([[0.0], D[0, :-1]]))


def test_zero_buffers_everywhere_and_one_station() -> None:
    flowline = pytest.importorskip("liquidfab.factory.flowline")
    for text in (
        "stations:\n"
        + "".join(
            f"  - {{id: s{i}, buffer: 0, process: {{kind: exponential, mean: 1}}}}\n"
            for i in range(4)
        ),
        "stations: [{id: only, process: {kind: lognormal, mean: 5, cv: 1}}]\n",
    ):
        lay = layout(text)
        s = samples_for(lay, 500)
        run = des.simulate(lay, s, jobs=500)
        S, A = exact_times(lay, [s])
        assert np.array_equal(run.departures, flowline.departures(S, buffers(lay), A)[0, 0])


def simpy_serial(S: np.ndarray, buffers: list[int], arrivals: np.ndarray | None) -> np.ndarray:
    """A serial line written in plain SimPy, nothing from liquidfab: one process per
    machine, a ``Store(capacity=B)`` in front of each machine after the first, blocking
    after service (a finished job waits on its machine for room). Departures D [M, N]."""
    M, N = S.shape
    times = S.tolist()
    env = simpy.Environment()
    D = np.full((M, N), np.nan)
    inbox = [simpy.Store(env)] + [simpy.Store(env, capacity=b) for b in buffers]

    def orders():
        for j in range(N):
            yield env.timeout(float(arrivals[j]) - env.now)
            yield inbox[0].put(j)

    def machine(i: int):
        for j in range(N):
            if i > 0 or arrivals is not None:
                job = yield inbox[i].get()
                assert job == j
            yield env.timeout(times[i][j])
            if i < M - 1:
                yield inbox[i + 1].put(j)  # waits, holding the machine, while it is full
            D[i, j] = env.now

    if arrivals is not None:
        env.process(orders())
    for i in range(M):
        env.process(machine(i))
    env.run()
    return D


def test_serial_line_equals_a_plain_simpy_model() -> None:
    lay = layout(SERIAL.replace("buffer: 0", "buffer: 1"))
    n = 2000
    s = samples_for(lay, n, seed=5)
    S, _ = exact_times(lay, [s])
    run = des.simulate(lay, s, jobs=n)
    assert np.array_equal(run.departures, simpy_serial(S[0], buffers(lay), None))
    # an order stream whose arrivals are whole seconds (so now + (a - now) is a exactly)
    lay = layout(
        SERIAL.replace("buffer: 0", "buffer: 1")
        + "arrivals: {kind: orders, interarrival: {kind: empirical, values: [8, 16, 30]}}\n"
    )
    s = samples_for(lay, n, seed=5)
    S, A = exact_times(lay, [s])
    run = des.simulate(lay, s, jobs=n)
    assert np.array_equal(run.departures, simpy_serial(S[0], buffers(lay), A[0]))


def test_horizon_runs_keep_the_schedule_of_a_job_count_run() -> None:
    lay = layout(SERIAL)
    s = samples_for(lay, 200)  # fewer than the horizon needs: the engine draws more
    horizon = 40_000.0
    run = des.simulate(lay, s, horizon=horizon)
    assert run.end_time == horizon
    assert run.jobs > 1000 and s.jobs >= run.jobs
    full = des.simulate(lay, samples_for(lay, run.jobs), jobs=run.jobs)
    done = ~np.isnan(run.complete)
    assert np.array_equal(run.complete[done], full.complete[: run.jobs][done])
    assert (full.complete[~done] > horizon).all()
    assert (run.complete[done] <= horizon).all()
    check_invariants(run)
    assert math.isclose(run.throughput(), done.sum() / horizon)


# --- parallel servers, breakdowns, shifts, inspection, blocking before service -------------


def test_parallel_servers_share_one_queue() -> None:
    lay = layout(
        "stations:\n"
        "  - {id: feed, process: 4}\n"
        "  - {id: twin, servers: 2, buffer: unbounded, process: 10}\n"
    )
    run = des.simulate(lay, samples_for(lay, 6), jobs=6, trace_jobs=6)
    # feed releases a job every 4 s; the two servers take them alternately, 10 s each
    assert run.complete.tolist() == [14, 18, 24, 28, 34, 38]
    assert run.release.tolist() == [0, 4, 8, 12, 16, 20]
    totals = run.state_totals()
    assert totals[1, des.STATES.index("working")] == 60
    assert totals[1, des.STATES.index("starved")] == 4 + 8 + 4
    assert totals[0, des.STATES.index("working")] == 24
    assert totals[0, des.STATES.index("starved")] == 38 - 24
    servers = {(r["job"], r["server"]) for r in run.trace if r["station"] == 1}
    assert servers == {(0, 0), (1, 1), (2, 0), (3, 1), (4, 0), (5, 1)}
    assert run.wip(0, 38) == pytest.approx(sum(run.complete - run.release) / 38)
    check_invariants(run, 6)


def test_operating_clock_failures_count_only_working_time() -> None:
    lay = layout(
        "stations:\n"
        "  - id: press\n"
        "    process: 10\n"
        "    breakdowns: {mtbf: 25, mttr: 5, clock: operating}\n"
    )
    run = des.simulate(lay, samples_for(lay, 5), jobs=5, trace_jobs=5)
    # 25 s of work to a failure: job 2 fails 5 s in (t=25), is repaired by 30 and ends
    # at 35; job 4 ends its work exactly at the next failure (55), repaired by 60
    assert run.complete.tolist() == [10, 20, 35, 45, 60]
    totals = run.state_totals()[0]
    assert totals[des.STATES.index("working")] == 50
    assert totals[des.STATES.index("failed")] == 10
    failed = [(r["job"], r["start"], r["end"]) for r in run.trace if r["state"] == "failed"]
    assert failed == [(2, 25, 30), (4, 55, 60)]


def test_calendar_clock_failures_interrupt_work_and_hold_idle_servers() -> None:
    lay = layout(
        "stations:\n"
        "  - id: press\n"
        "    process: 10\n"
        "    breakdowns: {mtbf: 27, mttr: 5, clock: calendar}\n"
    )
    run = des.simulate(lay, samples_for(lay, 5), jobs=5)
    # failure at 27 interrupts job 2 (started 20, 3 s left) until 32: ends 35; the next
    # failure is due at 59, after the last job
    assert run.complete.tolist() == [10, 20, 35, 45, 55]
    assert run.state_totals()[0, des.STATES.index("failed")] == 5
    # an idle server that fails is down until repaired: the job arriving at 60 waits to 64
    lay = layout(
        "arrivals: {kind: orders, interarrival: 20}\n"
        "stations:\n"
        "  - id: press\n"
        "    process: 5\n"
        "    breakdowns: {mtbf: 27, mttr: 5, clock: calendar}\n"
    )
    run = des.simulate(lay, samples_for(lay, 4), jobs=4)
    assert run.release.tolist() == [20, 40, 60, 80]
    assert run.complete.tolist() == [25, 45, 69, 85]
    totals = run.state_totals()[0]
    assert totals[des.STATES.index("failed")] == 10
    assert totals[des.STATES.index("working")] == 20
    check_invariants(run, 4)


CAL = 'calendar: {days: [mon, tue, wed, thu, fri], shifts: [{start: "06:00", end: "14:00"}]}\n'


def test_work_pauses_overnight_and_resumes_next_shift() -> None:
    lay = layout(CAL + "stations: [{id: kiln, process: 36000}]\n")
    run = des.simulate(lay, samples_for(lay, 2), jobs=2, trace_jobs=2)
    # job 0 starts Monday 06:00, works 8 h to 14:00, the last 2 h on Tuesday 06:00-08:00;
    # job 1 works Tuesday 08:00-14:00 and Wednesday 06:00-10:00
    day = 86400.0
    assert run.release.tolist() == [6 * H, day + 8 * H]
    assert run.complete.tolist() == [day + 8 * H, 2 * day + 10 * H]
    totals = run.state_totals()[0]
    assert totals[des.STATES.index("working")] == 20 * H
    assert totals[des.STATES.index("off-shift")] == run.end_time - 20 * H
    spans = [(r["job"], r["start"], r["end"]) for r in run.trace if r["state"] == "working"]
    assert spans == [
        (0, 6 * H, 14 * H),
        (0, day + 6 * H, day + 8 * H),
        (1, day + 8 * H, day + 14 * H),
        (1, 2 * day + 6 * H, 2 * day + 10 * H),
    ]
    # the weekend: 3 h jobs, 8 working hours a day; job 12 ends Friday 13:00 and job 13
    # works one hour on Friday and two on Monday morning
    lay = layout(CAL + "stations: [{id: kiln, process: 10800}]\n")
    run = des.simulate(lay, samples_for(lay, 14), jobs=14)
    assert run.complete[12] == 4 * day + 13 * H
    assert run.complete[13] == 7 * day + 8 * H
    check_invariants(run, 14)


def test_orders_arrive_off_shift_and_wait_for_it() -> None:
    lay = layout(
        CAL
        + "arrivals: {kind: orders, interarrival: 28800}\n"
        + "stations: [{id: desk, process: 3600}]\n"
    )
    run = des.simulate(lay, samples_for(lay, 4), jobs=4)
    assert run.release.tolist() == [8 * H, 16 * H, 24 * H, 32 * H]
    # Monday 16:00 and Tuesday 00:00 arrivals wait for Tuesday 06:00
    assert run.complete.tolist() == [9 * H, 31 * H, 32 * H, 33 * H]
    totals = run.state_totals()[0]
    assert totals[des.STATES.index("working")] == 4 * H
    check_invariants(run, 4)


def inspections(lay: Layout, s: Samples, station: str, n: int) -> np.ndarray:
    return stream(s.rep, "inspect", station).random(n)


def test_inspection_scraps_the_jobs_that_fail() -> None:
    lay = layout(
        "stations:\n"
        "  - {id: make, process: 3}\n"
        "  - {id: check, process: 2, inspection: {yield: 0.7}}\n"
    )
    n = 400
    s = samples_for(lay, n)
    run = des.simulate(lay, s, jobs=n)
    fail = inspections(lay, s, "check", n) >= 0.7
    assert np.array_equal(run.scrapped, fail)
    assert run.scrapped_count == fail.sum() > 0
    assert run.completed == n - fail.sum()
    assert run.processed.tolist() == [n, n] and run.passed.tolist() == [n, n - fail.sum()]
    # every job still leaves check 3 s apart (the line is paced by make)
    assert np.array_equal(run.departures[1], 3.0 * np.arange(n) + 5.0)
    assert np.array_equal(run.leave, run.departures[1])
    check_invariants(run, n)


REWORK = """
stations:
  - {id: make, process: 10}
  - {id: test, buffer: 2, process: 10, inspection: {yield: 0.5, failed: fix}}
  - {id: fix, role: rework, returns_to: test, buffer: unbounded, process: 30}
"""


def test_rework_sends_failed_jobs_round_the_loop() -> None:
    lay = layout(REWORK)
    # one job: tested until it passes, each failure adds 30 s of rework and a retest
    for rep in range(6):
        s = samples_for(lay, 1, rep=rep)
        run = des.simulate(lay, s, jobs=1)
        u = inspections(lay, s, "test", 50)
        k = int(np.argmax(u < 0.5))  # failures before the first pass
        assert run.reworked == k
        assert run.complete[0] == 10 + 10 * (k + 1) + 30 * k
        assert run.processed.tolist() == [1, k + 1, k] and run.passed.tolist() == [1, 1, k]
    n = 300
    s = samples_for(lay, n)
    run = des.simulate(lay, s, jobs=n)
    check_invariants(run, n)
    assert run.completed == n and run.reworked > 0
    assert run.processed[1] == n + run.reworked and run.processed[2] == run.reworked
    assert run.passed[1] == n


def test_rework_revisits_draw_from_the_rework_stream() -> None:
    lay = layout(REWORK.replace("process: 30", "process: {kind: exponential, mean: 30}"))
    rep = next(r for r in range(50) if _fails(lay, r) == [True, True, False])
    s = samples_for(lay, 1, rep=rep)
    run = des.simulate(lay, s, jobs=1)
    first = s.process[2][0]  # fix, first visit: the sampled time
    redo = float(stream(s.rep, "rework", "fix").exponential(30, 1)[0])  # the repeat
    # make [0, 10], test [10, 20] fails, fix, test (10 s) fails, fix again, test passes
    assert run.reworked == 2
    assert run.departures[2, 0] == 20.0 + first + 10.0 + redo
    assert run.complete[0] == 20.0 + first + 10.0 + redo + 10.0


def _fails(lay: Layout, rep: int) -> list[bool]:
    s = samples_for(lay, 1, rep=rep)
    return (inspections(lay, s, "test", 3) >= 0.5).tolist()


def test_blocking_before_service_reserves_room_first() -> None:
    text = "stations:\n  - {id: a, process: 2}\n  - {id: b, buffer: 0, process: 5}\n"
    after = des.simulate(layout(text), samples_for(layout(text), 3), jobs=3)
    assert after.complete.tolist() == [7, 12, 17]
    assert after.departures[0].tolist() == [2, 7, 12]
    lay = layout("blocking: before-service\n" + text)
    run = des.simulate(lay, samples_for(lay, 3), jobs=3, trace_jobs=3)
    # a starts the next job only once b has room for it: when b's job leaves
    assert run.complete.tolist() == [7, 14, 21]
    assert run.departures[0].tolist() == [2, 9, 16]
    assert run.release.tolist() == [0, 2, 9]
    blocked = [(r["job"], r["start"], r["end"]) for r in run.trace if r["state"] == "blocked"]
    assert blocked == [(1, 2, 7), (2, 9, 14)]
    check_invariants(run, 3)


def test_setups_are_remembered_per_server() -> None:
    lay = layout(
        "mix: [{name: red}, {name: blue}]\n"
        "stations:\n"
        "  - {id: paint, servers: 2, process: 10, setup: {default: 4}}\n"
    )
    s = samples_for(lay, 40)
    run = des.simulate(lay, s, jobs=40, trace_jobs=40)
    last: dict[int, int] = {}
    setups = 0
    for r in sorted(run.trace, key=lambda r: (r["start"], r["state"] != "setup")):
        if r["state"] == "working":
            v = int(s.variant[r["job"]])
            setups += r["server"] in last and last[r["server"]] != v
            last[r["server"]] = v
    assert run.state_totals()[0, des.STATES.index("setup")] == 4 * setups > 0
    check_invariants(run, 40)


RICH = """
mix: [{name: a}, {name: b, weight: 2}]
stations:
  - {id: cut, buffer: 1, process: {kind: exponential, mean: 40},
     breakdowns: {mtbf: {kind: exponential, mean: 900}, mttr: 60, clock: operating}}
  - {id: weld, servers: 3, buffer: 0, process: {kind: lognormal, mean: 110, cv: 0.5},
     breakdowns: {mtbf: {kind: exponential, mean: 1500}, mttr: {kind: exponential, mean: 90},
     clock: calendar}}
  - {id: test, servers: 2, buffer: 2, process: {kind: exponential, mean: 70},
     inspection: {yield: 0.8, failed: fix}}
  - {id: pack, buffer: 0, process: 30, inspection: {yield: 0.95}}
  - {id: fix, role: rework, returns_to: weld, buffer: unbounded,
     process: {kind: exponential, mean: 50}}
"""


@pytest.mark.parametrize("blocking", ["after-service", "before-service"])
@pytest.mark.parametrize("arrivals", ["", "arrivals: {kind: orders, interarrival: 60}\n"])
def test_the_general_kernel_gives_the_fast_kernels_schedule(
    blocking: str, arrivals: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lay = layout(f"blocking: {blocking}\n" + arrivals + RICH)
    fast = des.simulate(lay, samples_for(lay, 400), jobs=400)
    monkeypatch.setattr(des._Sim, "general_only", True)
    general = des.simulate(lay, samples_for(lay, 400), jobs=400)
    assert np.array_equal(fast.departures, general.departures, equal_nan=True)
    assert np.allclose(fast.state_totals(), general.state_totals())
    assert (fast.reworked, fast.scrapped_count) == (general.reworked, general.scrapped_count)
    check_invariants(fast, 400)
    assert fast.reworked > 0 and fast.scrapped_count > 0


@pytest.mark.parametrize("blocking", ["after-service", "before-service"])
def test_everything_at_once_keeps_the_books(blocking: str) -> None:
    lay = layout(
        f"blocking: {blocking}\n" + CAL + "arrivals: {kind: orders, interarrival: 400}\n" + RICH
    )
    s = samples_for(lay, 300)
    run = des.simulate(lay, s, jobs=300, trace_jobs=20)
    check_invariants(run, 300)
    totals = run.state_totals()
    for state in ("working", "failed", "off-shift", "starved"):
        assert totals[:, des.STATES.index(state)].sum() > 0, state
    assert {r["state"] for r in run.trace} >= {"working", "failed"}
    for r in run.trace:
        assert r["end"] >= r["start"]
    horizon = des.simulate(lay, samples_for(lay, 10), horizon=10 * 86400.0)
    check_invariants(horizon)
    assert horizon.end_time == 10 * 86400.0 and horizon.completed > 0


def test_the_example_line_runs_with_everything_on() -> None:
    lay = load_layout(ROOT / "examples" / "ebike" / "factory.yaml")
    assert lay.exact_reason() is not None
    s = samples_for(lay, 300)
    run = des.simulate(lay, s, jobs=300, trace_jobs=10)
    check_invariants(run, 300)
    totals = run.state_totals()
    paint, test = lay.index("paint"), lay.index("test-flash")
    assert totals[paint, des.STATES.index("setup")] > 0
    assert totals[paint, des.STATES.index("failed")] > 0
    assert totals[:, des.STATES.index("off-shift")].min() > 0
    assert run.reworked == run.processed[lay.index("rework")] > 0
    assert run.processed[test] == 300 + run.reworked
    assert {r["state"] for r in run.trace} >= {"working", "setup"}
    again = des.simulate(lay, samples_for(lay, 300), jobs=300)
    assert np.array_equal(again.complete, run.complete)  # deterministic for a seed


def test_window_figures() -> None:
    lay = layout(SERIAL)
    run = des.simulate(lay, samples_for(lay, 500), jobs=500)
    half = run.end_time / 2
    whole = run.state_totals()
    assert np.allclose(run.state_totals(0, half) + run.state_totals(half, run.end_time), whole)
    _, w = run.wip_series()
    assert w.min() >= 0 and w[-1] == 0
    # Little's law holds exactly over the whole run (every job released and done)
    assert run.wip() == pytest.approx(run.lead_times().sum() / run.end_time, rel=1e-9)
    with pytest.raises(ValueError):
        run.state_totals(10, 5)


# --- refusals, stalls and the guards ---------------------------------------------------------


def test_arguments_are_checked() -> None:
    lay = layout(SERIAL)
    s = samples_for(lay, 10)
    with pytest.raises(ValueError, match="exactly one"):
        des.simulate(lay, s)
    with pytest.raises(ValueError, match="exactly one"):
        des.simulate(lay, s, jobs=5, horizon=10.0)
    with pytest.raises(ValueError, match="jobs"):
        des.simulate(lay, s, jobs=0)
    other = layout("stations: [{id: x, process: 1}]\n")
    with pytest.raises(ValueError, match="other stations"):
        des.simulate(other, s, jobs=5)


def deadlocking_layout() -> Layout:
    """A rework loop of zero buffers that load_layout would refuse, forced past the check:
    test holds a failed job waiting for room at fix, while fix holds a reworked job
    waiting for room at test."""
    lay = layout(
        "stations:\n"
        "  - {id: make, process: 1}\n"
        "  - {id: test, buffer: 0, process: 1, inspection: {yield: 0.3, failed: fix}}\n"
        "  - {id: fix, role: rework, returns_to: test, buffer: unbounded, process: 5}\n"
    )
    stations = tuple(
        dataclasses.replace(st, buffer=0) if st.id == "fix" else st for st in lay.stations
    )
    return dataclasses.replace(lay, stations=stations)


def test_a_deadlock_is_reported_not_looped() -> None:
    lay = deadlocking_layout()
    s = samples_for(lay, 1000)
    with pytest.raises(LayoutError, match="deadlocked") as info:
        des.simulate(lay, s, jobs=1000)
    text = str(info.value)
    assert "fix" in text and "test" in text
    assert info.value.problems[0][0] == "stations"
    # with a horizon (and so a clock that ticks on) the watchdog finds it
    with pytest.raises(LayoutError, match="deadlocked"):
        des.simulate(lay, s, horizon=1e6)


def test_the_event_budget_stops_a_run() -> None:
    lay = layout(SERIAL)
    with pytest.raises(LayoutError, match="events"):
        des.simulate(lay, samples_for(lay, 1000), jobs=1000, max_events=500)


def test_time_standing_still_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(des, "_STILL", 2000)
    with pytest.raises(LayoutError, match="no station takes any time"):
        layout("stations: [{id: a, process: 0}, {id: b, process: 0}]\n")
    # past the static check (as a layout built in code could be), the engine still stops
    lay = layout("stations: [{id: a, process: 1}, {id: b, process: 1}]\n")
    zero = (Deterministic(value=0),)
    lay = dataclasses.replace(
        lay, stations=tuple(dataclasses.replace(st, times=zero) for st in lay.stations)
    )
    with pytest.raises(LayoutError, match="stands still"):
        des.simulate(lay, samples_for(lay, 10), horizon=100.0)


def test_static_refusals_name_the_path() -> None:
    with pytest.raises(LayoutError, match=r"stations\[2\]\.buffer: .*only finite buffers"):
        layout(REWORK.replace("buffer: unbounded", "buffer: 4"))
    with pytest.raises(LayoutError, match=r"stations\[1\]: utilization 1\.2"):
        layout(
            "arrivals: {kind: orders, interarrival: 10}\n"
            "stations: [{id: a, process: 5}, {id: b, process: 12}]\n"
        )


def test_replications_differ_and_repeat() -> None:
    lay = layout(SERIAL)
    a, b = draw(lay, 200, seed=3, replications=2)
    ra, rb = des.simulate(lay, a, jobs=200), des.simulate(lay, b, jobs=200)
    assert not np.array_equal(ra.complete, rb.complete)
    (a2,) = [Samples(lay, replication_seeds(3, 1)[0])]
    a2.ensure(200)
    assert np.array_equal(des.simulate(lay, a2, jobs=200).complete, ra.complete)
