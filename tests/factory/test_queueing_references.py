"""The discrete-event engine against closed forms of queueing theory that nobody here wrote.

Each test runs independent replications (fixed seeds), deletes a warm-up, and asks that
the 95% confidence interval of the engine's estimate contain the textbook value.

- M/M/1 and M/M/c: L. Kleinrock, *Queueing Systems, Volume 1: Theory* (Wiley, 1975),
  ch. 3 (birth-death systems in equilibrium: M/M/1 and M/M/m, the Erlang C formula);
  the same results are in D. Gross, C. M. Harris, *Fundamentals of Queueing Theory*, ch. 2.
- The two-station exponential line with a finite buffer and blocking after service:
  J. A. Buzacott, J. G. Shanthikumar, *Stochastic Models of Manufacturing Systems*
  (Prentice Hall, 1993), two-stage flow lines; the birth-death chain is derived below
  and its stationary law is checked against a direct solve of the generator.
"""

from __future__ import annotations

import math

import numpy as np

from liquidfab.factory import des
from liquidfab.factory.model import Layout, load_layout
from liquidfab.factory.sampling import draw
from liquidfab.factory.statistics import mean_ci

HEAD = "layout: {id: org.example.queue, version: 1.0.0, name: reference queue}\n"


def runs(lay: Layout, jobs: int, replications: int, seed: int) -> list[des.DesRun]:
    return [
        des.simulate(lay, s, jobs=jobs)
        for s in draw(lay, jobs, seed=seed, replications=replications)
    ]


def mean_time_in_system(run: des.DesRun, warmup: int) -> float:
    return float((run.complete - run.release)[warmup:].mean())


def test_mm1_mean_time_in_system() -> None:
    lam, mu = 0.8, 1.0
    lay = load_layout(
        HEAD + f"arrivals: {{kind: orders, interarrival: {{kind: exponential, mean: {1 / lam}}}}}\n"
        f"stations: [{{id: server, buffer: unbounded, "
        f"process: {{kind: exponential, mean: {1 / mu}}}}}]\n"
    )
    # Kleinrock vol. 1, ch. 3: W = 1 / (mu - lambda) for M/M/1
    expected = 1.0 / (mu - lam)
    warmup = 2_000
    values = [mean_time_in_system(r, warmup) for r in runs(lay, 42_000, 12, seed=11)]
    ci = mean_ci(values)
    assert ci.low <= expected <= ci.high, (ci, expected)
    assert ci.relative_half_width < 0.05


def erlang_c(c: int, a: float) -> float:
    """The probability that an arrival waits in M/M/c with offered load a = lambda/mu."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def test_mmc_mean_time_in_system() -> None:
    c, lam, mu = 3, 2.4, 1.0
    lay = load_layout(
        HEAD + f"arrivals: {{kind: orders, interarrival: {{kind: exponential, mean: {1 / lam}}}}}\n"
        f"stations: [{{id: servers, servers: {c}, buffer: unbounded, "
        f"process: {{kind: exponential, mean: {1 / mu}}}}}]\n"
    )
    # Kleinrock vol. 1, ch. 3 (M/M/m): W = C(c, a) / (c mu - lambda) + 1 / mu
    expected = erlang_c(c, lam / mu) / (c * mu - lam) + 1.0 / mu
    assert math.isclose(erlang_c(c, 2.4), 0.6472, abs_tol=1e-4)  # the tabulated value
    warmup = 2_000
    values = [mean_time_in_system(r, warmup) for r in runs(lay, 22_000, 12, seed=12)]
    ci = mean_ci(values)
    assert ci.low <= expected <= ci.high, (ci, expected)
    assert ci.relative_half_width < 0.05


def two_station_throughput(mu1: float, mu2: float, buffer: int) -> float:
    """Throughput of a saturated two-station exponential line, blocking after service.

    State n = jobs that have left station 1's service and not station 2: those in the
    buffer, on station 2, and one finished job held blocked on station 1. Station 2 holds
    at most buffer + 1, so n runs over 0..K with K = buffer + 2 (n = K: station 1 blocked).
    Station 1 is never starved (saturated) and works in every state n < K, finishing at
    rate mu1: n -> n + 1 (at n = K - 1 its job then waits on it: n = K). Station 2 works
    whenever n >= 1 at rate mu2: n -> n - 1 (at n = K the blocked job moves in and station
    1 starts anew, memoryless). A birth-death chain with constant rates, so
    p_n = p0 rho^n with rho = mu1 / mu2, p0 = (1 - rho) / (1 - rho^(K+1)), and the line's
    throughput is station 2's output rate mu2 (1 - p0).
    """
    rho = mu1 / mu2
    k = buffer + 2
    p0 = (1 - rho) / (1 - rho ** (k + 1))
    return mu2 * (1 - p0)


def test_two_station_chain_matches_a_direct_solve() -> None:
    mu1, mu2, buffer = 1.0, 1.2, 2
    k = buffer + 2
    q = np.zeros((k + 1, k + 1))
    for n in range(k + 1):
        if n < k:
            q[n, n + 1] = mu1
        if n > 0:
            q[n, n - 1] = mu2
        q[n, n] = -q[n].sum()
    # pi Q = 0 with sum(pi) = 1
    a = np.vstack([q.T, np.ones(k + 1)])
    b = np.zeros(k + 2)
    b[-1] = 1
    pi = np.linalg.lstsq(a, b, rcond=None)[0]
    assert math.isclose(mu2 * (1 - pi[0]), two_station_throughput(mu1, mu2, buffer), rel_tol=1e-12)


def test_two_station_line_with_a_finite_buffer() -> None:
    mu1, mu2, buffer = 1.0, 1.2, 2
    lay = load_layout(
        HEAD + "stations:\n"
        f"  - {{id: first, process: {{kind: exponential, mean: {1 / mu1}}}}}\n"
        f"  - {{id: second, buffer: {buffer}, process: {{kind: exponential, mean: {1 / mu2}}}}}\n"
    )
    expected = two_station_throughput(mu1, mu2, buffer)  # 0.8656 jobs per second
    jobs, warmup = 20_000, 1_000
    values = []
    for run in runs(lay, jobs, 12, seed=13):
        done = run.complete
        values.append((jobs - warmup) / (done[-1] - done[warmup - 1]))
    ci = mean_ci(values)
    assert ci.low <= expected <= ci.high, (ci, expected)
    assert ci.relative_half_width < 0.01
    # far from the unblocked bound min(mu1, mu2) = 1: the buffer matters and is modelled
    assert ci.high < 0.9
