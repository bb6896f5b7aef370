"""The exact engine for serial flow lines: departure times by max-plus recursion.

A serial FIFO line of M single-server stations has a finite buffer of ``B[i]`` places
between station i and i+1 and blocks after service: a finished job stays on its machine
until there is room downstream (a place in the buffer, or the next machine itself); the
last station discharges into an unbounded sink. Job j leaves station i at

    D[i, j] = max(max(D[i-1, j], D[i, j-1]) + S[i, j],  D[i+1, j-B[i]-1])

with ``D[-1, j] = A[j]`` (the arrival time; 0 for a saturated line, whose first station
never starves), ``D[i, -1] = 0``, and no blocking term for the last station or while
``j-B[i]-1 < 0``. There is no event queue: one pass over the jobs in order gives the
schedule a discrete-event model of the same line would, far faster.

The arithmetic is exactly a discrete-event simulator's (a SimPy model's ``env.now + S``):
``max(a, b) + s``, then ``max(that, blocking)``, in float64, no reassociation and no
fastmath, so the times are bit-identical to such a model fed the same process times.
Because every time is a max of sums along a path, a replication costs O(M N) and
replications and layout variants are independent: the kernels run them in parallel
(``numba.prange``) over the flattened (layout, replication) pairs.

The kernels compile on first use and are cached on disk (``cache=True``), so later
processes load them instead of compiling. Under Numba's default ``workqueue`` threading
layer they must not be called from several Python threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

__all__ = ["FlowSummary", "departures", "gantt", "lead_times", "summarize"]

_SHAPE_S = "S must be float64 [replications, stations, jobs]"


# --- kernels ----------------------------------------------------------------------------


@numba.njit(cache=True)
def _max(a: float, b: float) -> float:
    # Python's max(a, b): the first argument unless the second is strictly larger.
    return b if b > a else a


@numba.njit(parallel=True, cache=True)
def _count_bad(flat: np.ndarray) -> int:  # pragma: no cover - compiled
    bad = 0
    for k in numba.prange(flat.size):
        x = flat[k]
        if not (x >= 0.0 and x < np.inf):  # NaN fails both comparisons
            bad += 1
    return bad


@numba.njit(parallel=True, cache=True)
def _departures_kernel(S, buffers, arrivals, saturated, out):  # pragma: no cover - compiled
    V, R, M, N = out.shape
    for k in numba.prange(V * R):
        v = k // R
        r = k - v * R
        D = out[v, r]
        s = S[r]
        b = buffers[v]
        for j in range(N):
            up = 0.0 if saturated else arrivals[r, j]
            for i in range(M):
                own = D[i, j - 1] if j > 0 else 0.0
                t = _max(up, own) + s[i, j]
                if i < M - 1:
                    jb = j - b[i] - 1
                    if jb >= 0:
                        t = _max(t, D[i + 1, jb])
                D[i, j] = t
                up = t


@numba.njit(parallel=True, cache=True)
def _summary_kernel(
    S, buffers, arrivals, saturated, warmup, ring_size, want_leads, scalars, per_station, leads
):  # pragma: no cover - compiled
    # scalars[v, r] = (makespan, warm_time, lead-time sum, WIP time integral)
    # per_station[v, r, i] = (working, starved, blocked); leads[v, r, j] if want_leads
    V, R = scalars.shape[0], scalars.shape[1]
    M, N = S.shape[1], S.shape[2]
    mask = ring_size - 1
    for k in numba.prange(V * R):
        v = k // R
        r = k - v * R
        s = S[r]
        b = buffers[v]
        ring = np.zeros((M, ring_size))  # D[i, j] of the last ring_size jobs
        last = np.zeros(M)  # D[i, j-1]
        working = np.zeros(M)
        starved = np.zeros(M)
        blocked = np.zeros(M)
        warm = 0.0
        lead_sum = 0.0
        wip = 0.0
        for j in range(N):
            up = 0.0 if saturated else arrivals[r, j]
            # time in the system: from the order's arrival, or on a saturated line from
            # the start at station 0 (the first station never waits for work)
            entry = _max(up, last[0]) if saturated else up
            if j < warmup:  # the same recursion, nothing counted
                for i in range(M):
                    t = _max(up, last[i]) + s[i, j]
                    if i < M - 1:
                        jb = j - b[i] - 1
                        if jb >= 0:
                            t = _max(t, ring[i + 1, jb & mask])
                    ring[i, j & mask] = t
                    last[i] = t
                    up = t
                warm = up
            else:
                for i in range(M):
                    own = last[i]
                    finish = _max(up, own) + s[i, j]
                    t = finish
                    if i < M - 1:
                        jb = j - b[i] - 1
                        if jb >= 0:
                            t = _max(t, ring[i + 1, jb & mask])
                    working[i] += s[i, j]
                    starved[i] += _max(0.0, up - own)  # branch-free: starving is random
                    blocked[i] += t - finish
                    ring[i, j & mask] = t
                    last[i] = t
                    up = t
                lead_sum += up - entry
                wip += up - _max(entry, warm)
            if want_leads:
                leads[v, r, j] = up - entry
        scalars[v, r, 0] = last[M - 1]
        scalars[v, r, 1] = warm
        scalars[v, r, 2] = lead_sum
        scalars[v, r, 3] = wip
        for i in range(M):
            per_station[v, r, i, 0] = working[i]
            per_station[v, r, i, 1] = starved[i]
            per_station[v, r, i, 2] = blocked[i]


# --- validation -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    S: np.ndarray  # float64 [R, M, N], C-contiguous
    buffers: np.ndarray  # int64 [V, M-1], clamped to N (a larger buffer never fills)
    arrivals: np.ndarray  # float64 [R, N], or a [1, 1] placeholder when saturated
    saturated: bool

    @property
    def shape(self) -> tuple[int, int, int, int]:
        R, M, N = self.S.shape
        return self.buffers.shape[0], R, M, N


def _real(x: Any, shape_text: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != np.float64:
        if a.dtype.kind not in "iuf" or not np.can_cast(a.dtype, np.float64):
            raise ValueError(f"{shape_text}; got dtype {a.dtype}")
        a = a.astype(np.float64)
    return a


def _where(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _check_times(a: np.ndarray, name: str) -> None:
    if a.size == 0 or _count_bad(a.reshape(-1)) == 0:
        return
    # The slow path only runs when something is wrong, to say what and where.
    nan = np.isnan(a)
    if nan.any():
        raise ValueError(f"{name} must not contain NaN; NaN at index {_where(nan)}")
    inf = np.isinf(a)
    if inf.any():
        raise ValueError(f"{name} must be finite; inf at index {_where(inf)}")
    neg = a < 0
    at = _where(neg)
    raise ValueError(f"{name} must be >= 0 (no negative times); {float(a[at])!r} at index {at}")


def _prepare(S: Any, buffers: Any, arrivals: Any) -> _Line:
    s = _real(S, _SHAPE_S)
    if s.ndim != 3:
        raise ValueError(f"{_SHAPE_S}; got shape {s.shape}")
    R, M, N = s.shape
    if min(R, M, N) < 1:
        raise ValueError(f"{_SHAPE_S} with at least one of each; got shape {s.shape}")
    s = np.ascontiguousarray(s)
    _check_times(s, "S")

    shape_b = f"buffers must be integers [layouts, stations - 1] or [stations - 1 = {M - 1}]"
    b = np.asarray(buffers)
    if b.size == 0 and b.dtype.kind == "f":
        b = b.astype(np.int64)  # [] for a one-station line
    if b.dtype.kind not in "iu":
        raise ValueError(f"{shape_b}; got dtype {b.dtype}")
    if b.ndim == 1:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != M - 1 or b.shape[0] < 1:
        raise ValueError(f"{shape_b}; got shape {np.shape(buffers)}")
    if b.dtype.kind == "i" and (b < 0).any():
        raise ValueError(f"buffers must be >= 0; got {b[b < 0][0]} at index {_where(b < 0)}")
    # A buffer of N - 1 or more places never fills: clamping keeps j - B - 1 from overflowing.
    b = np.ascontiguousarray(np.minimum(b, N).astype(np.int64))

    if arrivals is None:
        return _Line(s, b, np.zeros((1, 1)), True)
    shape_a = f"arrivals must be float64 [replications, jobs] = ({R}, {N}) or [jobs]"
    a = _real(arrivals, shape_a)
    if a.ndim == 1 and a.shape == (N,):
        a = np.broadcast_to(a, (R, N))
    if a.shape != (R, N):
        raise ValueError(f"{shape_a}; got shape {a.shape}")
    a = np.ascontiguousarray(a)
    _check_times(a, "arrivals")
    dec = np.diff(a, axis=1) < 0
    if dec.any():
        r, j = _where(dec)
        raise ValueError(
            f"arrivals must be non-decreasing (jobs are FIFO); replication {r}: "
            f"job {j + 1} arrives at {float(a[r, j + 1])!r}, before job {j} at {float(a[r, j])!r}"
        )
    return _Line(s, b, a, False)


# --- public API -------------------------------------------------------------------------


def departures(S: Any, buffers: Any, arrivals: Any = None) -> np.ndarray:
    """Departure time of every job from every station, for every layout and replication.

    ``S`` is float64 [R, M, N] (process times with setups folded in, seconds),
    ``buffers`` int [V, M-1] (or [M-1] for one layout; a number >= N means unbounded),
    ``arrivals`` float64 [R, N] (or [N] shared by all replications) or None for a
    saturated line. Returns ``D`` float64 [V, R, M, N], bit-identical to a discrete-event
    model of the same line fed the same times, so it can replace one where only the
    schedule is needed. Bad input raises ValueError before anything runs.
    """
    line = _prepare(S, buffers, arrivals)
    out = np.empty(line.shape)
    _departures_kernel(line.S, line.buffers, line.arrivals, line.saturated, out)
    return out


@dataclass(frozen=True)
class FlowSummary:
    """Per-(layout, replication) results of a line, without keeping every departure.

    Arrays are [V, R] or, per station, [V, R, M]. Jobs before ``warmup`` are run (they
    fill the line) but not counted, so the figures describe the line in steady state.

    - ``makespan``: departure of the last job from the last station.
    - ``warm_time``: departure of job ``warmup - 1`` from the last station (0 without
      warm-up); the measured window is ``[warm_time, makespan]``.
    - ``throughput``: counted jobs / window length, in jobs per second.
    - ``lead_time_mean``: mean time in the system, to departure from the last station,
      over counted jobs: from the order's arrival ``A[j]`` (its wait for station 0
      included), or on a saturated line from the start at station 0.
    - ``working``, ``starved``, ``blocked``: seconds per station over counted jobs; they
      add up to ``D[i, N-1] - D[i, warmup-1]`` for each station (up to rounding).
    - ``wip_mean``: time-average number of jobs in the system (arrived, or on a saturated
      line started at station 0, and not yet departed from the last) over the window. It
      is the exact integral, not Little's law: counted jobs' time in the system clipped to
      the window, over its length (every job before the warm-up has left by
      ``warm_time``, FIFO). Without warm-up it equals Little's law (total lead time /
      makespan).
    """

    makespan: np.ndarray
    warm_time: np.ndarray
    throughput: np.ndarray
    lead_time_mean: np.ndarray
    working: np.ndarray
    starved: np.ndarray
    blocked: np.ndarray
    wip_mean: np.ndarray


def _run_summary(
    line: _Line, warmup: int, want_leads: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    V, R, M, N = line.shape
    if isinstance(warmup, bool) or not isinstance(warmup, int | np.integer):
        raise ValueError(f"warmup must be an int; got {warmup!r}")
    if not 0 <= warmup < N:
        raise ValueError(f"warmup must be in [0, jobs - 1 = {N - 1}]; got {warmup}")
    max_b = int(line.buffers.max()) if line.buffers.size else 0
    ring = 1 << (max_b + 1).bit_length()  # a power of two >= max(B) + 2, at most ~4 N
    scalars = np.empty((V, R, 4))
    per_station = np.empty((V, R, M, 3))
    leads = np.empty((V, R, N) if want_leads else (1, 1, 1))
    _summary_kernel(
        line.S,
        line.buffers,
        line.arrivals,
        line.saturated,
        int(warmup),
        ring,
        want_leads,
        scalars,
        per_station,
        leads,
    )
    return scalars, per_station, leads


def summarize(S: Any, buffers: Any, arrivals: Any = None, warmup: int = 0) -> FlowSummary:
    """Throughput, lead time, WIP and station time shares, without materializing D.

    Same inputs as :func:`departures`. Each (layout, replication) runs the same
    recursion on a ring buffer of its last ``max(B) + 2`` jobs (rounded up to a power of
    two), so memory does not grow with the number of jobs and thousands of long
    replications fit where their departure times would not. ``warmup`` jobs are run but
    left out of every figure; see :class:`FlowSummary`.
    """
    line = _prepare(S, buffers, arrivals)
    scalars, per_station, _ = _run_summary(line, warmup, want_leads=False)
    N = line.S.shape[2]
    makespan = scalars[..., 0]
    warm = scalars[..., 1]
    window = makespan - warm
    counted = N - warmup
    with np.errstate(divide="ignore", invalid="ignore"):  # all-zero times: inf/nan
        throughput = counted / window
        wip = scalars[..., 3] / window
    return FlowSummary(
        makespan=makespan.copy(),
        warm_time=warm.copy(),
        throughput=throughput,
        lead_time_mean=scalars[..., 2] / counted,
        working=per_station[..., 0].copy(),
        starved=per_station[..., 1].copy(),
        blocked=per_station[..., 2].copy(),
        wip_mean=wip,
    )


def lead_times(S: Any, buffers: Any, arrivals: Any = None) -> np.ndarray:
    """Every job's lead time ``D[M-1, j] - A[j]`` (saturated: ``- D[0, j-1]``), float64
    [V, R, N].

    For lead-time distributions (quantiles, histograms) at N values per replication
    rather than the M N of :func:`departures`.
    """
    line = _prepare(S, buffers, arrivals)
    _, _, leads = _run_summary(line, 0, want_leads=True)
    return leads


def gantt(S: Any, buffers: Any, arrivals: Any = None, jobs: int = 20) -> list[dict]:
    """Rows for a Gantt chart of the first ``jobs`` jobs (layout 0, replication 0).

    One dict per (station, job), ordered by station then job, with ``station``, ``job``,
    ``start`` (``max(D[i-1, j], D[i, j-1])``), ``finish`` (start + S: working from start
    to finish) and ``departure`` (D: blocked from finish to departure).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int | np.integer) or jobs < 1:
        raise ValueError(f"jobs must be a positive int; got {jobs!r}")
    line = _prepare(S, buffers, arrivals)
    _, M, N = line.S.shape
    n = min(int(jobs), N)
    s = line.S[:1, :, :n]  # departures of the first n jobs depend on those jobs only
    a = None if line.saturated else line.arrivals[:1, :n]
    D = departures(s, line.buffers[:1], a)[0, 0]
    rows = []
    for i in range(M):
        for j in range(n):
            up = float(D[i - 1, j]) if i > 0 else 0.0 if a is None else float(a[0, j])
            own = float(D[i, j - 1]) if j > 0 else 0.0
            start = max(up, own)
            rows.append(
                {
                    "station": i,
                    "job": j,
                    "start": start,
                    "finish": start + float(s[0, i, j]),
                    "departure": float(D[i, j]),
                }
            )
    return rows
