"""Random streams and the sampled times both engines consume.

Replication r of a run with seed s always gets ``SeedSequence(s).spawn(R)[r]``, and
within it every station and purpose (process times, failures, inspection, the variant
mix, arrivals) has its own stream keyed by the station's id, not its position. So two
layouts that differ in buffers, servers or station order see the same work at every
station: common random numbers, which make a comparison between layouts far sharper
than independent runs would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from liquidfab.factory.distributions import Deterministic, Lognormal
from liquidfab.factory.model import Layout

__all__ = ["Samples", "draw", "exact_times", "replication_seeds", "stream"]

_PURPOSES = {
    "process": 1,
    "mix": 2,
    "arrivals": 3,
    "failure": 4,
    "repair": 5,
    "inspect": 6,
    "rework": 7,
}


def replication_seeds(seed: int, count: int, start: int = 0) -> list[np.random.SeedSequence]:
    """Seeds of replications ``start .. start+count-1``: the children ``spawn`` gives, so a
    run extended later keeps the replications it already had."""
    return np.random.SeedSequence(seed).spawn(start + count)[start:]


def stream(
    rep: np.random.SeedSequence, purpose: str, key: str = "", extra: int = 0
) -> np.random.Generator:
    """The generator for one purpose at one station (``key``) within a replication."""
    # 64 bits of a hash of the station's id (as two 32-bit words): distinct ids never
    # share a stream in practice, where 32 bits can (two ids with one CRC32)
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    words = (int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little"))
    spawn_key = (*rep.spawn_key, _PURPOSES[purpose], *words, extra)
    seq = np.random.SeedSequence(rep.entropy, spawn_key=spawn_key)
    return np.random.Generator(np.random.PCG64(seq))


@dataclass
class Samples:
    """What one replication's jobs will need, drawn up front in blocks.

    ``variant[j]`` is job j's variant; ``process[s][j]`` the time job j takes on its
    first visit to station s; ``arrival[j]`` when an order arrives (None when the line
    is saturated). Rework visits, failures and inspection draw from their own streams
    as the general engine meets them.
    """

    layout: Layout
    rep: np.random.SeedSequence
    variant: np.ndarray = field(init=False)
    process: list[np.ndarray] = field(init=False)
    arrival: np.ndarray | None = field(init=False)
    _mix: np.random.Generator = field(init=False, repr=False)
    _proc: list[np.random.Generator] = field(init=False, repr=False)
    _arr: np.random.Generator | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._mix = stream(self.rep, "mix")
        self._proc = [stream(self.rep, "process", st.id) for st in self.layout.stations]
        self._arr = stream(self.rep, "arrivals") if self.layout.interarrival else None
        self.variant = np.zeros(0, dtype=np.int64)
        self.process = [np.zeros(0) for _ in self.layout.stations]
        self.arrival = None if self._arr is None else np.zeros(0)

    @property
    def jobs(self) -> int:
        return len(self.variant)

    def ensure(self, n: int) -> None:
        """Have at least ``n`` jobs drawn (more are added in blocks of what is missing)."""
        have = self.jobs
        if n <= have:
            return
        more = n - have
        cum = np.cumsum(self.layout.shares)
        cum[-1] = 1.0
        new_v = np.searchsorted(cum, self._mix.random(more), side="right").astype(np.int64)
        self.variant = np.concatenate([self.variant, new_v])
        for s, st in enumerate(self.layout.stations):
            block = _per_variant(st.times, new_v, self._proc[s])
            self.process[s] = np.concatenate([self.process[s], block])
        if self._arr is not None and self.arrival is not None:
            gaps = self.layout.interarrival.sample(self._arr, more)  # type: ignore[union-attr]
            start = self.arrival[-1] if have else 0.0
            # one running sum continued, so blocks give the same times as one draw
            self.arrival = np.concatenate(
                [self.arrival, np.cumsum(np.concatenate([[start], gaps]))[1:]]
            )


def _per_variant(times: tuple, variant: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Job j's time from ``times[variant[j]]``, drawn from one stream in job order."""
    first = times[0]
    if all(t == first for t in times):
        return first.sample(rng, len(variant))
    if all(isinstance(t, Deterministic) for t in times):
        return np.array([t.value for t in times])[variant]
    if all(isinstance(t, Lognormal | Deterministic) for t in times):
        # one normal per job, scaled per variant: vectorized, and still one stream
        z = rng.standard_normal(len(variant))
        mu = np.empty(len(times))
        sigma = np.empty(len(times))
        for k, t in enumerate(times):
            if isinstance(t, Lognormal):
                mu[k], sigma[k] = t.params()
            else:
                mu[k], sigma[k] = (np.log(t.value) if t.value > 0 else -np.inf), 0.0
        return np.exp(mu[variant] + sigma[variant] * z)
    out = np.empty(len(variant))
    for j, v in enumerate(variant):
        out[j] = times[v].sample(rng, 1)[0]
    return out


def draw(
    layout: Layout, jobs: int, *, seed: int, replications: int, start: int = 0
) -> list[Samples]:
    """Samples of ``jobs`` jobs for each replication ``start .. start+replications-1``."""
    out = []
    for rep in replication_seeds(seed, replications, start):
        s = Samples(layout, rep)
        s.ensure(jobs)
        out.append(s)
    return out


def exact_times(
    layout: Layout, samples: list[Samples], jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``S[r, i, j]`` for the exact engine (line stations in flow order, the setup from
    the previous job's variant folded in) and the arrivals ``A[r, j]`` (or None)."""
    n = jobs if jobs is not None else min(s.jobs for s in samples)
    m = len(layout.line)
    out = np.empty((len(samples), m, n))
    for r, s in enumerate(samples):
        v = s.variant[:n]
        for k, i in enumerate(layout.line):
            out[r, k] = s.process[i][:n]
            setup = layout.stations[i].setup
            if setup is not None and n > 1:
                out[r, k, 1:] += setup[v[:-1], v[1:]]
    if layout.interarrival is None:
        return out, None
    return out, np.stack([s.arrival[:n] for s in samples])  # type: ignore[index]
