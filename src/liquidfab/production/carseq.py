"""Car sequencing (CSPLib problem 001): ratio rules "at most p of any q consecutive".

A line builds cars of several classes; a class requires some options, and the station
fitting option ``o`` keeps up only if at most ``p[o]`` of any ``q[o]`` consecutive cars
require it. The task is an order of all cars that breaks no window.

**Violations** (the measure everywhere in this module): the number of windows of
``q[o]`` consecutive positions, ``[s, s + q[o])`` for ``s = 0 .. n - q[o]``, holding more
than ``p[o]`` cars with option ``o``, summed over options: CSPLib's count of windows over
capacity, not the cars in excess. A sequence shorter than ``q[o]`` is one window.

Two solvers, and ``sequence`` that runs both and keeps the better:

- ``solve_heuristic``: a greedy construction (each slot takes the class that breaks
  fewest windows ending there, ties to the class with the highest dynamic sum of option
  utilizations, "hardest options first") then local search over swaps and insertions.
  ``WindowCounts`` keeps every window's count, so a move's delta re-counts only windows
  touching the moved positions: a swap costs O(sum of q) and an insertion from ``i`` to
  ``j`` O(K * (|i - j| + max q)) for K options, against O(K * n) for a full recount.
- ``solve_cp``: CP-SAT with the windows as hard constraints (a feasible answer has zero
  violations), a class per slot, exact class counts, and the redundant prefix cuts of
  Regin and Puget: the last ``k * q`` slots hold at most ``k * p`` cars with the option,
  so the first ``n - k * q`` hold at least ``demand - k * p`` (and likewise for suffixes).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from liquidfab.production.solver import default_workers, solve_model

__all__ = [
    "CarSequencing",
    "Sequencing",
    "WindowCounts",
    "greedy_order",
    "parse_csplib",
    "sequence",
    "solve_cp",
    "solve_heuristic",
    "violations",
]


@dataclass(frozen=True)
class CarSequencing:
    """An instance: ``counts[c]`` cars of class ``c``; ``requires[c][o]`` if class ``c``
    needs option ``o``; at most ``p[o]`` cars with option ``o`` in any ``q[o]`` in a row.

    Raises ``ValueError`` when the shapes disagree or a number is out of range.
    """

    counts: tuple[int, ...]
    requires: tuple[tuple[bool, ...], ...]
    p: tuple[int, ...]
    q: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", tuple(self.counts))
        object.__setattr__(
            self, "requires", tuple(tuple(bool(f) for f in r) for r in self.requires)
        )
        object.__setattr__(self, "p", tuple(self.p))
        object.__setattr__(self, "q", tuple(self.q))
        if not self.counts:
            raise ValueError("a car-sequencing instance needs at least one class")
        if len(self.requires) != len(self.counts):
            raise ValueError(
                f"{len(self.counts)} class counts but {len(self.requires)} option rows"
            )
        if len(self.p) != len(self.q):
            raise ValueError(f"{len(self.p)} values of p but {len(self.q)} of q")
        for c, row in enumerate(self.requires):
            if len(row) != len(self.p):
                raise ValueError(f"class {c} has {len(row)} option flags, expected {len(self.p)}")
        if any(n < 0 for n in self.counts):
            raise ValueError("class counts must be non-negative")
        for o, (p, q) in enumerate(zip(self.p, self.q, strict=True)):
            if q < 1 or p < 0:
                raise ValueError(f"option {o}: need q >= 1 and p >= 0, got p={p}, q={q}")

    @property
    def cars(self) -> int:
        """Cars to sequence."""
        return sum(self.counts)

    @property
    def options(self) -> int:
        """Options (ratio rules)."""
        return len(self.p)

    def demand(self, option: int) -> int:
        """Cars that require ``option``."""
        return sum(n for n, r in zip(self.counts, self.requires, strict=True) if r[option])

    def check(self, order: Sequence[int]) -> None:
        """Raise ``ValueError`` unless ``order`` holds each class exactly ``counts`` times."""
        seen = [0] * len(self.counts)
        for pos, c in enumerate(order):
            if not 0 <= c < len(self.counts):
                raise ValueError(f"position {pos}: class {c} is not in 0..{len(self.counts) - 1}")
            seen[c] += 1
        wrong = [c for c, (a, b) in enumerate(zip(seen, self.counts, strict=True)) if a != b]
        if wrong:
            c = wrong[0]
            raise ValueError(f"class {c} appears {seen[c]} times, expected {self.counts[c]}")


def parse_csplib(text: str) -> list[tuple[str, CarSequencing]]:
    """Read every instance of a CSPLib 001 file, named by its ``# instance NAME`` comment.

    Per instance: ``cars options classes``; a line of ``p``; a line of ``q``; one line
    per class ``id count flag_1 .. flag_K`` with ids ``0, 1, ...`` in order. Other
    comment lines are skipped; an instance without a name comment is numbered. Raises
    ``ValueError`` naming the line of the first fault.
    """
    rows: list[tuple[int, list[int], str | None]] = []
    name: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            words = stripped.lstrip("#").split()
            if len(words) >= 2 and words[0].lower() == "instance":
                name = words[1]
            continue
        if not stripped:
            continue
        try:
            rows.append((n, [int(v) for v in stripped.split()], name))
        except ValueError:
            raise ValueError(f"line {n}: expected integers, got {stripped!r}") from None
        name = None
    out: list[tuple[str, CarSequencing]] = []
    at = 0
    while at < len(rows):
        n, head, label = rows[at]
        if len(head) != 3:
            raise ValueError(f"line {n}: expected 'cars options classes', got {head}")
        cars, k, classes = head
        if at + 3 + classes > len(rows):
            raise ValueError(f"line {n}: the instance ends early (expected {classes} classes)")
        (pn, p, _), (qn, q, _) = rows[at + 1], rows[at + 2]
        for line_no, values, what in ((pn, p, "p"), (qn, q, "q")):
            if len(values) != k:
                raise ValueError(f"line {line_no}: expected {k} values of {what}")
        counts, requires = [], []
        for c in range(classes):
            cn, values, _ = rows[at + 3 + c]
            if len(values) != 2 + k or values[0] != c:
                raise ValueError(f"line {cn}: expected 'id count' and {k} flags for class {c}")
            if any(f not in (0, 1) for f in values[2:]):
                raise ValueError(f"line {cn}: option flags must be 0 or 1")
            counts.append(values[1])
            requires.append(tuple(bool(f) for f in values[2:]))
        if sum(counts) != cars:
            raise ValueError(f"line {n}: the class counts add up to {sum(counts)}, not {cars}")
        try:
            instance = CarSequencing(tuple(counts), tuple(requires), tuple(p), tuple(q))
        except ValueError as e:
            raise ValueError(f"line {n}: {e}") from None
        out.append((label or str(len(out) + 1), instance))
        at += 3 + classes
    return out


def _windows(n: int, q: int) -> int:
    """How many windows of ``q`` a sequence of ``n`` has (one if it is shorter)."""
    return max(1, n - q + 1)


def violations(instance: CarSequencing, order: Sequence[int]) -> int:
    """Windows over capacity, summed over options (see the module docstring).

    A full recount, O(K * n). Class ids must be valid (``ValueError`` otherwise); the
    class counts are not checked here (``CarSequencing.check`` does that).
    """
    for pos, c in enumerate(order):
        if not 0 <= c < len(instance.counts):
            raise ValueError(f"position {pos}: class {c} is not in 0..{len(instance.counts) - 1}")
    flags = instance.requires
    return sum(
        _violated([int(flags[c][o]) for c in order], instance.p[o], instance.q[o])
        for o in range(instance.options)
    )


def _violated(bits: Sequence[int], p: int, q: int) -> int:
    count = sum(bits[:q])
    out = int(count > p)
    for s in range(1, len(bits) - q + 1):
        count += bits[s + q - 1] - bits[s - 1]
        out += count > p
    return out


class WindowCounts:
    """A sequence with the count of every ratio window kept up to date.

    ``flags[item][rule]`` says whether an item (a car class, an order) counts for a rule
    with capacity ``p[rule]`` of ``q[rule]``. ``total`` is the number of violated windows;
    ``swap_delta``/``insert_delta`` say what a move would change it by without making it,
    and ``swap``/``insert`` make it. A window changes only if it touches a moved position,
    so a swap costs O(sum q) and an insertion O(K * (|i - j| + max q)).
    """

    def __init__(
        self,
        flags: Sequence[Sequence[bool]],
        p: Sequence[int],
        q: Sequence[int],
        order: Sequence[int],
    ) -> None:
        self.flags = [[int(f) for f in row] for row in flags]
        self.p = list(p)
        self.q = list(q)
        self.order = list(order)
        n = len(self.order)
        self.bits = [[self.flags[c][r] for c in self.order] for r in range(len(self.p))]
        self.counts: list[list[int]] = []
        self.total = 0
        for r, bits in enumerate(self.bits):
            q_r = self.q[r]
            counts = [sum(bits[s : s + q_r]) for s in range(_windows(n, q_r))]
            self.counts.append(counts)
            self.total += sum(c > self.p[r] for c in counts)

    def violated(self) -> list[tuple[int, int]]:
        """Every ``(rule, window start)`` over capacity."""
        return [
            (r, s)
            for r, counts in enumerate(self.counts)
            for s, c in enumerate(counts)
            if c > self.p[r]
        ]

    def _span(self, r: int, x: int) -> tuple[int, int]:
        """The first and last window (start) holding position ``x`` for rule ``r``."""
        return max(0, x - self.q[r] + 1), min(x, len(self.counts[r]) - 1)

    def swap_delta(self, i: int, j: int) -> int:
        """The change in ``total`` if the items at ``i`` and ``j`` were swapped."""
        if i == j:
            return 0
        if i > j:
            i, j = j, i
        delta = 0
        for r, bits in enumerate(self.bits):
            d = bits[j] - bits[i]  # the change at i; j changes by -d
            if not d:
                continue
            counts, p = self.counts[r], self.p[r]
            a_i, b_i = self._span(r, i)
            a_j, b_j = self._span(r, j)
            for s, change in (
                (range(a_i, min(b_i, a_j - 1) + 1), d),
                (range(max(a_j, b_i + 1), b_j + 1), -d),
            ):
                if change > 0:
                    delta += sum(counts[t] == p for t in s)
                else:
                    delta -= sum(counts[t] == p + 1 for t in s)
        return delta

    def swap(self, i: int, j: int) -> None:
        """Swap the items at ``i`` and ``j``."""
        if i == j:
            return
        if i > j:
            i, j = j, i
        order = self.order
        order[i], order[j] = order[j], order[i]
        for r, bits in enumerate(self.bits):
            d = bits[j] - bits[i]
            if not d:
                continue
            bits[i], bits[j] = bits[j], bits[i]
            counts, p = self.counts[r], self.p[r]
            a_i, b_i = self._span(r, i)
            a_j, b_j = self._span(r, j)
            for s, change in (
                (range(a_i, min(b_i, a_j - 1) + 1), d),
                (range(max(a_j, b_i + 1), b_j + 1), -d),
            ):
                for t in s:
                    before = counts[t] > p
                    counts[t] += change
                    self.total += (counts[t] > p) - before

    def _moved(self, bits: list[int], i: int, j: int) -> list[int]:
        """The bits of positions ``min(i, j) .. max(i, j)`` after moving ``i`` to ``j``."""
        if i < j:
            return [*bits[i + 1 : j + 1], bits[i]]
        return [bits[i], *bits[j:i]]

    def _insert_changes(self, r: int, i: int, j: int) -> list[tuple[int, int]]:
        """``(window, change)`` for the windows of rule ``r`` that moving ``i`` to ``j`` alters."""
        bits = self.bits[r]
        lo, hi = min(i, j), max(i, j)
        new = self._moved(bits, i, j)
        diff = [b - a for a, b in zip(bits[lo : hi + 1], new, strict=True)]
        if not any(diff):
            return []
        q = self.q[r]
        first, last = max(0, lo - q + 1), min(hi, len(self.counts[r]) - 1)
        run = sum(diff[max(lo, first) - lo : min(hi, first + q - 1) - lo + 1])
        out = []
        for s in range(first, last + 1):
            if s > first:
                if lo <= s - 1 <= hi:
                    run -= diff[s - 1 - lo]
                if lo <= s + q - 1 <= hi:
                    run += diff[s + q - 1 - lo]
            if run:
                out.append((s, run))
        return out

    def insert_delta(self, i: int, j: int) -> int:
        """The change in ``total`` if the item at ``i`` were taken out and put back at ``j``."""
        if i == j:
            return 0
        delta = 0
        for r in range(len(self.bits)):
            counts, p = self.counts[r], self.p[r]
            for s, change in self._insert_changes(r, i, j):
                delta += (counts[s] + change > p) - (counts[s] > p)
        return delta

    def insert(self, i: int, j: int) -> None:
        """Take the item at ``i`` out and put it back so that it ends at position ``j``."""
        if i == j:
            return
        for r, bits in enumerate(self.bits):
            counts, p = self.counts[r], self.p[r]
            for s, change in self._insert_changes(r, i, j):
                before = counts[s] > p
                counts[s] += change
                self.total += (counts[s] > p) - before
            lo, hi = min(i, j), max(i, j)
            bits[lo : hi + 1] = self._moved(bits, i, j)
        item = self.order.pop(i)
        self.order.insert(j, item)


@dataclass(frozen=True)
class Sequencing:
    """An order of all cars (class ids) and how it was found.

    ``method`` is ``"greedy"``, ``"local search"``, ``"cp-sat"`` or ``"hint"`` (the
    order given to CP-SAT, returned when it found none in time). ``optimal`` is proven:
    zero violations, which nothing beats.
    """

    order: tuple[int, ...]
    violations: int
    method: str
    optimal: bool
    seconds: float


def _check_limit(time_limit: float) -> None:
    if not time_limit > 0:
        raise ValueError(f"time_limit must be positive, got {time_limit!r}")


def greedy_order(instance: CarSequencing, rng: random.Random | None = None) -> list[int]:
    """A sequence built slot by slot, each slot taking the class that breaks fewest windows.

    Ties go to the class whose options are hardest to place now: the largest sum, over
    its options, of the utilization ``left_demand * q / (p * slots_left)`` (Gottlieb et
    al.'s DSU rule); remaining ties are broken by ``rng`` (or by class id without one).
    """
    k = instance.options
    left = list(instance.counts)
    demand = [instance.demand(o) for o in range(k)]
    recent: list[list[int]] = [[] for _ in range(k)]  # last q-1 bits per option
    n = instance.cars
    out: list[int] = []
    for t in range(n):
        slots = n - t
        util = [
            demand[o] * instance.q[o] / (max(instance.p[o], 1) * slots) if demand[o] else 0.0
            for o in range(k)
        ]
        best: tuple[float, ...] | None = None
        pick = -1
        for c, count in enumerate(left):
            if not count:
                continue
            req = instance.requires[c]
            added = sum(sum(recent[o]) + 1 > instance.p[o] for o in range(k) if req[o])
            key = (added, -sum(util[o] for o in range(k) if req[o]), rng.random() if rng else c)
            if best is None or key < best:
                best, pick = key, c
        out.append(pick)
        left[pick] -= 1
        for o in range(k):
            bit = int(instance.requires[pick][o])
            demand[o] -= bit
            recent[o].append(bit)
            if len(recent[o]) > instance.q[o] - 1:
                recent[o].pop(0)
    return out


def solve_heuristic(
    instance: CarSequencing, *, seed: int = 0, time_limit: float = 5.0
) -> Sequencing:
    """Greedy construction, then local search until zero violations or the time limit.

    Each step takes a car in a violated window, evaluates swapping it with every car of
    another class and moving it to a few nearby positions (deltas computed
    incrementally by ``WindowCounts``), and makes the best move if it does not make
    things worse; plateau moves let it walk across equal-cost sequences. Raises
    ``ValueError`` for a non-positive ``time_limit``.
    """
    _check_limit(time_limit)
    started = time.perf_counter()
    rng = random.Random(seed)
    state = WindowCounts(instance.requires, instance.p, instance.q, greedy_order(instance, rng))
    method = "greedy"
    n = len(state.order)
    reach = 2 * max(instance.q)
    while state.total and time.perf_counter() - started < time_limit:
        method = "local search"
        for _ in range(50):  # check the clock every few dozen steps
            if not state.total:
                break
            _step(state, rng, n, reach)
    return Sequencing(
        tuple(state.order),
        state.total,
        method,
        state.total == 0,
        time.perf_counter() - started,
    )


def _step(state: WindowCounts, rng: random.Random, n: int, reach: int) -> None:
    """One local-search move from a car in a violated window (see ``solve_heuristic``)."""
    r, s = rng.choice(state.violated())
    bits = state.bits[r]
    i = rng.choice([x for x in range(s, min(n, s + state.q[r])) if bits[x]])
    best = None
    moves: list[tuple[str, int]] = []
    item = state.order[i]
    for j in range(n):
        if state.order[j] == item:
            continue
        d = state.swap_delta(i, j)
        if best is None or d < best:
            best, moves = d, [("swap", j)]
        elif d == best:
            moves.append(("swap", j))
    for _ in range(4):
        j = min(n - 1, max(0, i + rng.randint(-reach, reach)))
        if j == i:
            continue
        d = state.insert_delta(i, j)
        if best is None or d < best:
            best, moves = d, [("insert", j)]
        elif d == best:
            moves.append(("insert", j))
    if best is None or best > 0:
        if best is not None and rng.random() < 0.02:  # a rare uphill step out of a trap
            kind, j = rng.choice(moves)
        else:
            return
    else:
        kind, j = rng.choice(moves)
    if kind == "swap":
        state.swap(i, j)
    else:
        state.insert(i, j)


def solve_cp(
    instance: CarSequencing,
    *,
    time_limit: float = 10.0,
    workers: int | None = None,
    hint: Sequence[int] | None = None,
) -> Sequencing:
    """CP-SAT with every window a hard constraint: a sequence it finds has no violation.

    ``hint`` (an order of all cars, a heuristic's for example) guides the search. When
    CP-SAT finds nothing in time, or proves that no sequence meets every window, the
    answer is the hint (method ``"hint"``) or the greedy order, with its violations.
    Raises ``ValueError`` for a bad hint, limit or worker count; ``LiquidfabError`` if
    the solver itself fails.
    """
    _check_limit(time_limit)
    started = time.perf_counter()
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}")
    if hint is not None:
        instance.check(hint)
    n, k, classes = instance.cars, instance.options, len(instance.counts)
    model = cp_model.CpModel()
    x = [[model.new_bool_var(f"x{t}_{c}") for c in range(classes)] for t in range(n)]
    for t in range(n):
        model.add_exactly_one(x[t])
    for c in range(classes):
        model.add(sum(x[t][c] for t in range(n)) == instance.counts[c])
    for o in range(k):
        with_o = [c for c in range(classes) if instance.requires[c][o]]
        if not with_o:
            continue
        y = [model.new_bool_var(f"y{t}_{o}") for t in range(n)]
        for t in range(n):
            model.add(y[t] == sum(x[t][c] for c in with_o))
        p, q = instance.p[o], instance.q[o]
        for s in range(_windows(n, q)):
            model.add(sum(y[s : s + q]) <= p)
        demand = instance.demand(o)
        for m in range(1, (n - 1) // q + 1):
            need = demand - m * p
            if need <= 0:
                break
            model.add(sum(y[: n - m * q]) >= need)  # the last m*q slots hold <= m*p
            model.add(sum(y[m * q :]) >= need)  # and so do the first m*q
    if hint is not None:
        for t, c in enumerate(hint):
            for cc in range(classes):
                model.add_hint(x[t][cc], cc == c)
    status, solver = solve_model(model, time_limit - (time.perf_counter() - started), workers)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        order = [next(c for c in range(classes) if solver.boolean_value(x[t][c])) for t in range(n)]
        method = "cp-sat"
    else:
        order = list(hint) if hint is not None else greedy_order(instance)
        method = "hint" if hint is not None else "greedy"
    count = violations(instance, order)
    return Sequencing(tuple(order), count, method, count == 0, time.perf_counter() - started)


def sequence(
    instance: CarSequencing,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    workers: int | None = None,
    heuristic_share: float = 0.3,
) -> Sequencing:
    """The heuristic first, then CP-SAT (hinted with its order) in the time left; the better.

    The heuristic gets ``heuristic_share`` of ``time_limit``; when it reaches zero
    violations CP-SAT is not run. ``seconds`` of the answer is the total. Raises
    ``ValueError`` for a bad limit or share.
    """
    _check_limit(time_limit)
    if not 0 < heuristic_share <= 1:
        raise ValueError(f"heuristic_share must be in (0, 1], got {heuristic_share!r}")
    started = time.perf_counter()
    best = solve_heuristic(instance, seed=seed, time_limit=time_limit * heuristic_share)
    left = time_limit - (time.perf_counter() - started)
    if best.violations and left > 0:
        exact = solve_cp(instance, time_limit=left, workers=workers, hint=best.order)
        if exact.violations < best.violations:
            best = exact
    return Sequencing(
        best.order, best.violations, best.method, best.optimal, time.perf_counter() - started
    )
