"""The configurator: checks, completes, counts and explains a customer's choices.

Every question goes to OR-Tools CP-SAT through one model of the product built when the
``Configurator`` is made (``liquidfab.product.cpsat`` translates the expressions
exactly). A question's choices are added to a private copy of that model, so one
configurator serves many threads, and every solve runs under the time limit: a result
always says whether the limit cut it short (``timed_out``), it never hangs.

When choices cannot be completed, the answer names why: a *minimal* conflict, the
smallest set of the customer's choices and the product's rules that cannot hold together
(drop any one member and the rest can), in words. Conflicts come from a second model in
which each rule is enforced by its own assumption literal, CP-SAT's sufficient
assumptions for infeasibility give a first core, and deletion shrinks it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar

from ortools.sat.python import cp_model

from liquidfab.errors import ProductError
from liquidfab.product.cpsat import Num, Translation
from liquidfab.product.definition import Constraint, Line, Option, Product
from liquidfab.product.expressions import ExpressionError, Value, evaluate, names, parse
from liquidfab.product.resolved import (
    Resolved,
    coerce_choices,
    money,
    money_text,
    resolve,
    violated,
)

__all__ = [
    "DOMAIN_LIST_LIMIT",
    "LEAF_COMBINATIONS",
    "OBJECTIVES",
    "Check",
    "Completion",
    "Configurator",
    "Conflict",
    "Count",
    "Domains",
    "PriceExplanation",
    "PriceItem",
    "ValueRange",
]

#: Numeric options with more values than this get a ``ValueRange`` in ``Domains``.
DOMAIN_LIST_LIMIT = 200

#: The named objectives of ``Configurator.complete``; any other text is an expression.
OBJECTIVES = ("price", "cost", "time")

_OK = (cp_model.OPTIMAL, cp_model.FEASIBLE)
_SMALL_MODEL = 20_000  # variables; below this, one worker without presolve answers fastest


def _plain(value: Value | Fraction | None) -> Any:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value


def _big(n: int) -> str:
    """A count for people: digits grouped, or about 5.11e+180 when it is that large."""
    return f"{n:,}" if n < 10**15 else f"about {Decimal(n):.3g}"


def _plain_choices(choices: Mapping[str, Value]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in choices.items()}


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """Choices and rules that cannot hold together; ``minimal`` if none of them is spare."""

    constraints: list[Constraint]
    choices: dict[str, Value]
    sentences: list[str]
    minimal: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "constraints": [
                {"id": c.id, "message": c.message, "kind": c.kind, "rule": c.text}
                for c in self.constraints
            ],
            "choices": _plain_choices(self.choices),
            "sentences": list(self.sentences),
            "minimal": self.minimal,
        }


@dataclass(frozen=True)
class Check:
    """Whether choices can be completed to a valid variant (None: the time limit decided)."""

    valid: bool | None
    conflict: Conflict | None
    timed_out: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "conflict": self.conflict.to_dict() if self.conflict else None,
            "timed_out": self.timed_out,
        }


@dataclass(frozen=True)
class Completion:
    """The best valid variant found for the objective; ``optimal`` when proven best."""

    resolved: Resolved | None
    optimal: bool
    timed_out: bool
    conflict: Conflict | None
    objective: str
    objective_value: Fraction | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolved": self.resolved.to_dict() if self.resolved else None,
            "optimal": self.optimal,
            "timed_out": self.timed_out,
            "conflict": self.conflict.to_dict() if self.conflict else None,
            "objective": self.objective,
            "objective_value": _plain(self.objective_value),
        }


@dataclass(frozen=True)
class Count:
    """How many valid variants there are; when not ``exact``, ``count`` is a lower bound."""

    count: int
    exact: bool
    timed_out: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "exact": self.exact,
            "timed_out": self.timed_out,
            "note": self.note,
        }


@dataclass(frozen=True)
class ValueRange:
    """The lowest and highest values still possible of a numeric option with many values.

    Values in between, on the option's step grid, are not all guaranteed possible:
    ``Configurator.check`` tells for one of them.
    """

    min: Fraction
    max: Fraction
    step: Fraction

    def to_dict(self) -> dict[str, Any]:
        return {"min": _plain(self.min), "max": _plain(self.max), "step": _plain(self.step)}


@dataclass(frozen=True)
class Domains:
    """For each option, the values that still lead to a valid variant.

    ``possible[name]`` is a list of values in the option's order, except for int and
    decimal options with more than ``DOMAIN_LIST_LIMIT`` values, which get a
    ``ValueRange`` (rendered ``{"min", "max", "step"}`` by ``to_dict``). A chosen option
    lists just its chosen value. ``forced`` holds the unchosen options left with exactly
    one value. With ``timed_out``, lists hold the values proven possible before the
    limit, so some possible values may be missing and nothing is reported as forced.
    When the choices conflict, ``possible`` and ``forced`` are empty and ``conflict``
    says why.
    """

    possible: dict[str, list[Value] | ValueRange]
    forced: dict[str, Value]
    conflict: Conflict | None
    timed_out: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "possible": {
                k: v.to_dict() if isinstance(v, ValueRange) else [_plain(x) for x in v]
                for k, v in self.possible.items()
            },
            "forced": _plain_choices(self.forced),
            "conflict": self.conflict.to_dict() if self.conflict else None,
            "timed_out": self.timed_out,
        }


@dataclass(frozen=True)
class PriceItem:
    """One line of a price: the rule that adds it (``when``, ``formula``) and why it applies."""

    id: str
    label: str
    amount: Decimal
    when: str | None
    formula: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "amount": money_text(self.amount),
            "when": self.when,
            "formula": self.formula,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PriceExplanation:
    """A price line by line; ``total`` is None until every option is chosen."""

    lines: list[PriceItem]
    total: Decimal | None
    currency: str
    sentences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.to_dict() for line in self.lines],
            "total": money_text(self.total) if self.total is not None else None,
            "currency": self.currency,
            "sentences": list(self.sentences),
        }


# --- words ------------------------------------------------------------------------------


def _lower(label: str) -> str:
    if len(label) > 1 and label[1].isupper():
        return label  # an acronym such as "LED colour"
    return label[:1].lower() + label[1:]


def _say(option: Option, value: Value) -> str:
    return f"{_lower(option.label)} {option.show(value)}"


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _conflict_sentences(
    product: Product, constraints: Sequence[Constraint], choices: Mapping[str, Value]
) -> list[str]:
    out = []
    if not choices:
        out.append("No variant can keep all of these rules at once.")
    for c in constraints:
        mine = [n for n in product.options if n in choices and n in c.options]
        if mine:
            said = _join([_say(product.options[n], choices[n]) for n in mine])
            out.append(f"You chose {said}, but: {_sentence(c.message)}")
        elif choices:
            out.append(f"And: {_sentence(c.message)}")
        else:
            out.append(_sentence(c.message))
    return out


# --- solving ----------------------------------------------------------------------------


T = TypeVar("T")


def _guarded(t: Translation, build: Callable[[], T]) -> T:
    """Run a translation step; whatever fails in it is reported as a ProductError."""
    try:
        return build()
    except ProductError:
        raise
    except (ArithmeticError, TypeError, ValueError, RuntimeError) as e:
        raise ProductError(
            [(t.where, None, f"cannot be given to the solver: {e}")], "<solver>"
        ) from e


def _build(
    product: Product,
    *,
    enforced: bool,
    options: Sequence[str] | None = None,
    constraints: Sequence[Constraint] | None = None,
) -> tuple[Translation, list[int]]:
    """A model of the product's rules (or of some rules over some options).

    ``enforced`` gives each rule its own enforcement literal (returned in rule order), so
    assumptions can switch rules on one by one to explain a conflict.
    """
    t = Translation(product)
    enable: list[int] = []

    def run() -> None:
        t.declare(options)
        for c in product.constraints if constraints is None else constraints:
            t.where = f"constraints.{c.id}"
            if enforced:
                a = t.new_literal(f"enable:{c.id}")
                t.require(c.expr, [a])
                enable.append(a)
            else:
                t.require(c.expr)

    _guarded(t, run)
    return t, enable


class _Clock:
    """The time left of one question (its solves share the configurator's time limit)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def _solve(
    model: cp_model.CpModel,
    clock: _Clock,
    *,
    quick: bool = True,
    workers: int = 1,
    callback: cp_model.CpSolverSolutionCallback | None = None,
    enumerate_all: bool = False,
) -> tuple[Any, cp_model.CpSolver]:
    """Run CP-SAT; its failures become ProductError, never a raw OR-Tools exception.

    The solve gets the time ``clock`` has left; when none is left it does not start and
    the status is UNKNOWN. ``quick`` skips presolve, linearization, symmetry and probing:
    on a product-sized model they cost several milliseconds and save nothing (0.4 ms
    against 6 ms a check on the e-bike).
    """
    solver = cp_model.CpSolver()
    seconds = clock.left()
    if seconds <= 0:
        return cp_model.UNKNOWN, solver
    params = solver.parameters
    params.max_time_in_seconds = seconds
    params.num_workers = workers
    if quick:
        params.cp_model_presolve = False
        params.linearization_level = 0
        params.symmetry_level = 0
        params.cp_model_probing_level = 0
        params.use_sat_inprocessing = False
    if enumerate_all:
        params.enumerate_all_solutions = True
    try:
        status = solver.solve(model, callback)
    except Exception as e:  # OR-Tools raises RuntimeError, ValueError and others
        raise ProductError([("", None, f"the solver failed: {e}")], "<solver>") from e
    if status == cp_model.MODEL_INVALID:
        raise ProductError(
            [("", None, f"the solver rejected the model: {model.validate()}")], "<solver>"
        )
    return status, solver


class _Counter(cp_model.CpSolverSolutionCallback):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.count = 0
        self.limit = limit
        self.stopped = False

    def on_solution_callback(self) -> None:
        self.count += 1
        if self.count >= self.limit:
            self.stopped = True
            self.stop_search()


#: A group of connected options with at most this many combinations is enumerated
#: with CP-SAT; a larger one is split on its most connected option first.
LEAF_COMBINATIONS = 300


class _Counting:
    """One count: groups multiply, large groups split on an option (summing over its
    values), small groups are enumerated; results are remembered by group and by the
    values of the chosen or split options its rules read.

    Every result is a pair of bounds (equal when exact); ``stop`` says what cut the
    count short ("time" or "limit"), if anything did.
    """

    def __init__(
        self, product: Product, values: Mapping[str, Value], limit: int, clock: _Clock
    ) -> None:
        self.product = product
        self.values = values
        self.left = limit
        self.clock = clock
        self.memo: dict[tuple[frozenset[str], tuple[tuple[str, Value], ...]], tuple] = {}
        self.stop: str | None = None
        self.enumerated = 0
        self.models: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[Translation, set]] = {}

    def size(self, names: Sequence[str]) -> int:
        out = 1
        for n in names:
            out *= self.product.options[n].size
        return out

    def run(self) -> tuple[int, int, str | None]:
        live = []
        for c in self.product.constraints:
            if all(n in self.values for n in c.options):
                if not evaluate(c.expr, self.values):
                    return 0, 0, c.id
            else:
                live.append(c)
        free = [n for n in self.product.options if n not in self.values]
        lower, upper = self.split(free, live, self.values)
        return lower, upper, None

    def split(
        self, free: list[str], cons: list[Constraint], fixed: Mapping[str, Value]
    ) -> tuple[int, int]:
        parent = {n: n for n in free}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for c in cons:
            open_ = [n for n in c.options if n not in fixed]
            for n in open_[1:]:
                parent[find(n)] = find(open_[0])
        groups: dict[str, tuple[list[str], list[Constraint]]] = {}
        for n in free:
            groups.setdefault(find(n), ([], []))[0].append(n)
        for c in cons:
            first = next(n for n in c.options if n not in fixed)
            groups[find(first)][1].append(c)
        lower = upper = 1
        for opts, gcons in sorted(groups.values(), key=lambda g: self.size(g[0])):
            if gcons:
                lo, hi = self.group(opts, gcons, fixed)
            else:
                lo = hi = self.size(opts)
            if hi == 0:
                return 0, 0
            lower, upper = lower * lo, upper * hi
        return lower, upper

    def group(
        self, opts: list[str], cons: list[Constraint], fixed: Mapping[str, Value]
    ) -> tuple[int, int]:
        read = sorted({n for c in cons for n in c.options if n in fixed})
        key = (frozenset(opts), tuple((n, fixed[n]) for n in read))
        got = self.memo.get(key)
        if got is not None:
            return got
        size = self.size(opts)
        if self.stop is not None or self.clock.left() <= 0:
            self.stop = self.stop or "time"
            return 0, size
        if size <= LEAF_COMBINATIONS:
            got = self.enumerate(opts, cons, fixed, size)
        else:
            got = self.branch(opts, cons, fixed)
        if got[0] == got[1]:
            self.memo[key] = got
        return got

    def branch(
        self, opts: list[str], cons: list[Constraint], fixed: Mapping[str, Value]
    ) -> tuple[int, int]:
        degree = {n: 0 for n in opts}
        for c in cons:
            for n in c.options:
                if n in degree:
                    degree[n] += 1
        options = self.product.options
        pick = max(opts, key=lambda n: (degree[n], -options[n].size))
        rest = [n for n in opts if n != pick]
        lower = upper = 0
        for value in options[pick].domain():
            env = {**fixed, pick: value}
            live = []
            for c in cons:
                if pick in c.options and all(n in env for n in c.options):
                    if not evaluate(c.expr, env):
                        break
                else:
                    live.append(c)
            else:
                lo, hi = self.split(rest, live, env)
                lower, upper = lower + lo, upper + hi
        return lower, upper

    def enumerate(
        self, opts: list[str], cons: list[Constraint], fixed: Mapping[str, Value], size: int
    ) -> tuple[int, int]:
        if self.left <= 0:
            self.stop = "limit"
            return 0, size
        shape = (tuple(opts), tuple(c.id for c in cons))
        if shape not in self.models:
            t, _ = _build(self.product, enforced=False, options=opts, constraints=cons)
            read = {n for c in cons for n in c.options}
            self.models[shape] = (t, {n for n in read if n not in opts})
        t, outside = self.models[shape]
        model = t.model.clone()
        for n in outside:
            t.fix_in(model, n, fixed[n])
        counter = _Counter(self.left)
        status, _ = _solve(model, self.clock, callback=counter, enumerate_all=True)
        self.left -= counter.count
        self.enumerated += counter.count
        if status == cp_model.INFEASIBLE:
            return 0, 0
        if status == cp_model.OPTIMAL and not counter.stopped:
            return counter.count, counter.count
        self.stop = "limit" if counter.stopped else "time"
        return counter.count, size


class Configurator:
    """Answers questions about one product's variants with CP-SAT, each within ``time_limit``.

    ``time_limit`` (seconds) bounds each call as a whole, including the several solves
    that domains, counting and conflict shrinking need. Choices are mappings of option
    ids to raw values (as ``coerce_choices`` reads them); unknown options and values
    outside an option's domain raise ``ProductError``.
    """

    def __init__(self, product: Product, *, time_limit: float = 2.0) -> None:
        if not time_limit > 0:
            raise ValueError("time_limit is a positive number of seconds")
        self.product = product
        self.time_limit = float(time_limit)
        self._lock = threading.Lock()
        self._hard = _build(product, enforced=False)[0]
        self._soft: tuple[Translation, list[int]] | None = None
        self._objectives: dict[str, Num] = {}
        small = len(self._hard.model.proto.variables) < _SMALL_MODEL
        self._quick = small
        self._workers = 1 if small else 0
        self._contradiction: tuple[Conflict | None] | None = None

    # --- shared helpers -----------------------------------------------------------------

    def _coerce(self, choices: Mapping[str, Any] | None) -> dict[str, Value]:
        if choices is None:
            return {}
        if not isinstance(choices, Mapping):
            raise ProductError(
                [("", None, "choices are a mapping of option ids to values")], "<configuration>"
            )
        return coerce_choices(self.product, choices)

    def _fixed_clone(self, values: Mapping[str, Value]) -> cp_model.CpModel:
        with self._lock:
            model = self._hard.model.clone()
        for name, value in values.items():
            self._hard.fix_in(model, name, value)
        return model

    def _solution(self, solver: cp_model.CpSolver) -> dict[str, Value]:
        return {name: self._hard.value_of(solver, name) for name in self.product.options}

    def _feasible(self, values: Mapping[str, Value], clock: _Clock) -> Any:
        status, _ = _solve(self._fixed_clone(values), clock, quick=self._quick)
        return status

    # --- conflicts ----------------------------------------------------------------------

    def _soft_model(self) -> tuple[Translation, list[int]]:
        with self._lock:
            if self._soft is None:
                self._soft = _build(self.product, enforced=True)
            return self._soft

    def _conflict(
        self,
        values: Mapping[str, Value],
        clock: _Clock,
        seed: tuple[list[int], list[str]] | None = None,
    ) -> tuple[Conflict | None, bool]:
        """A minimal conflict among ``values`` and the rules (None if there is none).

        ``seed`` (constraint positions, option names) is a set already known to conflict.
        The second item says whether the time limit cut the search short.
        """
        t, enable = self._soft_model()
        with self._lock:
            model = t.model.clone()
        constraints = self.product.constraints
        # members: constraints first (so they are tried for removal first), then choices
        members: list[tuple[str, Any]] = [("rule", i) for i in range(len(constraints))]
        members += [("choice", name) for name in values]
        lits = [t.obj(a) for a in enable]
        lits += [t.assume_in(model, name, value) for name, value in values.items()]
        position = {lit.index: i for i, lit in enumerate(lits)}

        def attempt(subset: list[int]) -> tuple[Any, list[int] | None]:
            model.clear_assumptions()
            model.add_assumptions([lits[i] for i in subset])
            status, solver = _solve(model, clock, quick=self._quick)
            if status != cp_model.INFEASIBLE:
                return status, None
            core = {
                position[j]
                for j in solver.sufficient_assumptions_for_infeasibility()
                if j in position
            }
            return status, ([i for i in subset if i in core] or subset)

        if seed is None:
            status, core = attempt(list(range(len(members))))
            if status in _OK:
                return None, False
            if core is None:
                return None, True  # out of time before any core: say so, name nothing
        else:
            rules, chosen = seed
            core = list(rules) + [len(constraints) + list(values).index(n) for n in chosen]
        necessary: list[int] = []
        candidates = list(core)
        minimal, timed_out = True, False
        while candidates:
            m = candidates.pop(0)
            status, smaller = attempt(necessary + candidates)
            if status == cp_model.INFEASIBLE:
                assert smaller is not None
                keep = set(smaller)
                candidates = [c for c in candidates if c in keep]
            elif status in _OK:
                necessary.append(m)
            else:
                necessary.append(m)
                minimal, timed_out = False, True
        return self._make_conflict(members, necessary, minimal, values), timed_out

    def _make_conflict(
        self,
        members: list[tuple[str, Any]],
        chosen: list[int],
        minimal: bool,
        values: Mapping[str, Value],
    ) -> Conflict:
        rules = sorted(members[i][1] for i in chosen if members[i][0] == "rule")
        picked = {members[i][1] for i in chosen if members[i][0] == "choice"}
        constraints = [self.product.constraints[i] for i in rules]
        choices = {n: values[n] for n in self.product.options if n in picked}
        return Conflict(
            constraints,
            choices,
            _conflict_sentences(self.product, constraints, choices),
            minimal,
        )

    def _explain(self, values: Mapping[str, Value], clock: _Clock) -> tuple[Conflict | None, bool]:
        """A minimal conflict for choices already known (or thought) not to complete."""
        seed = None
        if len(values) == len(self.product.options):
            broken = violated(self.product, values)
            if broken:
                c = min(broken, key=lambda c: len(c.options))
                at = self.product.constraints.index(c)
                seed = ([at], [n for n in values if n in c.options])
        conflict, timed_out = self._conflict(values, clock, seed)
        return conflict, timed_out

    # --- public API ---------------------------------------------------------------------

    def check(self, choices: Mapping[str, Any]) -> Check:
        """Whether these (partial or complete) choices lead to a valid variant, and if not why.

        A complete configuration is decided by evaluating the rules directly (exact, and
        what CP-SAT would conclude, much faster); the solver finds a minimal conflict.
        """
        values = self._coerce(choices)
        clock = _Clock(self.time_limit)
        if len(values) == len(self.product.options):
            if not violated(self.product, values):
                return Check(True, None, False)
        else:
            status = self._feasible(values, clock)
            if status in _OK:
                return Check(True, None, False)
            if status != cp_model.INFEASIBLE:
                return Check(None, None, True)
        conflict, timed_out = self._explain(values, clock)
        return Check(False, conflict, timed_out)

    def _objective(self, objective: str) -> Num:
        if not isinstance(objective, str) or not objective.strip():
            raise ProductError(
                [("objective", None, "name an objective: price, cost, time or an expression")],
                "<configuration>",
            )
        key = objective.strip()
        with self._lock:
            got = self._objectives.get(key)
            if got is not None:
                return got
            t = self._hard
            t.where = "objective"
            got = _guarded(t, lambda: self._translate_objective(t, key))
            self._objectives[key] = got
            return got

    def _translate_objective(self, t: Translation, key: str) -> Num:
        if key == "price":
            return self._price(t)
        if key == "cost":
            return self._cost(t)
        if key == "time":
            return self._time(t)
        try:
            expr = parse(key, self.product.scope, want="num", macros=self.product.derived)
        except ExpressionError as e:
            raise ProductError(
                [
                    (
                        "objective",
                        None,
                        f"{e}; give price, cost, time or a numeric expression over the options",
                    )
                ],
                "<configuration>",
            ) from None
        return t.num(expr)

    def _price(self, t: Translation) -> Num:
        parts = [t.const(Fraction(self.product.base_price))]
        for rule in self.product.price_rules:
            t.where = f"pricing.rules.{rule.id}"
            amount = t.num(rule.amount)
            if rule.when is not None:
                amount = t.select(t.lit(rule.when), amount, t.const(0))
            parts.append(amount)
        return t.add(*parts)

    def _time(self, t: Translation, *, rates: bool = False) -> Num:
        parts = [t.const(0)]
        for op in self.product.routing:
            t.where = f"routing.{op.id}"
            seconds = t.num(op.time)
            if rates:
                rate = Fraction(self.product.stations[op.station].cost_per_hour) / 3600
                seconds = t.scale(seconds, rate)
            if op.when is not None:
                seconds = t.select(t.lit(op.when), seconds, t.const(0))
            parts.append(seconds)
        return t.add(*parts)

    def _cost(self, t: Translation) -> Num:
        parts = [self._time(t, rates=True)]

        def explode(lines: Sequence[Line], parent: Num | None, path: str) -> None:
            for line in lines:
                t.where = f"{path}.{line.part}"
                qty = t.num(line.quantity)
                if parent is not None:
                    qty = t.mul(parent, qty)
                if line.when is not None:
                    qty = t.select(t.lit(line.when), qty, t.const(0))
                part = self.product.parts[line.part]
                if part.supplier is not None and part.unit_cost:
                    parts.append(t.scale(qty, Fraction(part.unit_cost)))
                if part.components:
                    explode(part.components, qty, t.where)

        explode(self.product.bom, None, "bom")
        return t.add(*parts)

    def complete(
        self, choices: Mapping[str, Any], objective: str = "price", *, maximize: bool = False
    ) -> Completion:
        """The valid variant with the lowest (or highest) objective that keeps ``choices``.

        ``objective`` is ``price`` (base price plus price rules), ``cost`` (purchased parts
        of the exploded BOM plus station time at each station's hourly cost), ``time``
        (build seconds) or any numeric expression over the options and derived values.
        ``objective_value`` is exact (the price lines of ``resolved`` are rounded to six
        decimals each). Validity is the product's rules; if the best variant then cannot
        be resolved (a quantity or time below zero), ``resolve``'s ProductError says so.
        """
        values = self._coerce(choices)
        clock = _Clock(self.time_limit)
        num = self._objective(objective)
        label = objective.strip()
        model = self._fixed_clone(values)
        expr = self._hard.linear(num)
        if maximize:
            model.maximize(expr)
        else:
            model.minimize(expr)
        status, solver = _solve(model, clock, quick=self._quick, workers=self._workers)
        if status == cp_model.INFEASIBLE:
            conflict, _ = self._explain(values, clock)
            return Completion(None, False, False, conflict, label, None)
        if status not in _OK:
            return Completion(None, False, True, None, label, None)
        solution = self._solution(solver)
        value = Fraction(int(solver.value(expr)) if not isinstance(expr, int) else expr, num.den)
        resolved = resolve(self.product, solution)
        optimal = status == cp_model.OPTIMAL
        return Completion(resolved, optimal, not optimal, None, label, value)

    def count(self, choices: Mapping[str, Any] | None = None, *, limit: int = 1_000_000) -> Count:
        """How many valid variants keep ``choices`` (all of them, with none).

        Options fall into groups that rules connect, whose counts multiply. A group with
        at most ``LEAF_COMBINATIONS`` combinations is enumerated with CP-SAT; a larger one
        is split on its most connected option, each value counted on its own (the rest
        often falls apart into smaller groups), and groups already counted under the same
        values are remembered. ``limit`` caps the solutions enumerated in all; when it or
        the time limit stops the count, ``count`` is a lower bound (``exact`` False) and
        the note gives an upper bound too.
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError("limit is a positive number of solutions")
        values = self._coerce(choices)
        clock = _Clock(self.time_limit)
        # the decomposition gets three quarters of the time; if it cannot finish, the
        # rest goes to plain enumeration, for a lower bound (or an exact small count)
        job = _Counting(self.product, values, limit, _Clock(self.time_limit * 0.75))
        lower, upper, broken = job.run()
        space = 1
        for name, option in self.product.options.items():
            if name not in values:
                space *= option.size
        if broken is not None:
            return Count(0, True, False, f"exact: no valid variant; the choices break {broken}")
        stop = job.stop
        if stop is not None and job.left > 0 and clock.left() > 0:
            counter = _Counter(job.left)
            model = self._fixed_clone(values)
            status, _ = _solve(
                model, clock, quick=self._quick, callback=counter, enumerate_all=True
            )
            job.enumerated += counter.count
            if status == cp_model.INFEASIBLE:
                return Count(0, True, False, "exact: no valid variant")
            if status == cp_model.OPTIMAL and not counter.stopped:
                lower = upper = counter.count
                stop = None
            else:
                lower = max(lower, counter.count)
                stop = "limit" if counter.stopped else "time"
        if stop is None:
            return Count(lower, True, False, f"exact: {_big(lower)} of {_big(space)} combinations")
        reason = "the time limit" if stop == "time" else f"the limit of {limit:,} solutions"
        if lower:
            note = f"lower bound: at least {_big(lower)} valid variants (at most {_big(upper)})"
        else:
            note = f"unknown: none counted yet (at most {_big(upper)} valid variants)"
        note += f"; counting stopped at {reason} after enumerating {job.enumerated:,} solutions"
        return Count(lower, False, stop == "time", note)

    def domains(self, choices: Mapping[str, Any]) -> Domains:
        """For each option, the values that still complete ``choices`` to a valid variant.

        See ``Domains`` for the shape. Values are proven possible by solutions found:
        each solve asks for a variant using one or more values not yet seen, until none
        is left or the solver proves none exists.
        """
        values = self._coerce(choices)
        clock = _Clock(self.time_limit)
        model = self._fixed_clone(values)
        status, solver = _solve(model, clock, quick=self._quick)
        if status == cp_model.INFEASIBLE:
            conflict, timed_out = self._explain(values, clock)
            return Domains({}, {}, conflict, timed_out)
        if status not in _OK:
            return Domains({}, {}, None, True)
        t = self._hard
        seen: dict[str, set[Value]] = {name: set() for name in self.product.options}

        def record(s: cp_model.CpSolver) -> None:
            for name in self.product.options:
                seen[name].add(t.value_of(s, name))

        record(solver)
        listed = [
            name
            for name, o in self.product.options.items()
            if name not in values and o.size <= DOMAIN_LIST_LIMIT
        ]
        probes: dict[tuple[str, Value], cp_model.IntVar] = {}
        timed_out = False
        while True:
            missing = [(n, v) for n in listed for v in self.product.options[n].domain()]
            missing = [(n, v) for n, v in missing if v not in seen[n]]
            if not missing:
                break
            if clock.left() <= 0:
                timed_out = True
                break
            for n, v in missing:
                if (n, v) not in probes:
                    probes[(n, v)] = t.assume_in(model, n, v)
            g = model.new_bool_var("probe")
            model.add_bool_or([probes[m] for m in missing]).only_enforce_if(g)
            model.clear_assumptions()
            model.add_assumptions([g])
            # steer the search to values not seen yet: one solve then shows many at once
            model.clear_hints()
            hinted: set[str] = set()
            for n, v in missing:
                if n not in hinted:
                    hinted.add(n)
                    t.hint_in(model, n, v)
            status, solver = _solve(model, clock, quick=self._quick)
            if status in _OK:
                record(solver)
            elif status == cp_model.INFEASIBLE:
                break
            else:
                timed_out = True
                break
        model.clear_assumptions()
        possible: dict[str, list[Value] | ValueRange] = {}
        forced: dict[str, Value] = {}
        for name, option in self.product.options.items():
            if name in values:
                possible[name] = [values[name]]
            elif option.size <= DOMAIN_LIST_LIMIT:
                possible[name] = [v for v in option.domain() if v in seen[name]]
            else:
                lo, hi, cut = self._extent(model, name, seen[name], clock)
                timed_out = timed_out or cut
                possible[name] = ValueRange(lo, hi, option.step)
        if not timed_out:
            for name, vals in possible.items():
                if name not in values and isinstance(vals, list) and len(vals) == 1:
                    forced[name] = vals[0]
        return Domains(possible, forced, None, timed_out)

    def _extent(
        self, model: cp_model.CpModel, name: str, seen: set[Value], clock: _Clock
    ) -> tuple[Fraction, Fraction, bool]:
        """The lowest and highest possible values of a numeric option, and whether the time
        limit stopped either search (the extent found so far is then returned)."""
        found = sorted(Fraction(v) for v in seen)  # type: ignore[arg-type]
        lo, hi = found[0], found[-1]
        cut = False
        k = self._hard.var(self._hard.option(name).var)
        for maximize in (False, True):
            if clock.left() <= 0:
                cut = True
                continue
            m = model.clone()
            if maximize:
                m.maximize(k)
            else:
                m.minimize(k)
            status, solver = _solve(m, clock, quick=self._quick, workers=self._workers)
            if status in _OK:
                v = self._hard.value_of(solver, name)
                lo, hi = min(lo, v), max(hi, v)  # type: ignore[type-var]
            cut = cut or status != cp_model.OPTIMAL
        return lo, hi, cut

    def explain_price(self, choices: Mapping[str, Any]) -> PriceExplanation:
        """The price of a complete configuration line by line, each with the rule behind it.

        For partial choices the price is not yet known: the explanation says which options
        are still open (``complete`` fills them in). A complete but invalid configuration
        raises ProductError naming the rules it breaks.
        """
        values = self._coerce(choices)
        product = self.product
        open_ = [o for n, o in product.options.items() if n not in values]
        if open_:
            said = _join([_lower(o.label) for o in open_])
            return PriceExplanation(
                [],
                None,
                product.currency,
                [
                    f"The price is known once every option is chosen; still open: {said}.",
                    "Complete the configuration (for example the cheapest completion) "
                    "to see the price line by line.",
                ],
            )
        resolved = resolve(product, values)
        specs = {r.id: r for r in product.spec.pricing.rules}
        rules = {r.id: r for r in product.price_rules}
        cur = product.currency
        items: list[PriceItem] = []
        sentences: list[str] = []
        for k, line in enumerate(resolved.price_lines):
            rule = None if k == 0 else rules[line.id]  # the first line is the base price
            amount = money_text(line.amount)
            if rule is None:
                items.append(
                    PriceItem(line.id, line.label, line.amount, None, None, "for every variant")
                )
                sentences.append(f"{line.label}: {amount} {cur}.")
                continue
            spec = specs[rule.id]
            when = str(spec.when) if rule.when is not None else None
            formula = None if isinstance(spec.amount, int | float) else str(spec.amount)
            used = ""
            if formula is not None and names(rule.amount):
                used = ", ".join(
                    f"{n} = {_plain_text(values[n])}" for n in _ordered(rule.amount, product)
                )
                used = f"{formula} with {used}"
            if rule.when is not None:
                shown = _join(
                    [_say(product.options[n], values[n]) for n in _ordered(rule.when, product)]
                )
                reason = f"you chose {shown} ({when})" if shown else f"{when} holds"
                if used:
                    reason += f"; {used}"
            else:
                reason = used or "for every variant"
            items.append(PriceItem(line.id, line.label, line.amount, when, formula, reason))
            if rule.when is not None:
                sentences.append(f"{line.label}: {amount} {cur}, because {reason}.")
            elif used:
                sentences.append(f"{line.label}: {amount} {cur} = {used}.")
            else:
                sentences.append(f"{line.label}: {amount} {cur}, for every variant.")
        total = resolved.price
        sentences.append(f"Total: {money_text(total)} {cur}.")
        return PriceExplanation(items, total, cur, sentences)

    def contradictions(self) -> Conflict | None:
        """When no variant at all is valid, the minimal set of rules responsible; else None.

        If the time limit passes before the solver decides, the answer is a conflict with
        no rules and ``minimal`` False, saying so; that answer is not remembered.
        """
        if self._contradiction is not None:
            return self._contradiction[0]
        clock = _Clock(self.time_limit)
        status = self._feasible({}, clock)
        if status in _OK:
            self._contradiction = (None,)
            return None
        if status == cp_model.INFEASIBLE:
            conflict, timed_out = self._conflict({}, clock)
            if conflict is not None:
                if not timed_out:
                    self._contradiction = (conflict,)
                return conflict
        return Conflict(
            [],
            {},
            ["The time limit passed before the solver could tell whether any variant is valid."],
            False,
        )


def _ordered(expr: Any, product: Product) -> list[str]:
    used = names(expr)
    return [n for n in product.options if n in used]


def _plain_text(value: Value) -> str:
    if isinstance(value, Fraction):
        return str(money(value).normalize()) if value.denominator != 1 else str(value.numerator)
    return str(value)
