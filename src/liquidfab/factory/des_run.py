"""What one replication of the discrete-event engine leaves behind.

Per job: when it entered, completed or was scrapped; per station: when each job last
left it; per server: a log of state changes. Shares, WIP and throughput over any window
are computed from these after the run, so the warm-up can be chosen once the run is seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liquidfab.factory.model import Layout

__all__ = ["STATES", "DesRun"]

#: The states a server is in; columns of ``DesRun.state_totals``.
STATES = ("working", "setup", "failed", "blocked", "starved", "off-shift")
WORKING, SETUP, FAILED, BLOCKED, STARVED, OFF = range(6)


@dataclass
class DesRun:
    """One replication's run. Arrays are per job id (released or arrived) unless noted.

    - ``release[j]``: when the job entered the line (loaded onto a first-station server on
      a saturated line, its arrival with an order stream); ``complete[j]`` when it left
      the last line station, NaN if scrapped or unfinished; ``scrapped[j]``.
    - ``leave[j]``: when it left the system (completed or scrapped), NaN if it had not.
    - ``departures[s, j]``: the last time job j left station s (NaN if never); for a
      serial line it equals the exact engine's D.
    - ``processed[s]``: visits that left station s; ``passed[s]``: of those, visits that
      passed its inspection (all of them where there is none).
    - ``trace``: rows ``{station, server, job, state, start, end}`` of working, setup,
      blocked and failed spans of the first ``trace_jobs`` job ids (station = index).
    """

    layout: Layout
    end_time: float
    release: np.ndarray
    complete: np.ndarray
    scrapped: np.ndarray
    leave: np.ndarray
    departures: np.ndarray
    completed: int
    scrapped_count: int
    reworked: int
    events: int
    processed: np.ndarray
    passed: np.ndarray
    trace: list[dict[str, Any]]
    log_time: np.ndarray = field(repr=False)  # state changes, sorted by server then time
    log_unit: np.ndarray = field(repr=False)
    log_state: np.ndarray = field(repr=False)
    unit_station: np.ndarray = field(repr=False)  # station index of each server (unit)
    _log_end: np.ndarray = field(init=False, repr=False)
    _wip: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        t, u = self.log_time, self.log_unit
        end = np.empty_like(t)
        if t.size:
            end[:-1] = t[1:]
            last = np.ones(t.size, dtype=bool)
            last[:-1] = u[1:] != u[:-1]
            end[last] = max(self.end_time, float(t.max()))
        self._log_end = end

    @property
    def jobs(self) -> int:
        """Job ids created (released or arrived)."""
        return int(self.release.size)

    @property
    def servers(self) -> np.ndarray:
        return np.bincount(self.unit_station, minlength=len(self.layout.stations))

    def _window(self, start: float | None, end: float | None) -> tuple[float, float]:
        a = 0.0 if start is None else float(start)
        b = self.end_time if end is None else float(end)
        if not (math.isfinite(a) and math.isfinite(b)) or b < a:
            raise ValueError(f"the window must be finite with start <= end; got [{a}, {b}]")
        return a, b

    def state_totals(self, start: float | None = None, end: float | None = None) -> np.ndarray:
        """Seconds per station and state (``STATES``) in [start, end], summed over the
        station's servers: float64 [stations, 6]. Defaults: the whole run."""
        a, b = self._window(start, end)
        d = np.minimum(self._log_end, b) - np.maximum(self.log_time, a)
        np.clip(d, 0.0, None, out=d)
        n = len(self.layout.stations)
        idx = self.unit_station[self.log_unit] * len(STATES) + self.log_state
        return np.bincount(idx, weights=d, minlength=n * len(STATES)).reshape(n, len(STATES))

    def state_shares(self, start: float | None = None, end: float | None = None) -> np.ndarray:
        """``state_totals`` as shares of each station's server time (rows sum to 1)."""
        a, b = self._window(start, end)
        totals = self.state_totals(a, b)
        whole = self.servers * (b - a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(whole[:, None] > 0, totals / whole[:, None], 0.0)

    def wip_series(self) -> tuple[np.ndarray, np.ndarray]:
        """Jobs in the system as a step series: ``wip[i]`` holds from ``times[i]`` on."""
        if self._wip is None:
            r = self.release[~np.isnan(self.release)]
            x = self.leave[~np.isnan(self.leave)]
            t = np.concatenate([r, x])
            d = np.concatenate([np.ones(r.size), -np.ones(x.size)])
            order = np.argsort(t, kind="stable")
            self._wip = t[order], np.cumsum(d[order])
        return self._wip

    def wip(self, start: float | None = None, end: float | None = None) -> float:
        """Time-average number of jobs in the system (released, not yet left) over
        [start, end]."""
        a, b = self._window(start, end)
        if b == a:
            return float("nan")
        t, w = self.wip_series()
        inner = t[(t > a) & (t < b)]
        edges = np.concatenate([[a], inner, [b]])
        at = np.searchsorted(t, edges[:-1], side="right") - 1
        values = np.where(at >= 0, w[np.maximum(at, 0)], 0.0)
        return float(np.sum(values * np.diff(edges)) / (b - a))

    def throughput(self, start: float | None = None, end: float | None = None) -> float:
        """Jobs completed in (start, end] per second."""
        a, b = self._window(start, end)
        if b == a:
            return float("nan")
        c = self.complete
        return float(np.count_nonzero((c > a) & (c <= b)) / (b - a))

    def lead_times(self) -> np.ndarray:
        """``complete - release`` of every completed job, in job order."""
        done = ~np.isnan(self.complete)
        return self.complete[done] - self.release[done]
