"""Mixed-model sequencing of personal orders on one line.

Every order is its own configuration: a variant (an index into the line's from→to setup
matrix, as ``liquidfab.factory.model.Station.setup`` gives it, in seconds), option flags
that ratio rules watch ("at most p of any q consecutive", counted as in
``liquidfab.production.carseq``), a processing time and an optional due date. A sequence
is scored by three terms, reported separately and summed with ``Weights``:

- **window violations**: windows over capacity, summed over rules (soft; by default
  weighted above anything the other two terms can reach, so they are lexicographic);
- **setup**: seconds of changeover between consecutive orders (and from
  ``start_variant``, the variant the line last built, into the first);
- **tardiness**: ``sum(weight * max(0, completion - due))``, where completion is the
  1-based position (``due_in="position"``) or the time the order leaves, the running sum
  of setups and processing times (``due_in="time"``).

``plan_line_cp`` is a position model on CP-SAT: a Boolean per (slot, order), and a
transition literal per pair of variants between consecutive slots. It scales better
here than a circuit over orders (``AddCircuit``): ratio windows are sums over
consecutive *positions*, which a circuit does not have without extra rank variables,
and transitions cost K² literals per slot for K variants, not n² arcs over n orders.
``plan_line_heuristic`` (greedy plus local search with incremental evaluation of all
three terms) handles batches too large for CP-SAT in its limit; ``plan_line`` runs both
and keeps the better. CP-SAT works in integers: times are rounded to
``TIME_RESOLUTION`` and objective coefficients to 1/1000; the terms reported are always
recomputed exactly (``evaluate``) for the order returned.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ortools.sat.python import cp_model

from liquidfab.production.carseq import WindowCounts
from liquidfab.production.solver import default_workers, solve_model

__all__ = [
    "TIME_RESOLUTION",
    "LinePlan",
    "LineProblem",
    "LineState",
    "Order",
    "Terms",
    "Weights",
    "evaluate",
    "plan_line",
    "plan_line_cp",
    "plan_line_heuristic",
]

#: Seconds per time unit in the CP-SAT model (setups, processing times, due times).
TIME_RESOLUTION = 0.01
_SCALE = 1000  # objective units per unit of the weighted objective, in CP-SAT
_EPS = 1e-9


@dataclass(frozen=True)
class Order:
    """One personal order: its variant, its options, when it is due and how long it takes.

    ``due`` is a 1-based position or a time in seconds, as the problem's ``due_in`` says
    (``None``: never late); ``weight`` is what a unit of lateness costs.
    """

    id: str
    variant: int
    options: frozenset[str] = frozenset()
    due: float | None = None
    processing: float = 0.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", frozenset(self.options))


@dataclass(frozen=True)
class Weights:
    """How the three terms add up; ``window=None`` ranks windows above everything else."""

    window: float | None = None
    setup: float = 1.0
    tardiness: float = 1.0


@dataclass(frozen=True)
class LineProblem:
    """Orders to sequence, ratio rules ``{option: (p, q)}`` and the setup matrix.

    Raises ``ValueError`` for duplicate order ids, a variant outside the matrix, a
    matrix that is not square or has negative or non-finite entries, a negative time or
    weight, a rule with ``q < 1`` or ``p < 0``, or an unknown ``due_in``.
    """

    orders: tuple[Order, ...]
    rules: Mapping[str, tuple[int, int]]
    setup: np.ndarray
    due_in: Literal["position", "time"] = "position"
    start_variant: int | None = None
    weights: Weights = field(default_factory=Weights)

    def __post_init__(self) -> None:
        orders = tuple(self.orders)
        setup = np.asarray(self.setup, dtype=np.float64)
        object.__setattr__(self, "orders", orders)
        object.__setattr__(self, "setup", setup)
        object.__setattr__(self, "rules", {k: (int(p), int(q)) for k, (p, q) in self.rules.items()})
        if setup.ndim != 2 or setup.shape[0] != setup.shape[1] or setup.shape[0] == 0:
            raise ValueError(f"the setup matrix must be square [K, K], got shape {setup.shape}")
        if not np.all(np.isfinite(setup)) or np.any(setup < 0):
            raise ValueError("setup times must be finite and non-negative seconds")
        k = setup.shape[0]
        if self.due_in not in ("position", "time"):
            raise ValueError(f"due_in must be 'position' or 'time', not {self.due_in!r}")
        if self.start_variant is not None and not 0 <= self.start_variant < k:
            raise ValueError(f"start_variant {self.start_variant} is not in 0..{k - 1}")
        for option, (p, q) in self.rules.items():
            if q < 1 or p < 0:
                raise ValueError(f"rule {option!r}: need q >= 1 and p >= 0, got {p}/{q}")
        seen: set[str] = set()
        for o in orders:
            if o.id in seen:
                raise ValueError(f"order id {o.id!r} appears twice")
            seen.add(o.id)
            if not 0 <= o.variant < k:
                raise ValueError(f"order {o.id!r}: variant {o.variant} is not in 0..{k - 1}")
            if not (o.processing >= 0 and math.isfinite(o.processing)):
                raise ValueError(f"order {o.id!r}: processing must be a finite time >= 0")
            if not (o.weight >= 0 and math.isfinite(o.weight)):
                raise ValueError(f"order {o.id!r}: weight must be finite and >= 0")
            if o.due is not None and not math.isfinite(o.due):
                raise ValueError(f"order {o.id!r}: due must be a finite number or None")
        w = self.weights
        if w.setup < 0 or w.tardiness < 0 or (w.window is not None and w.window < 0):
            raise ValueError("weights must be non-negative")

    @property
    def window_weight(self) -> float:
        """The weight of one violated window; by default more than the other terms can reach."""
        if self.weights.window is not None:
            return self.weights.window
        n = len(self.orders)
        worst_setup = float(self.setup.max()) * n
        if self.due_in == "position":
            worst_late = float(n)
        else:
            worst_late = sum(o.processing for o in self.orders) + worst_setup
        weights = sum(o.weight for o in self.orders)
        return (
            1.0 + self.weights.setup * worst_setup + self.weights.tardiness * weights * worst_late
        )

    def index(self, order: Sequence[str]) -> list[int]:
        """Order ids as indices; ``ValueError`` unless each order appears exactly once."""
        at = {o.id: i for i, o in enumerate(self.orders)}
        out = []
        for oid in order:
            if oid not in at:
                raise ValueError(f"unknown order id {oid!r}")
            out.append(at[oid])
        if len(set(out)) != len(out) or len(out) != len(self.orders):
            raise ValueError("a sequence must hold every order exactly once")
        return out


@dataclass(frozen=True)
class Terms:
    """The three terms of a sequence and their weighted sum."""

    window_violations: int
    setup: float
    tardiness: float
    objective: float


@dataclass(frozen=True)
class LinePlan:
    """A sequence of order ids, its terms and how it was found.

    ``method`` is ``"cp-sat"``, ``"greedy"`` or ``"local search"``; ``optimal`` means
    CP-SAT proved that no sequence scores better (with times rounded to
    ``TIME_RESOLUTION``).
    """

    order: tuple[str, ...]
    window_violations: int
    setup: float
    tardiness: float
    objective: float
    method: str
    optimal: bool
    seconds: float


class _Data:
    """The problem as plain lists, for the inner loops."""

    def __init__(self, problem: LineProblem) -> None:
        self.problem = problem
        orders = problem.orders
        self.n = len(orders)
        self.rules = list(problem.rules.items())
        self.flags = [[opt in o.options for opt, _ in self.rules] for o in orders]
        self.p = [p for _, (p, _) in self.rules]
        self.q = [q for _, (_, q) in self.rules]
        self.variant = [o.variant for o in orders]
        self.proc = [float(o.processing) for o in orders]
        self.due = [math.inf if o.due is None else float(o.due) for o in orders]
        self.weight = [float(o.weight) for o in orders]
        self.matrix = problem.setup.tolist()
        k = problem.setup.shape[0]
        sv = problem.start_variant
        self.first = [0.0] * k if sv is None else list(self.matrix[sv])
        self.time_mode = problem.due_in == "time"
        self.w_window = problem.window_weight
        self.w_setup = problem.weights.setup
        self.w_late = problem.weights.tardiness

    def edge(self, prev: int | None, item: int) -> float:
        """Setup seconds into ``item`` after ``prev`` (``None``: the first slot)."""
        if prev is None:
            return self.first[self.variant[item]]
        return self.matrix[self.variant[prev]][self.variant[item]]

    def late(self, item: int, completion: float) -> float:
        return self.weight[item] * max(0.0, completion - self.due[item])


def evaluate(problem: LineProblem, order: Sequence[str]) -> Terms:
    """The three terms of a sequence of order ids, recomputed from scratch (O(n * K))."""
    return _full(_Data(problem), problem.index(order))


def _full(data: _Data, seq: Sequence[int]) -> Terms:
    windows = WindowCounts(data.flags, data.p, data.q, seq).total
    setup = tardiness = clock = 0.0
    prev = None
    for pos, item in enumerate(seq):
        s = data.edge(prev, item)
        setup += s
        clock += s + data.proc[item]
        tardiness += data.late(item, clock if data.time_mode else pos + 1)
        prev = item
    objective = data.w_window * windows + data.w_setup * setup + data.w_late * tardiness
    return Terms(windows, setup, tardiness, objective)


class LineState:
    """A sequence with its three terms kept up to date under swaps and insertions.

    Windows go through ``WindowCounts`` (O(sum q) per swap). Setup re-costs only the
    transitions next to moved positions: O(1) for a swap, O(|i - j|) for an insertion.
    Tardiness by position changes only for moved orders (O(1) swap, O(|i - j|)
    insertion); by time, every completion from the first moved position on shifts, so it
    costs O(n - min(i, j)).
    """

    def __init__(self, problem: LineProblem, seq: Sequence[int]) -> None:
        self.data = _Data(problem)
        self.order = list(seq)
        self.windows = WindowCounts(self.data.flags, self.data.p, self.data.q, self.order)
        terms = _full(self.data, self.order)
        self.setup = terms.setup
        self.tardiness = terms.tardiness
        self.completion = self._completions(0, self.order)

    @property
    def terms(self) -> Terms:
        """The current terms (kept incrementally)."""
        d = self.data
        objective = (
            d.w_window * self.windows.total + d.w_setup * self.setup + d.w_late * self.tardiness
        )
        return Terms(self.windows.total, self.setup, self.tardiness, objective)

    def _completions(self, start: int, seq: Sequence[int]) -> list[float]:
        """Completion times of ``seq`` from position ``start`` on (time mode only)."""
        if not self.data.time_mode:
            return []
        d = self.data
        out = self.completion[:start] if start else []
        clock = out[-1] if out else 0.0
        prev = seq[start - 1] if start else None
        for item in seq[start:]:
            clock += d.edge(prev, item) + d.proc[item]
            out.append(clock)
            prev = item
        return out

    # --- the setup and tardiness parts of a move ------------------------------------------

    def _edges(self, at: Sequence[int], items: Mapping[int, int]) -> float:
        """Setup change on the transitions into positions ``at`` if ``items`` were placed."""
        d, seq, n = self.data, self.order, len(self.order)

        def item(x: int) -> int:
            return items.get(x, seq[x])

        change = 0.0
        for k in sorted(set(at)):
            if 0 <= k < n:
                before = d.edge(seq[k - 1] if k else None, seq[k])
                after = d.edge(item(k - 1) if k else None, item(k))
                change += after - before
        return change

    def _late(self, lo: int, hi: int, items: Mapping[int, int]) -> float:
        """Tardiness change if positions ``lo..hi`` held ``items`` (a permutation of them)."""
        d, seq = self.data, self.order
        if not d.time_mode:
            return sum(d.late(items[x], x + 1) - d.late(seq[x], x + 1) for x in range(lo, hi + 1))
        n = len(seq)
        clock = self.completion[lo - 1] if lo else 0.0
        prev = seq[lo - 1] if lo else None
        change = 0.0
        for x in range(lo, min(hi + 2, n)):
            item = items.get(x, seq[x])
            clock += d.edge(prev, item) + d.proc[item]
            change += d.late(item, clock) - d.late(seq[x], self.completion[x])
            prev = item
        shift = clock - self.completion[min(hi + 1, n - 1)]
        if abs(shift) > _EPS:
            for x in range(hi + 2, n):
                c = self.completion[x]
                change += d.late(seq[x], c + shift) - d.late(seq[x], c)
        return change

    def _swap_parts(self, i: int, j: int) -> tuple[int, float, float]:
        seq = self.order
        items = {i: seq[j], j: seq[i]}
        windows = self.windows.swap_delta(i, j)
        setup = self._edges([i, i + 1, j, j + 1], items)
        if self.data.time_mode:
            late = self._late(min(i, j), max(i, j), items)
        else:
            late = self._late(i, i, items) + self._late(j, j, items)
        return windows, setup, late

    def _insert_items(self, i: int, j: int) -> dict[int, int]:
        seq = self.order
        lo, hi = min(i, j), max(i, j)
        moved = [*seq[i + 1 : j + 1], seq[i]] if i < j else [seq[i], *seq[j:i]]
        return dict(zip(range(lo, hi + 1), moved, strict=True))

    def _insert_parts(self, i: int, j: int) -> tuple[int, float, float]:
        lo, hi = min(i, j), max(i, j)
        items = self._insert_items(i, j)
        windows = self.windows.insert_delta(i, j)
        setup = self._edges(range(lo, hi + 2), items)
        return windows, setup, self._late(lo, hi, items)

    def _weigh(self, parts: tuple[int, float, float]) -> float:
        d = self.data
        return d.w_window * parts[0] + d.w_setup * parts[1] + d.w_late * parts[2]

    # --- moves -----------------------------------------------------------------------------

    def swap_delta(self, i: int, j: int) -> float:
        """The change in the objective if the orders at ``i`` and ``j`` were swapped."""
        return 0.0 if i == j else self._weigh(self._swap_parts(i, j))

    def insert_delta(self, i: int, j: int) -> float:
        """The change in the objective if the order at ``i`` moved to position ``j``."""
        return 0.0 if i == j else self._weigh(self._insert_parts(i, j))

    def swap(self, i: int, j: int) -> None:
        """Swap the orders at ``i`` and ``j``."""
        if i == j:
            return
        _, setup, late = self._swap_parts(i, j)
        self.windows.swap(i, j)
        self.order[i], self.order[j] = self.order[j], self.order[i]
        self._commit(min(i, j), setup, late)

    def insert(self, i: int, j: int) -> None:
        """Move the order at ``i`` so that it ends at position ``j``."""
        if i == j:
            return
        _, setup, late = self._insert_parts(i, j)
        self.windows.insert(i, j)
        self.order.insert(j, self.order.pop(i))
        self._commit(min(i, j), setup, late)

    def _commit(self, lo: int, setup: float, late: float) -> None:
        self.setup += setup
        self.tardiness += late
        if self.data.time_mode:
            self.completion = self._completions(lo, self.order)


def _plan(
    problem: LineProblem, seq: Sequence[int], method: str, optimal: bool, started: float
) -> LinePlan:
    t = _full(_Data(problem), seq)
    return LinePlan(
        tuple(problem.orders[i].id for i in seq),
        t.window_violations,
        t.setup,
        t.tardiness,
        t.objective,
        method,
        optimal,
        time.perf_counter() - started,
    )


def _check_limit(time_limit: float) -> None:
    if not time_limit > 0:
        raise ValueError(f"time_limit must be positive, got {time_limit!r}")


def _greedy(data: _Data) -> list[int]:
    """Slot by slot: fewest windows broken, then the apparent-tardiness-cost-with-setups
    rule (ATCS: urgent, heavy orders with a cheap changeover first), then the orders
    whose rule options are hardest to place (highest dynamic utilization)."""
    n = data.n
    # orders that look the same to windows and setups form a class, queued by due date
    classes: dict[tuple, list[int]] = {}
    for o in range(n):
        key = (data.variant[o], tuple(data.flags[o]), data.proc[o])
        classes.setdefault(key, []).append(o)
    queues = [sorted(v, key=lambda o: (data.due[o], -data.weight[o])) for v in classes.values()]
    mean_proc = (sum(data.proc) / n if data.time_mode else 1.0) or 1.0
    mean_setup = float(np.mean(data.matrix)) or 1.0
    r = len(data.p)
    demand = [sum(data.flags[o][k] for o in range(n)) for k in range(r)]
    recent: list[list[int]] = [[] for _ in range(r)]
    out: list[int] = []
    clock = 0.0
    prev: int | None = None
    while len(out) < n:
        slots = n - len(out)
        util = [demand[k] * data.q[k] / (max(data.p[k], 1) * slots) for k in range(r)]
        best, pick = None, -1
        for queue in queues:
            if not queue:
                continue
            o = queue[0]
            added = sum(sum(recent[k]) + 1 > data.p[k] for k in range(r) if data.flags[o][k])
            s = data.edge(prev, o)
            done = clock + s + data.proc[o] if data.time_mode else len(out) + 1
            slack = max(0.0, data.due[o] - done) if math.isfinite(data.due[o]) else 1e9
            urgency = math.exp(-slack / (2.0 * mean_proc)) if data.w_late else 1.0
            changeover = math.exp(-s / mean_setup) if data.w_setup else 1.0
            atcs = (data.weight[o] + _EPS) * urgency * changeover
            key = (added, -atcs, -sum(util[k] for k in range(r) if data.flags[o][k]), o)
            if best is None or key < best:
                best, pick = key, o
        for queue in queues:
            if queue and queue[0] == pick:
                queue.pop(0)
                break
        clock += data.edge(prev, pick) + data.proc[pick]
        out.append(pick)
        prev = pick
        for k in range(r):
            bit = int(data.flags[pick][k])
            demand[k] -= bit
            recent[k].append(bit)
            if len(recent[k]) > data.q[k] - 1:
                recent[k].pop(0)
    return out


def plan_line_heuristic(
    problem: LineProblem, *, seed: int = 0, time_limit: float = 5.0
) -> LinePlan:
    """Greedy construction, then late-acceptance local search over swaps and insertions.

    Each step draws a move near a position worth changing (in a violated window, else
    anywhere) and evaluates it incrementally with ``LineState``. Late acceptance
    (Burke and Bykov) takes a move when it is no worse than the current sequence or than
    the sequence of ``L`` steps ago, so the search climbs out of local optima without a
    temperature to tune against the objective's scale. The best sequence seen is
    returned; the search stops at ``time_limit`` or after ``max(20000, 500 * n)`` steps
    without a new best. Raises ``ValueError`` for a non-positive ``time_limit``.
    """
    _check_limit(time_limit)
    started = time.perf_counter()
    rng = random.Random(seed)
    data = _Data(problem)
    n = data.n
    if n < 2:
        return _plan(problem, list(range(n)), "greedy", True, started)
    state = LineState(problem, _greedy(data))
    method = "greedy"
    reach = max([*data.q, 4]) * 2
    cost = best = state.terms.objective
    best_order = list(state.order)
    history = [cost] * max(50, n)
    patience = max(20_000, 500 * n)
    idle = step = 0
    while time.perf_counter() - started < time_limit and idle < patience:
        bad = state.windows.violated() if state.windows.total else []  # refreshed per batch
        for _ in range(100):
            step += 1
            idle += 1
            if bad and rng.random() < 0.5:
                r, s = rng.choice(bad)
                i = rng.randrange(s, min(n, s + data.q[r]))
            else:
                i = rng.randrange(n)
            if rng.random() < 0.5:
                j = rng.randrange(n)
                delta = state.swap_delta(i, j)
                move = state.swap
            else:
                j = min(n - 1, max(0, i + rng.randint(-reach, reach)))
                delta = state.insert_delta(i, j)
                move = state.insert
            slot = step % len(history)
            if i != j and (delta <= _EPS or cost + delta <= history[slot] + _EPS):
                move(i, j)
                cost = state.terms.objective
                if cost < best - _EPS:
                    best, best_order, idle, method = cost, list(state.order), 0, "local search"
            history[slot] = cost
    return _plan(problem, best_order, method, False, started)


def plan_line_cp(
    problem: LineProblem,
    *,
    time_limit: float = 10.0,
    workers: int | None = None,
    hint: Sequence[str] | None = None,
) -> LinePlan | None:
    """The position model on CP-SAT (see the module docstring); ``None`` if it found nothing.

    ``hint`` (order ids, a heuristic's sequence for example) is the solver's first guess.
    Raises ``ValueError`` for a bad hint, limit or worker count; ``LiquidfabError`` if
    the solver itself fails.
    """
    _check_limit(time_limit)
    started = time.perf_counter()
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}")
    seq_hint = problem.index(hint) if hint is not None else None
    data = _Data(problem)
    n = data.n
    if n == 0:
        return _plan(problem, [], "cp-sat", True, started)
    model = cp_model.CpModel()
    x = [[model.new_bool_var(f"x{k}_{o}") for o in range(n)] for k in range(n)]
    for k in range(n):
        model.add_exactly_one(x[k])
    for o in range(n):
        model.add_exactly_one(x[k][o] for k in range(n))
    objective: list = []

    def units(seconds: float) -> int:
        return round(seconds / TIME_RESOLUTION)

    # variants per slot, and one transition literal per variant pair between slots
    variants = sorted(set(data.variant))
    z = {(k, a): model.new_bool_var(f"z{k}_{a}") for k in range(n) for a in variants}
    for k in range(n):
        for a in variants:
            model.add(z[k, a] == sum(x[k][o] for o in range(n) if data.variant[o] == a))
    setup_at: list = [sum(units(data.first[a]) * z[0, a] for a in variants)]
    objective.append(sum(round(_SCALE * data.w_setup * data.first[a]) * z[0, a] for a in variants))
    for k in range(1, n):
        t = {(a, b): model.new_bool_var(f"t{k}_{a}_{b}") for a in variants for b in variants}
        for a in variants:
            model.add(sum(t[a, b] for b in variants) == z[k - 1, a])
            model.add(sum(t[b, a] for b in variants) == z[k, a])
        setup_at.append(sum(units(data.matrix[a][b]) * v for (a, b), v in t.items()))
        objective.append(
            sum(round(_SCALE * data.w_setup * data.matrix[a][b]) * v for (a, b), v in t.items())
        )

    # ratio windows, soft
    w_window = round(_SCALE * data.w_window)
    for r in range(len(data.p)):
        with_r = [o for o in range(n) if data.flags[o][r]]
        p, q = data.p[r], data.q[r]
        if len(with_r) <= p:
            continue
        y = [sum(x[k][o] for o in with_r) for k in range(n)]
        for s in range(max(1, n - q + 1)):
            v = model.new_bool_var(f"v{r}_{s}")
            model.add(sum(y[s : s + q]) <= p + (min(q, len(with_r)) - p) * v)
            objective.append(w_window * v)

    # tardiness
    due_orders = [o for o in range(n) if math.isfinite(data.due[o]) and data.weight[o] > 0]
    if due_orders and data.w_late > 0:
        if data.time_mode:
            horizon = sum(units(p) for p in data.proc) + n * units(float(problem.setup.max()))
            completion = []
            clock: cp_model.LinearExprT = 0
            for k in range(n):
                c = model.new_int_var(0, horizon, f"c{k}")
                model.add(
                    c == clock + setup_at[k] + sum(units(data.proc[o]) * x[k][o] for o in range(n))
                )
                completion.append(c)
                clock = c
            for o in due_orders:
                late = model.new_int_var(0, horizon, f"late{o}")
                for k in range(n):
                    model.add(late >= completion[k] - units(data.due[o])).only_enforce_if(x[k][o])
                coef = _SCALE * data.w_late * data.weight[o] * TIME_RESOLUTION
                objective.append(round(coef) * late)
        else:
            for o in due_orders:
                late = model.new_int_var(0, n, f"late{o}")
                position = sum((k + 1) * x[k][o] for k in range(n))
                model.add(late >= position - math.floor(data.due[o]))
                objective.append(round(_SCALE * data.w_late * data.weight[o]) * late)

    # identical orders are interchangeable: keep them in input order
    groups: dict[tuple, list[int]] = {}
    for o in range(n):
        key = (data.variant[o], tuple(data.flags[o]), data.proc[o], data.due[o], data.weight[o])
        groups.setdefault(key, []).append(o)
    for members in groups.values():
        for a, b in itertools.pairwise(members):
            model.add(sum(k * x[k][a] for k in range(n)) < sum(k * x[k][b] for k in range(n)))
    model.minimize(sum(objective))
    if seq_hint is not None:
        for k, o in enumerate(_canonical(seq_hint, groups)):
            for oo in range(n):
                model.add_hint(x[k][oo], oo == o)
    status, solver = solve_model(model, time_limit - (time.perf_counter() - started), workers)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    seq = [next(o for o in range(n) if solver.boolean_value(x[k][o])) for k in range(n)]
    return _plan(problem, seq, "cp-sat", status == cp_model.OPTIMAL, started)


def _canonical(seq: Sequence[int], groups: Mapping[tuple, list[int]]) -> list[int]:
    """``seq`` with identical orders relabelled into input order (the model's symmetry cut)."""
    rank = {}
    for members in groups.values():
        for m in members:
            rank[m] = members
    used: dict[int, int] = {}
    out = []
    for o in seq:
        members = rank[o]
        at = used.get(members[0], 0)
        out.append(members[at])
        used[members[0]] = at + 1
    return out


def plan_line(
    problem: LineProblem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    workers: int | None = None,
    heuristic_share: float = 0.3,
    cp_max_orders: int = 200,
) -> LinePlan:
    """The heuristic, then CP-SAT hinted with its sequence in the time left; the better.

    CP-SAT is skipped for batches of more than ``cp_max_orders`` orders: its model has n²
    literals, and past about 200 orders it no longer improves on the heuristic within
    seconds (measured on 2 cores with 20 s: at 200 orders it returned the hint or a
    sequence 0.0002% better; at 400 it found no sequence at all). Raises ``ValueError``
    for a bad limit or share.
    """
    _check_limit(time_limit)
    if not 0 < heuristic_share <= 1:
        raise ValueError(f"heuristic_share must be in (0, 1], got {heuristic_share!r}")
    started = time.perf_counter()
    best = plan_line_heuristic(problem, seed=seed, time_limit=time_limit * heuristic_share)
    left = time_limit - (time.perf_counter() - started)
    if len(problem.orders) <= cp_max_orders and left > 0:
        exact = plan_line_cp(problem, time_limit=left, workers=workers, hint=best.order)
        if exact is not None and exact.objective <= best.objective + _EPS:
            best = exact
    return LinePlan(
        best.order,
        best.window_violations,
        best.setup,
        best.tardiness,
        best.objective,
        best.method,
        best.optimal,
        time.perf_counter() - started,
    )
