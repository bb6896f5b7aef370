"""Plain SimPy models of production lines: the references the exact engines are checked
against and timed against.

They are written the way a simulation engineer would write them with SimPy alone (one
process per station, stores and containers for the material between them), with no
shortcut taken from the engines they are compared with. Times are floats in seconds.

- ``serial_line``: a serial FIFO line with finite buffers and blocking after service
  (the reference for ``liquidfab.factory.flowline``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy

__all__ = ["serial_line"]


# --- serial line ----------------------------------------------------------------------------


def serial_line(
    S_rep: np.ndarray, buffers: Sequence[int] | np.ndarray, arrivals: np.ndarray | None = None
) -> np.ndarray:
    """Departure times D [M, N] of a serial line, simulated event by event in SimPy.

    ``S_rep`` is one replication's process times [M, N]; ``buffers`` the M - 1 buffer
    capacities (0 allowed); ``arrivals`` the N non-decreasing arrival times, or None for
    a saturated line (station 0 takes the next job as soon as it is free).

    Behind station i there is room for ``B[i] + 1`` jobs: the buffer and machine i+1.
    SimPy's ``Store`` refuses ``capacity=0``, so that room is a ``Container`` of free
    places. A finished job takes a place before it leaves station i; while it waits the
    station's process waits too, so the machine stays occupied (blocking after service).
    The place is given back when the job leaves station i+1. The jobs themselves travel
    in unbounded stores, FIFO. D[i, j] is ``env.now`` once job j has left station i.
    """
    S_rep = np.asarray(S_rep, dtype=np.float64)
    M, N = S_rep.shape
    if len(buffers) != M - 1:
        raise ValueError(f"need {M - 1} buffer capacities, got {len(buffers)}")
    times = S_rep.tolist()  # Python floats: the same values, cheaper to hand to SimPy
    env = simpy.Environment()
    D = np.full((M, N), np.nan)
    inbox = [simpy.Store(env) for _ in range(M)]
    places = [simpy.Container(env, capacity=int(b) + 1, init=int(b) + 1) for b in buffers]

    def arrive(j: int):
        yield env.timeout(float(arrivals[j]))  # from time 0: 0 + A[j] is A[j] exactly
        yield inbox[0].put(j)

    def station(i: int):
        row = times[i]
        fed = i > 0 or arrivals is not None
        for j in range(N):
            if fed:
                yield inbox[i].get()
            yield env.timeout(row[j])
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
