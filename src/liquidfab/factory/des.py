"""The general discrete-event engine: any layout, on SimPy.

Where the exact flow-line engine needs a plain serial line, this one runs everything a
layout can say: parallel servers sharing one input buffer, blocking after or before
service, setups remembered per server, breakdowns on either clock (preempt-resume), a
shift calendar that pauses work in progress overnight, inspection with scrap or a rework
loop, a saturated line or an order stream, for a job count or a time horizon.

Semantics, in the layout's terms:

- A station holds at most ``buffer + servers`` jobs (its buffer and one on each server;
  ``None`` = unbounded). A job enters a station when there is a place; a free server takes
  the oldest waiting job. The last line station discharges into an unbounded sink.
- ``after-service`` blocking: a finished job stays on its server until it has a place at
  its next station. ``before-service``: a server that holds a job first reserves a place at
  the next station (blocked until it has one), then works, then moves the job there; a job
  failing inspection gives that place back and goes to its rework station with
  after-service rules.
- Saturated line: a first-station server that is free and finds no job waiting (rework
  returns wait there too) releases the next job at once; job ids count up in release
  order. Order stream: job j arrives at ``samples.arrival[j]`` into an unbounded backlog
  in front of the first station, whatever its declared buffer.
- Process times: job j's first visit to station s takes ``samples.process[s][j]``; a
  repeat visit (rework loops) draws from the station's ``rework`` stream. A server that
  changes variant adds ``setup[prev, v]`` (none for its first job), timed as one span of
  ``p + setup`` so the schedule is bit-identical to the exact engine's.
- Breakdowns, per server, from its own ``failure``/``repair`` streams. ``operating``
  clock: the time to failure runs only while working or setting up; a failure stops the
  job, the repair follows, the job resumes (no interrupts needed). ``calendar`` clock: it
  runs all the time; a working server is interrupted and resumes after repair, an idle or
  blocked one is down (cannot start) until repaired.
- Shift calendar: servers start and do work only in working spans; a job in progress
  pauses at a shift's end and resumes at the next; orders keep arriving.
- Every server is in one of ``STATES`` at each instant; the log of state changes gives
  the seconds per station and state over any window (``DesRun.state_totals``).

The kernel is lean on purpose (it is benchmarked against a hand-written SimPy model):
jobs are ints, buffers are deques, a server takes a waiting job without an event, and the
per-job figures are plain lists turned into arrays at the end. A model that stalls (its
event queue runs dry, or nothing but clocks tick, before the end) raises ``LayoutError``
saying where it is stuck, and so does a run past its event budget; it never loops forever.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import simpy
from simpy.core import EmptySchedule
from simpy.events import Event

from liquidfab.errors import LayoutError
from liquidfab.factory.des_run import (
    BLOCKED,
    FAILED,
    OFF,
    SETUP,
    STARVED,
    STATES,
    WORKING,
    DesRun,
)
from liquidfab.factory.model import WEEK, Calendar, Layout, Station, visit_ratios
from liquidfab.factory.sampling import Samples, stream

__all__ = ["STATES", "DesRun", "simulate"]


_UNBOUNDED = 1 << 62  # a station capacity that never fills
_DRAWS = 64  # failure and repair times drawn per block (same numbers as one at a time)
_UNIFORMS = 1024  # inspection draws per block
_STILL = 1_000_000  # events at one instant that mean time stands still (a zero-time loop)


class _Stop(Exception):
    """Raised out of ``env.step`` by the stop event's callback: the run is over."""


def _stop(_event: Event) -> None:
    raise _Stop


def _draws(dist: Any, rng: np.random.Generator, block: int = _DRAWS) -> Iterator[float]:
    """An endless iterator of ``dist``'s samples from ``rng``, drawn in blocks (the same
    numbers as drawing one at a time)."""
    while True:
        yield from dist.sample(rng, block).tolist()


def _uniforms(rng: np.random.Generator) -> Iterator[float]:
    while True:
        yield from rng.random(_UNIFORMS).tolist()


class _Node:
    """A station at run time: its waiting jobs, idle servers and blocked suppliers."""

    __slots__ = ("cap", "count", "idle", "index", "queue", "waiters")

    def __init__(self, index: int, cap: int) -> None:
        self.index = index
        self.cap = cap  # places: buffer + servers
        self.count = 0  # jobs here: waiting or on a server (or places reserved)
        self.queue: deque[int] = deque()  # jobs waiting for a server, oldest first
        self.idle: deque[Event] = deque()  # servers waiting for a job, longest first
        # servers waiting for a place here: (event, job or -1 for a reservation, station)
        self.waiters: deque[tuple[Event, int, int]] = deque()


class _Srv:
    """A server of the general kernel (calendar or calendar-clock failures)."""

    __slots__ = (
        "busy",
        "code0",
        "down",
        "job",
        "k",
        "logged",
        "process",
        "state",
        "station",
        "ttf",
        "up",
        "wait",
    )

    def __init__(self, station: int, k: int, code0: int) -> None:
        self.station = station
        self.k = k
        self.code0 = code0
        self.state = STARVED
        self.logged = -1
        self.down = False
        self.up: Event | None = None
        self.busy = False  # in a work span that a calendar-clock failure interrupts
        self.wait: Event | None = None  # pending "a job for me" event while idle
        self.job = -1
        self.ttf = math.inf
        self.process: Any = None


# --- the kernel -------------------------------------------------------------------------


class _Sim:
    general_only = False  # run every server on the general kernel (a check in the tests)

    def __init__(
        self,
        layout: Layout,
        samples: Samples,
        jobs: int | None,
        horizon: float | None,
        trace_jobs: int,
    ) -> None:
        self.layout = layout
        self.samples = samples
        self.horizon = horizon
        self.env = env = simpy.Environment()
        stations = layout.stations
        n = len(stations)
        self.first = layout.line[0]
        self.saturated = layout.interarrival is None
        self.bbs = layout.spec.blocking == "before-service"
        self.calendar: Calendar | None = layout.calendar
        self.open = True if self.calendar is None else self.calendar.next_open(0.0) == 0.0
        self.trace_n = int(trace_jobs)
        self.trace: list[dict[str, Any]] = []
        self.log_t: list[float] = []
        self.log_c: list[int] = []
        self.nodes = []
        for st in stations:
            cap = _UNBOUNDED if st.buffer is None else st.buffer + st.servers
            if st.index == self.first and not self.saturated:
                cap = _UNBOUNDED  # the order backlog
            self.nodes.append(_Node(st.index, cap))
        self.unit0 = np.concatenate([[0], np.cumsum([st.servers for st in stations])]).tolist()
        self.unit_station = np.repeat(np.arange(n), [st.servers for st in stations])
        self.setup = [None if st.setup is None else st.setup.tolist() for st in stations]
        self.revisit: list[set[int] | None] = [None] * n
        for st in stations:
            if st.failed_to is not None:
                back = stations[st.failed_to].next
                assert back is not None
                for i in [*range(min(back, st.index), st.index + 1), st.failed_to]:
                    self.revisit[i] = set()
        self.rework_rng: list[np.random.Generator | None] = [None] * n
        # one inspection stream per station, shared by its servers in inspection order
        # (one per server would give every server the same outcomes)
        self.inspect_draw: list[Any] = [
            None
            if st.inspection_yield is None
            else _uniforms(stream(samples.rep, "inspect", st.id)).__next__
            for st in stations
        ]
        self.failed = [0] * n  # inspections failed per station
        self.repeats = [0] * n  # repeat visits per station
        self.reworked = 0
        self.finished = [0]  # jobs completed or scrapped
        self.completed = 0
        self.scrap_count = 0
        self.next_job = 0
        self.target = jobs if jobs is not None else -1
        self.limit = jobs if jobs is not None else _UNBOUNDED
        # per-job lists (grown in place on horizon runs, so servers keep their references)
        have = jobs if jobs is not None else max(samples.jobs, 1024)
        samples.ensure(have)
        self.size = have
        self.proc = [samples.process[s][:have].tolist() for s in range(n)]
        self.variant = samples.variant[:have].tolist()
        self.arrival = None if samples.arrival is None else samples.arrival[:have].tolist()
        nan = math.nan
        self.dep = [[nan] * have for _ in range(n)]
        self.release = [nan] * have
        self.complete = [nan] * have
        self.leave = [nan] * have
        self.scrapped = [False] * have
        self.general: list[_Srv] = []
        self.background = 0  # processes that always have one event pending (clocks)
        self.stalled: str | None = None
        self.stop = Event(env)
        self.stop.callbacks.append(_stop)  # type: ignore[union-attr]

    # -- jobs ----------------------------------------------------------------------------

    def grow(self, need: int) -> None:
        """Have sampled times for at least ``need`` jobs (horizon runs)."""
        if need <= self.size:
            return
        old, new = self.size, max(need, 2 * self.size)
        s = self.samples
        s.ensure(new)
        for i, p in enumerate(self.proc):
            p.extend(s.process[i][old:new].tolist())
        self.variant.extend(s.variant[old:new].tolist())
        if self.arrival is not None and s.arrival is not None:
            self.arrival.extend(s.arrival[old:new].tolist())
        more = [math.nan] * (new - old)
        for d in self.dep:
            d.extend(more)
        self.release.extend(more)
        self.complete.extend(more)
        self.leave.extend(more)
        self.scrapped.extend([False] * (new - old))
        self.size = new

    def release_job(self) -> int:
        """The next job id onto the first station of a saturated line, or -1 when all
        ``jobs`` have been released."""
        j = self.next_job
        if j >= self.limit:
            return -1
        if j >= self.size:
            self.grow(j + 1)
        self.next_job = j + 1
        self.release[j] = self.env.now
        return j

    def done(self, job: int, scrap: bool) -> None:
        now = self.env.now
        self.leave[job] = now
        if scrap:
            self.scrapped[job] = True
            self.scrap_count += 1
        else:
            self.complete[job] = now
            self.completed += 1
        f = self.finished
        f[0] += 1
        if f[0] == self.target:
            self.stop.succeed()

    def first_time(self, s: int, job: int) -> float:
        """Job ``job``'s time at station ``s``: its sampled time on the first visit, a
        draw from the station's rework stream on a repeat."""
        seen = self.revisit[s]
        if seen is None or job not in seen:
            if seen is not None:
                seen.add(job)
            return self.proc[s][job]
        self.repeats[s] += 1
        rng = self.rework_rng[s]
        st = self.layout.stations[s]
        if rng is None:
            rng = self.rework_rng[s] = stream(self.samples.rep, "rework", st.id)
        return float(st.times[self.variant[job]].sample(rng, 1)[0])

    # -- places --------------------------------------------------------------------------

    @staticmethod
    def put(node: _Node, job: int) -> None:
        """Job ``job`` enters ``node`` (its place is already counted)."""
        if node.idle:
            node.idle.popleft().succeed(job)
        else:
            node.queue.append(job)

    def free(self, node: _Node) -> None:
        """A place at ``node`` is given up: the longest-waiting supplier gets it."""
        if node.waiters:
            ev, job, _ = node.waiters.popleft()
            if job >= 0:
                self.put(node, job)
            ev.succeed()
        else:
            node.count -= 1

    def span(self, s: int, k: int, job: int, state: int, start: float, end: float) -> None:
        self.trace.append(
            {
                "station": s,
                "server": k,
                "job": job,
                "state": STATES[state],
                "start": start,
                "end": end,
            }
        )

    # -- the fast server: no calendar, no calendar-clock failures --------------------------

    def fast_server(self, s: int, k: int) -> Any:
        env = self.env
        st: Station = self.layout.stations[s]
        nodes = self.nodes
        node = nodes[s]
        queue, idle, waiters = node.queue, node.idle, node.waiters
        nxt = st.next
        bbs = self.bbs and nxt is not None
        proc = self.proc[s]
        variant = self.variant
        dep = self.dep[s]
        setup = self.setup[s]
        revisit = self.revisit[s]
        log_t = self.log_t.append
        log_c = self.log_c.append
        c0 = (self.unit0[s] + k) * 8
        timeout = env.timeout
        release = self.release_job if s == self.first and self.saturated else None
        inspect = None
        yld = st.inspection_yield
        if yld is not None:
            inspect = self.inspect_draw[s]
        failed_to = st.failed_to
        trace_n = self.trace_n
        complete, leave, finished, stop, target = (
            self.complete,
            self.leave,
            self.finished,
            self.stop,
            self.target,
        )
        ttf = math.inf
        ttf_next = repair_next = None
        if st.mtbf is not None and st.mttr is not None:
            rep = self.samples.rep
            ttf_next = _draws(st.mtbf, stream(rep, "failure", st.id, extra=k)).__next__
            repair_next = _draws(st.mttr, stream(rep, "repair", st.id, extra=k)).__next__
            ttf = ttf_next()
        prev = -1
        cur = -1
        while True:
            # 1. a job: a waiting one, a new one (saturated first station), or wait
            if queue:
                job = queue.popleft()
            elif release is not None and (job := release()) >= 0:
                pass
            else:
                release = None
                if cur != STARVED:
                    log_t(env.now)
                    log_c(c0 + STARVED)
                    cur = STARVED
                ev = Event(env)
                idle.append(ev)
                job = yield ev
            # 2. before-service blocking: a place downstream first
            if bbs:
                dn = nodes[nxt]  # type: ignore[index]
                if dn.count < dn.cap:
                    dn.count += 1
                else:
                    if cur != BLOCKED:
                        log_t(env.now)
                        log_c(c0 + BLOCKED)
                        cur = BLOCKED
                    t_b = env.now
                    ev = Event(env)
                    dn.waiters.append((ev, -1, s))
                    yield ev
                    if job < trace_n and env.now > t_b:
                        self.span(s, k, job, BLOCKED, t_b, env.now)
            # 3. setup and work, as one span when nothing interrupts it
            v = variant[job]
            p = proc[job] if revisit is None else self.first_time(s, job)
            if setup is not None and prev >= 0:
                su = setup[prev][v]
                w = p + su
            else:
                su = 0.0
                w = p
            prev = v
            if ttf > w:
                ttf -= w
                t0 = env.now
                if su > 0.0:
                    log_t(t0)
                    log_c(c0 + SETUP)
                    log_t(t0 + su)
                    log_c(c0 + WORKING)
                    cur = WORKING
                elif cur != WORKING:
                    log_t(t0)
                    log_c(c0 + WORKING)
                    cur = WORKING
                yield timeout(w)
                if job < trace_n:
                    if su > 0.0:
                        self.span(s, k, job, SETUP, t0, t0 + su)
                    self.span(s, k, job, WORKING, t0 + su, env.now)
            else:
                ttf = yield from self.failing(s, k, c0, job, su, p, ttf, ttf_next, repair_next)
                cur = WORKING
            # 4. inspection
            dest = nxt
            if inspect is not None and inspect() >= yld:
                self.failed[s] += 1
                if bbs:
                    self.free(nodes[nxt])  # type: ignore[index]
                if failed_to is None:
                    dest = -1
                else:
                    dest = failed_to
                    self.reworked += 1
            # 5. move on: to the sink, to scrap, or to the next station's buffer
            if dest is None:
                now = env.now
                complete[job] = now
                leave[job] = now
                self.completed += 1
                finished[0] += 1
                if finished[0] == target:
                    stop.succeed()
            elif dest < 0:
                self.done(job, scrap=True)
            elif bbs and dest == nxt:
                dn = nodes[dest]
                if dn.idle:
                    dn.idle.popleft().succeed(job)
                else:
                    dn.queue.append(job)
            else:
                dn = nodes[dest]
                if dn.count < dn.cap:
                    dn.count += 1
                    if dn.idle:
                        dn.idle.popleft().succeed(job)
                    else:
                        dn.queue.append(job)
                else:
                    if cur != BLOCKED:
                        log_t(env.now)
                        log_c(c0 + BLOCKED)
                        cur = BLOCKED
                    t_b = env.now
                    ev = Event(env)
                    dn.waiters.append((ev, job, s))
                    yield ev
                    if job < trace_n and env.now > t_b:
                        self.span(s, k, job, BLOCKED, t_b, env.now)
            dep[job] = env.now
            # 6. this place is free: the longest-waiting supplier takes it
            if waiters:
                wev, wjob, _ = waiters.popleft()
                if wjob >= 0:
                    if idle:
                        idle.popleft().succeed(wjob)
                    else:
                        queue.append(wjob)
                wev.succeed()
            else:
                node.count -= 1

    def failing(
        self,
        s: int,
        k: int,
        c0: int,
        job: int,
        su: float,
        p: float,
        ttf: float,
        ttf_next: Any,
        repair_next: Any,
    ) -> Any:
        """Setup and work with operating-clock failures in between (preempt-resume):
        the remaining time to failure runs down only while working. Returns the new
        remaining time to failure."""
        env = self.env
        timeout = env.timeout
        log_t, log_c = self.log_t.append, self.log_c.append
        traced = job < self.trace_n
        for amount, code in ((su, SETUP), (p, WORKING)):
            if code == SETUP and amount <= 0.0:
                continue
            while ttf <= amount:
                t0 = env.now
                log_t(t0)
                log_c(c0 + code)
                yield timeout(ttf)
                amount -= ttf
                t1 = env.now
                log_t(t1)
                log_c(c0 + FAILED)
                yield timeout(repair_next())
                ttf = ttf_next()
                if traced:
                    self.span(s, k, job, code, t0, t1)
                    self.span(s, k, job, FAILED, t1, env.now)
            t0 = env.now
            log_t(t0)
            log_c(c0 + code)
            ttf -= amount
            yield timeout(amount)
            if traced:
                self.span(s, k, job, code, t0, env.now)
        return ttf

    # -- the general server: shifts and calendar-clock failures --------------------------

    def set(self, srv: _Srv, state: int) -> None:
        """Put ``srv`` in ``state``; the log shows failed while it is down and off-shift
        while it idles or is blocked outside working time."""
        srv.state = state
        if srv.down:
            eff = FAILED
        elif not self.open and (state in (STARVED, BLOCKED)):
            eff = OFF
        else:
            eff = state
        if eff != srv.logged:
            self.log_t.append(self.env.now)
            self.log_c.append(srv.code0 + eff)
            srv.logged = eff

    def ready(self, srv: _Srv) -> Any:
        """Wait until ``srv`` is up and its shift is open."""
        env = self.env
        cal = self.calendar
        while True:
            if srv.down:
                yield srv.up
                continue
            if cal is not None:
                at = cal.next_open(env.now)
                if at > env.now:
                    self.set(srv, OFF)
                    yield env.timeout(at - env.now)
                    continue
            return

    def span_end(self, t: float) -> float:
        """The end of the working span that contains ``t`` (an open instant)."""
        cal = self.calendar
        assert cal is not None
        base = math.floor(t / WEEK) * WEEK
        for a, b in cal.spans:
            if base + a <= t < base + b:
                return base + b
        return t  # not open: no time to work until next_open

    def work(self, srv: _Srv, job: int, su: float, p: float, ttf_next: Any, repair_next: Any):
        env = self.env
        cal = self.calendar
        s, k = srv.station, srv.k
        traced = job < self.trace_n
        operating = ttf_next is not None
        yield from self.ready(srv)
        for amount, code in ((su, SETUP), (p, WORKING)):
            while amount > 0.0:
                yield from self.ready(srv)
                seg = amount
                if cal is not None:
                    room = self.span_end(env.now) - env.now
                    if room <= 0.0:
                        continue
                    seg = min(seg, room)
                fail = False
                if operating and srv.ttf <= seg:
                    seg, fail = srv.ttf, True
                self.set(srv, code)
                t0 = env.now
                srv.busy = True
                try:
                    yield env.timeout(seg)
                except simpy.Interrupt:
                    srv.busy = False
                    amount -= env.now - t0
                    if traced and env.now > t0:
                        self.span(s, k, job, code, t0, env.now)
                    continue
                srv.busy = False
                amount -= seg
                if traced:
                    self.span(s, k, job, code, t0, env.now)
                if operating:
                    srv.ttf -= seg
                if fail:
                    srv.down = True
                    self.set(srv, srv.state)
                    t1 = env.now
                    yield env.timeout(repair_next())
                    srv.down = False
                    srv.ttf = ttf_next()
                    self.set(srv, srv.state)
                    if traced:
                        self.span(s, k, job, FAILED, t1, env.now)

    def general_server(self, s: int, k: int, srv: _Srv) -> Any:
        env = self.env
        st = self.layout.stations[s]
        nodes = self.nodes
        node = nodes[s]
        queue = node.queue
        nxt = st.next
        bbs = self.bbs and nxt is not None
        release = self.release_job if s == self.first and self.saturated else None
        inspect = None
        yld = st.inspection_yield
        if yld is not None:
            inspect = self.inspect_draw[s]
        setup = self.setup[s]
        trace_n = self.trace_n
        ttf_next = repair_next = None
        if st.mtbf is not None and st.mttr is not None and st.failure_clock == "operating":
            rep = self.samples.rep
            ttf_next = _draws(st.mtbf, stream(rep, "failure", st.id, extra=k)).__next__
            repair_next = _draws(st.mttr, stream(rep, "repair", st.id, extra=k)).__next__
            srv.ttf = ttf_next()
        prev = -1
        while True:
            if queue:
                job = queue.popleft()
            else:
                job = -1
                if release is not None:
                    yield from self.ready(srv)
                    if queue:
                        job = queue.popleft()
                    elif (job := release()) < 0:
                        release = None
                if job < 0:
                    self.set(srv, STARVED)
                    ev = Event(env)
                    srv.wait = ev
                    if not srv.down:
                        node.idle.append(ev)
                    job = yield ev
                    srv.wait = None
            srv.job = job
            if bbs:
                dn = nodes[nxt]  # type: ignore[index]
                if dn.count < dn.cap:
                    dn.count += 1
                else:
                    self.set(srv, BLOCKED)
                    t_b = env.now
                    ev = Event(env)
                    dn.waiters.append((ev, -1, s))
                    yield ev
                    if job < trace_n and env.now > t_b:
                        self.span(s, k, job, BLOCKED, t_b, env.now)
            v = self.variant[job]
            p = self.first_time(s, job)
            su = setup[prev][v] if setup is not None and prev >= 0 else 0.0
            prev = v
            yield from self.work(srv, job, su, p, ttf_next, repair_next)
            dest = nxt
            if inspect is not None and inspect() >= yld:
                self.failed[s] += 1
                if bbs:
                    self.free(nodes[nxt])  # type: ignore[index]
                if st.failed_to is None:
                    dest = -1
                else:
                    dest = st.failed_to
                    self.reworked += 1
            if dest is None:
                self.done(job, scrap=False)
            elif dest < 0:
                self.done(job, scrap=True)
            elif bbs and dest == nxt:
                self.put(nodes[dest], job)
            else:
                dn = nodes[dest]
                if dn.count < dn.cap:
                    dn.count += 1
                    self.put(dn, job)
                else:
                    self.set(srv, BLOCKED)
                    t_b = env.now
                    ev = Event(env)
                    dn.waiters.append((ev, job, s))
                    yield ev
                    if job < trace_n and env.now > t_b:
                        self.span(s, k, job, BLOCKED, t_b, env.now)
            self.dep[s][job] = env.now
            srv.job = -1
            self.free(node)

    def calendar_failures(self, srv: _Srv, st: Station) -> Any:
        """Failures on the calendar clock: the time to failure runs all the time."""
        env = self.env
        rep = self.samples.rep
        ttf_next = _draws(st.mtbf, stream(rep, "failure", st.id, extra=srv.k)).__next__
        repair_next = _draws(st.mttr, stream(rep, "repair", st.id, extra=srv.k)).__next__
        node = self.nodes[srv.station]
        while True:
            yield env.timeout(ttf_next())
            srv.down = True
            srv.up = Event(env)
            self.set(srv, srv.state)
            if srv.busy:
                srv.process.interrupt()
            w = srv.wait
            if w is not None and not w.triggered and w in node.idle:
                node.idle.remove(w)
            t1 = env.now
            job = srv.job
            yield env.timeout(repair_next())
            srv.down = False
            self.set(srv, srv.state)
            srv.up.succeed()
            w = srv.wait
            if w is not None and not w.triggered:
                if node.queue:
                    w.succeed(node.queue.popleft())
                else:
                    node.idle.append(w)
            if 0 <= job < self.trace_n and job == srv.job:
                self.span(srv.station, srv.k, job, FAILED, t1, env.now)

    def shifts(self) -> Any:
        """Flip the shift flag at every span boundary and show idle servers off shift."""
        env = self.env
        cal = self.calendar
        assert cal is not None
        while True:
            t = self.span_end(env.now) if self.open else cal.next_open(env.now)
            yield env.timeout(t - env.now)
            self.open = not self.open
            for srv in self.general:
                self.set(srv, srv.state)

    # -- arrivals, stalls and the run ----------------------------------------------------

    def arrivals(self) -> Any:
        env = self.env
        node = self.nodes[self.first]
        j = 0
        while j < self.limit:
            if j >= self.size:
                self.grow(j + 1)
            a = self.arrival[j]  # type: ignore[index]
            d = a - env.now
            while env.now + d < a:  # land on A[j] exactly, as the exact engine does
                d = math.nextafter(d, math.inf)
            while d > 0.0 and env.now + d > a:
                d = math.nextafter(d, -math.inf)
            yield env.timeout(d)
            self.release[j] = env.now
            self.next_job = j + 1
            node.count += 1
            self.put(node, j)
            j += 1

    def watchdog(self, interval: float) -> Any:
        """With clocks that tick forever (shifts, calendar-clock failures, the horizon)
        the event queue never runs dry: stalled = only their events are pending and no
        server is down (a repair could restart work)."""
        env = self.env
        while True:
            yield env.timeout(interval)
            if len(env._queue) <= self.background and not any(srv.down for srv in self.general):
                self.stalled = self.where_stuck()
                self.stop.succeed()
                return

    def where_stuck(self) -> str:
        stations = self.layout.stations
        full = []
        blocked = set()
        for node in self.nodes:
            if node.waiters:
                st = stations[node.index]
                full.append(f"{st.id} ({node.count} of {node.cap} places taken)")
                blocked.update(stations[w[2]].id for w in node.waiters)
        at = f"the model deadlocked at t = {self.env.now:.6g} s: nothing can move any more"
        if full:
            return (
                f"{at}; servers blocked at {', '.join(sorted(blocked))} wait for room at "
                f"full stations {', '.join(full)}"
            )
        waiting = sum(len(n.queue) for n in self.nodes)
        return f"{at} ({waiting} jobs wait in buffers with no server to take them)"

    def start(self, max_events: int | None) -> int:
        env = self.env
        layout = self.layout
        for st in layout.stations:
            s = st.index
            general = (
                self.general_only
                or self.calendar is not None
                or (st.mtbf is not None and st.failure_clock == "calendar")
            )
            for k in range(st.servers):
                if general:
                    srv = _Srv(s, k, (self.unit0[s] + k) * 8)
                    srv.process = env.process(self.general_server(s, k, srv))
                    self.general.append(srv)
                    if st.mtbf is not None and st.failure_clock == "calendar":
                        env.process(self.calendar_failures(srv, st))
                        self.background += 1
                else:
                    env.process(self.fast_server(s, k))
        if not self.saturated:
            env.process(self.arrivals())
        if self.calendar is not None:
            env.process(self.shifts())
            self.background += 1
        if self.horizon is not None:
            timer = env.timeout(self.horizon)
            timer.callbacks.append(_stop)  # type: ignore[union-attr]
            self.background += 1
        if self.background:
            env.process(self.watchdog(self.watch_interval()))
        return max_events if max_events is not None else self.budget()

    def watch_interval(self) -> float:
        means = [1.0]
        for st in self.layout.stations:
            means += [d.mean for d in st.times]
            means += [d.mean for d in (st.mtbf, st.mttr) if d is not None]
        interval = 10.0 * max(means)
        if self.calendar is not None:
            interval = max(interval, float(WEEK))
        if self.horizon is not None:
            interval = min(interval, self.horizon / 64)
        return interval

    def budget(self) -> int:
        """A generous bound on the events of a healthy run (a guard, not a limit)."""
        layout = self.layout
        shares = layout.shares
        visits = visit_ratios(layout)
        servers = sum(st.servers for st in layout.stations)
        # the longest a job keeps the busiest station, per job released (seconds)
        slowest = 0.0
        for st, v in zip(layout.stations, visits, strict=True):
            slowest = max(
                slowest, v * st.mean_time(shares) / st.servers / max(st.availability(), 0.01)
            )
        gap = layout.interarrival.mean if layout.interarrival is not None else 0.0
        if self.horizon is not None:
            span = self.horizon
            cycle = max(slowest, gap)
            jobs = 2 * span / cycle if cycle > 0 else 1e6
        else:
            jobs = float(self.target)
            span = 4 * jobs * (slowest + gap)
            if self.calendar is not None:
                span /= max(self.calendar.share, 1e-3)
        clocks = 0.0
        for st in layout.stations:
            if st.mtbf is not None:
                clocks += st.servers * 2 * span / max(st.mtbf.mean, 1.0)
        if self.calendar is not None:
            clocks += (span / WEEK + 1) * 2 * len(self.calendar.spans) * (servers + 1)
        if self.background:
            clocks += span / self.watch_interval()
        per_job = 20 * (sum(visits) + 1)
        return int(min(10 * (jobs + 10) * per_job + 20 * clocks + 100_000, 2**62))

    def run(self, max_events: int | None) -> int:
        budget = self.start(max_events)
        env = self.env
        step = env.step
        events = 0
        try:
            while True:
                chunk = min(_STILL, budget - events)
                if chunk <= 0:
                    raise LayoutError(
                        [
                            (
                                "run",
                                None,
                                f"the run took more than {budget:,} events (at t = "
                                f"{env.now:.6g} s) and was stopped: the model does not "
                                "finish (a loop of zero times, or work that never ends)",
                            )
                        ],
                        self.layout.file,
                    )
                before = env.now
                n = 0
                for n in range(1, chunk + 1):  # noqa: B007
                    step()
                events += n
                if n == _STILL and env.now == before:
                    raise LayoutError(
                        [
                            (
                                "run",
                                None,
                                f"time stands still at t = {before:.6g} s after "
                                f"{_STILL:,} events: jobs pass through in zero time "
                                "without end (give the stations times above zero)",
                            )
                        ],
                        self.layout.file,
                    )
        except _Stop:
            events += n
        except EmptySchedule:
            events += n - 1
            self.stalled = self.where_stuck()
        if self.stalled is not None:
            raise LayoutError([("stations", None, self.stalled)], self.layout.file)
        return events

    def result(self, events: int) -> DesRun:
        n = self.next_job
        log_c = np.asarray(self.log_c, dtype=np.int64)
        log_t = np.asarray(self.log_t, dtype=np.float64)
        unit = log_c >> 3
        order = np.argsort(unit, kind="stable")
        dep = np.array([d[:n] for d in self.dep], dtype=np.float64).reshape(len(self.dep), n)
        processed = np.count_nonzero(~np.isnan(dep), axis=1) + np.asarray(self.repeats)
        return DesRun(
            layout=self.layout,
            end_time=float(self.env.now),
            release=np.asarray(self.release[:n], dtype=np.float64),
            complete=np.asarray(self.complete[:n], dtype=np.float64),
            scrapped=np.asarray(self.scrapped[:n], dtype=bool),
            leave=np.asarray(self.leave[:n], dtype=np.float64),
            departures=dep,
            completed=self.completed,
            scrapped_count=self.scrap_count,
            reworked=self.reworked,
            events=events,
            processed=processed,
            passed=processed - np.asarray(self.failed),
            trace=self.trace,
            log_time=log_t[order],
            log_unit=unit[order],
            log_state=(log_c & 7)[order],
            unit_station=self.unit_station,
        )


def simulate(
    layout: Layout,
    samples: Samples,
    *,
    jobs: int | None = None,
    horizon: float | None = None,
    trace_jobs: int = 0,
    max_events: int | None = None,
) -> DesRun:
    """Run one replication of ``layout`` on ``samples`` (its sampled times) until ``jobs``
    jobs have left (completed or scrapped) or until ``horizon`` seconds.

    Exactly one of ``jobs`` and ``horizon``. ``trace_jobs``: keep Gantt rows for job ids
    below it. ``max_events`` overrides the event budget (a guard against models that never
    finish). A model that deadlocks, or exceeds the budget, raises ``LayoutError``.
    """
    if (jobs is None) == (horizon is None):
        raise ValueError("give jobs or horizon, exactly one")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive int; got {jobs!r}")
    if horizon is not None and not (0 < float(horizon) < math.inf):
        raise ValueError(f"horizon must be a positive number of seconds; got {horizon!r}")
    if [st.id for st in samples.layout.stations] != [st.id for st in layout.stations]:
        raise ValueError("the samples were drawn for a layout with other stations")
    if trace_jobs < 0:
        raise ValueError(f"trace_jobs must be >= 0; got {trace_jobs!r}")
    sim = _Sim(layout, samples, jobs, None if horizon is None else float(horizon), trace_jobs)
    events = sim.run(max_events)
    return sim.result(events)
