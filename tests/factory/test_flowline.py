"""The exact flow-line engine against a plain SimPy model and the recursion written out."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from liquidfab.factory.flowline import departures, gantt, lead_times, summarize

# --- references ---------------------------------------------------------------------------


def simpy_line(S: np.ndarray, buffers, arrivals=None) -> np.ndarray:
    """A serial line in plain SimPy: blocking after service, departures D [M, N].

    Between station i and i+1 there is room for ``B[i] + 1`` jobs (the buffer and the
    next machine). SimPy's ``Store`` refuses ``capacity=0``, so that room is a
    ``Container`` of free places, taken by a finished job before it leaves station i
    (the process waits, so the machine stays occupied: blocking after service) and given
    back when the job leaves station i+1; the jobs themselves travel in unbounded stores.
    """
    M, N = S.shape
    env = simpy.Environment()
    D = np.full((M, N), np.nan)
    inbox = [simpy.Store(env) for _ in range(M)]
    places = [simpy.Container(env, capacity=int(b) + 1, init=int(b) + 1) for b in buffers]

    def arrive(j):
        yield env.timeout(float(arrivals[j]))  # from time 0: 0 + A[j] is A[j] exactly
        yield inbox[0].put(j)

    def station(i):
        for j in range(N):
            if i > 0 or arrivals is not None:
                job = yield inbox[i].get()
                assert job == j  # FIFO
            yield env.timeout(float(S[i, j]))
            if i < M - 1:
                yield places[i].get(1)  # wait for room downstream, holding this machine
                yield inbox[i + 1].put(j)
            if i > 0:
                yield places[i - 1].put(1)  # this machine is free again
            D[i, j] = env.now

    if arrivals is not None:
        for j in range(N):
            env.process(arrive(j))
    for i in range(M):
        env.process(station(i))
    env.run()
    return D


def recursion(S: np.ndarray, buffers, arrivals=None) -> np.ndarray:
    """The max-plus recursion in plain Python floats."""
    M, N = S.shape
    s = S.tolist()
    D = [[0.0] * N for _ in range(M)]
    for j in range(N):
        for i in range(M):
            up = D[i - 1][j] if i > 0 else 0.0 if arrivals is None else float(arrivals[j])
            own = D[i][j - 1] if j > 0 else 0.0
            t = max(up, own) + s[i][j]
            if i < M - 1 and j - buffers[i] - 1 >= 0:
                t = max(t, D[i + 1][j - buffers[i] - 1])
            D[i][j] = t
    return np.array(D)


def sample(kind: str, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "exponential":
        return rng.exponential(1.0, shape)
    if kind == "lognormal":
        return rng.lognormal(0.0, 0.6, shape)
    # small integers, zeros included: many events at equal times
    return rng.integers(0, 3, shape).astype(np.float64)


def poisson_arrivals(n: int, rate: float, seed: int, batches: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.exponential(1.0 / rate, n))
    if batches:  # jobs arriving together, in threes
        a = np.repeat(a[::3], 3)[:n]
    return a


BUFFERS = [[0, 0, 0], [1, 2, 0], [3, 3, 3], [0, 5, 1000]]


# --- against SimPy and the recursion --------------------------------------------------------


@pytest.mark.parametrize("kind", ["exponential", "lognormal", "integer"])
@pytest.mark.parametrize("buffers", BUFFERS)
@pytest.mark.parametrize("with_arrivals", [False, True])
def test_identical_to_simpy(kind, buffers, with_arrivals):
    M, N = 4, 150
    S = sample(kind, (M, N), seed=sum(buffers) + len(kind))
    A = poisson_arrivals(N, 0.9, seed=3, batches=kind == "integer") if with_arrivals else None
    if kind == "integer" and with_arrivals:
        A = np.floor(A)  # ties between arrivals and departures too
    want = simpy_line(S, buffers, A)
    got = departures(S[None], buffers, None if A is None else A[None])
    assert got.shape == (1, 1, M, N)
    assert np.array_equal(got[0, 0], want)  # exact, not approximate
    assert np.array_equal(got[0, 0], recursion(S, buffers, A))


def test_all_equal_times_and_zero_times():
    for S in (np.ones((3, 30)), np.zeros((3, 30))):
        for buffers in ([0, 0], [1, 0], [2, 4]):
            assert np.array_equal(departures(S[None], buffers)[0, 0], simpy_line(S, buffers))


def test_one_station_and_unbounded_buffers():
    S = sample("exponential", (1, 40), seed=1)
    assert np.array_equal(departures(S[None], [])[0, 0], np.cumsum(S[0])[None])
    S = sample("exponential", (3, 40), seed=2)
    huge = departures(S[None], [2**62, 2**62])[0, 0]
    assert np.array_equal(huge, departures(S[None], [40, 40])[0, 0])
    assert np.array_equal(huge, recursion(S, [10**9, 10**9]))


# --- vectorization ------------------------------------------------------------------------


def test_layouts_and_replications_equal_one_at_a_time():
    R, M, N = 5, 4, 120
    S = np.stack([sample("lognormal", (M, N), seed=10 + r) for r in range(R)])
    A = np.stack([poisson_arrivals(N, 0.8, seed=20 + r) for r in range(R)])
    buffers = np.array(BUFFERS)
    for arrivals in (None, A):
        D = departures(S, buffers, arrivals)
        summary = summarize(S, buffers, arrivals, warmup=7)
        leads = lead_times(S, buffers, arrivals)
        assert D.shape == (len(BUFFERS), R, M, N)
        for v, b in enumerate(BUFFERS):
            for r in range(R):
                a = None if arrivals is None else arrivals[r : r + 1]
                one = departures(S[r : r + 1], b, a)[0, 0]
                assert np.array_equal(D[v, r], one)
                single = summarize(S[r : r + 1], b, a, warmup=7)
                for name in ("makespan", "throughput", "working", "blocked", "wip_mean"):
                    field, alone = getattr(summary, name), getattr(single, name)
                    assert np.array_equal(field[v, r], alone[0, 0])
                assert np.array_equal(leads[v, r], lead_times(S[r : r + 1], b, a)[0, 0])


def test_shared_arrivals_broadcast():
    S = np.stack([sample("exponential", (3, 50), seed=s) for s in range(3)])
    A = poisson_arrivals(50, 0.7, seed=4)
    assert np.array_equal(departures(S, [1, 1], A), departures(S, [1, 1], np.tile(A, (3, 1))))


# --- summary against NumPy on the departures ---------------------------------------------------


def station_times(S, D, A):
    """working, starved, blocked per job, and each job's entry, from D in NumPy."""
    up = np.empty_like(D)
    up[:, :, 1:] = D[:, :, :-1]
    up[:, :, 0] = 0.0 if A is None else A[None]
    own = np.zeros_like(D)
    own[..., 1:] = D[..., :-1]
    start = np.maximum(up, own)
    work = np.broadcast_to(S[None], D.shape)
    # time in the system starts at the arrival; on a saturated line, at station 0
    entry = start[:, :, 0] if A is None else np.broadcast_to(A[None], start[:, :, 0].shape)
    return work, np.maximum(0.0, up - own), D - (start + work), entry


def wip_by_events(entry, leave, t0, t1):
    """Time-average of jobs in the line over [t0, t1], by sweeping entry/leave events."""
    times = np.concatenate([entry, leave])
    steps = np.concatenate([np.ones_like(entry), -np.ones_like(leave)])
    order = np.argsort(times, kind="stable")
    times, level = times[order], np.cumsum(steps[order])
    edges = np.clip(np.append(times, t1), t0, t1)
    return float(np.sum(level * np.diff(edges)) / (t1 - t0))


@pytest.mark.parametrize("warmup", [0, 1, 25])
@pytest.mark.parametrize("with_arrivals", [False, True])
def test_summary_agrees_with_departures(warmup, with_arrivals):
    R, M, N = 3, 5, 200
    S = np.stack([sample("exponential", (M, N), seed=30 + r) for r in range(R)])
    S[:, 2] *= 1.3  # a bottleneck, so upstream stations block and downstream ones starve
    A = np.stack([poisson_arrivals(N, 0.7, seed=40 + r) for r in range(R)])
    A = A if with_arrivals else None
    buffers = np.array([[0, 1, 2, 0], [3, 3, 3, 3]])
    D = departures(S, buffers, A)
    got = summarize(S, buffers, A, warmup=warmup)
    work, starve, block, entry = station_times(S, D, A)
    w = warmup
    warm = D[:, :, -1, w - 1] if w else np.zeros(D.shape[:2])
    assert np.array_equal(got.makespan, D[:, :, -1, -1])
    assert np.array_equal(got.warm_time, warm)
    close = {"rtol": 1e-12, "atol": 1e-9}
    np.testing.assert_allclose(got.working, work[..., w:].sum(-1), **close)
    np.testing.assert_allclose(got.starved, starve[..., w:].sum(-1), **close)
    np.testing.assert_allclose(got.blocked, block[..., w:].sum(-1), **close)
    before = D[..., w - 1] if w else 0.0
    total = got.working + got.starved + got.blocked
    np.testing.assert_allclose(total, D[..., -1] - before, **close)
    assert (got.blocked[..., :-1].sum() > 0) and (got.starved[..., 3:].sum() > 0)
    assert not got.blocked[..., -1].any()  # the sink never blocks
    if not with_arrivals:
        assert not got.starved[..., 0].any()  # a saturated line's first station never starves
    leads = D[:, :, -1] - entry
    np.testing.assert_allclose(got.throughput, (N - w) / (got.makespan - warm), **close)
    np.testing.assert_allclose(got.lead_time_mean, leads[..., w:].mean(-1), **close)
    np.testing.assert_allclose(lead_times(S, buffers, A), leads, **close)
    for v in range(2):
        for r in range(R):
            want = wip_by_events(entry[v, r, w:], D[v, r, -1, w:], warm[v, r], got.makespan[v, r])
            assert got.wip_mean[v, r] == pytest.approx(want, rel=1e-12)
    if w == 0:  # Little's law holds exactly over the whole run
        np.testing.assert_allclose(got.wip_mean, leads.sum(-1) / got.makespan, **close)


def test_gantt_rows():
    S = sample("lognormal", (2, 3, 30), seed=5)
    D = departures(S, [0, 1])[0, 0]
    rows = gantt(S, [0, 1], jobs=8)
    assert len(rows) == 3 * 8
    assert set(rows[0]) == {"station", "job", "start", "finish", "departure"}
    for row in rows:
        i, j = row["station"], row["job"]
        assert row["departure"] == D[i, j]
        assert row["finish"] == row["start"] + S[0, i, j]
        assert row["start"] <= row["finish"] <= row["departure"]
    assert len(gantt(S, [0, 1], jobs=100)) == 3 * 30


# --- bad input --------------------------------------------------------------------------------


GOOD_S = np.ones((2, 3, 4))


@pytest.mark.parametrize(
    ("S", "buffers", "arrivals", "match"),
    [
        (np.ones((3, 4)), [0, 0], None, r"S must be float64 \[replications, stations, jobs\]"),
        (np.ones((2, 3, 0)), [0, 0], None, "at least one"),
        (np.ones((2, 3, 4), dtype=complex), [0, 0], None, "dtype complex"),
        (-GOOD_S, [0, 0], None, "S must be >= 0"),
        (np.where(np.eye(4, dtype=bool)[:3][None], np.nan, GOOD_S), [0, 0], None, "NaN"),
        (np.full((2, 3, 4), np.inf), [0, 0], None, "finite"),
        (GOOD_S, [0], None, r"buffers must be integers .*got shape \(1,\)"),
        (GOOD_S, [[0, 0, 0]], None, "buffers must be integers"),
        (GOOD_S, [0.5, 1.0], None, "dtype float64"),
        (GOOD_S, [0, -1], None, "buffers must be >= 0"),
        (GOOD_S, [0, 0], np.zeros((2, 5)), r"arrivals must be float64 .*got shape \(2, 5\)"),
        (GOOD_S, [0, 0], np.array([[0.0, 2.0, 1.0, 3.0]] * 2), "non-decreasing"),
        (GOOD_S, [0, 0], np.array([[-1.0, 0.0, 1.0, 3.0]] * 2), "arrivals must be >= 0"),
        (GOOD_S, [0, 0], np.array([[0.0, np.nan, 1.0, 3.0]] * 2), "arrivals must not contain NaN"),
    ],
)
def test_bad_input(S, buffers, arrivals, match):
    for call in (departures, summarize, lead_times, gantt):
        with pytest.raises(ValueError, match=match):
            call(S, buffers, arrivals)


def test_bad_warmup_and_jobs():
    with pytest.raises(ValueError, match="warmup must be in"):
        summarize(GOOD_S, [0, 0], warmup=4)
    with pytest.raises(ValueError, match="warmup must be an int"):
        summarize(GOOD_S, [0, 0], warmup=1.5)
    with pytest.raises(ValueError, match="jobs must be a positive int"):
        gantt(GOOD_S, [0, 0], jobs=0)
