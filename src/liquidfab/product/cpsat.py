"""Product expressions as a CP-SAT model, exactly.

The configurator asks questions of a product (is this valid, what is cheapest, how many
variants are there) that a constraint solver answers; this module turns the compiled
expression trees into OR-Tools CP-SAT variables and constraints without losing exactness:

- an enum option is one Boolean literal per value (exactly one is true) plus an index
  variable; a bool option is a Boolean variable; an int or decimal option is an integer
  ``k`` over its step grid, its value being ``min + k * step``;
- a number is an integer linear form over a positive common denominator
  (``Num``), so decimals and divisions by constants stay exact; a product of two
  variable terms becomes a multiplication equality whose target's bounds come from
  interval arithmetic; ``min``, ``max`` and ``abs`` use CP-SAT's own equalities and
  ``a if c else b`` two equalities enforced by ``c`` and by ``not c``;
- a true/false sub-expression is a literal reified both ways (``only_enforce_if`` on the
  literal and on its negation).

Every auxiliary variable is therefore a function of the options: a solution is one
configuration, and counting solutions counts variants. Literals are plain ints in
CP-SAT's own encoding (``i`` is variable ``i``, ``~i`` its negation) or Python booleans
for constants, so simplification and caching are cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from ortools.sat.python import cp_model

from liquidfab.errors import ProductError
from liquidfab.product.definition import Option, Product
from liquidfab.product.expressions import (
    Bin,
    Call,
    Cmp,
    Cond,
    Const,
    Expr,
    In,
    Logic,
    Neg,
    Not,
    Value,
    Var,
)

__all__ = ["MAGNITUDE_LIMIT", "Lit", "Model", "Num", "OptionVar", "Translation", "negate"]

#: The largest magnitude a linear form may reach (CP-SAT works in 64-bit integers).
MAGNITUDE_LIMIT = 2**60

Lit = bool | int
"""A literal: a constant, or a CP-SAT literal index (``~i`` is the negation of ``i``)."""


class Model(cp_model.CpModel):
    """A CpModel without the CamelCase aliases OR-Tools attaches to every instance.

    Attaching them costs about half a millisecond per model, and the configurator copies
    its model for every question it answers.
    """

    def _add_pre_pep8_methods(self) -> None:
        return None

    def clone(self) -> Model:
        """A copy of the model (same variable indices) to add one question's constraints to."""
        out = Model()
        out.proto.copy_from(self.proto)
        out.rebuild_constant_map()
        return out


def negate(lit: Lit) -> Lit:
    """The negation of a literal."""
    return (not lit) if isinstance(lit, bool) else ~lit


@dataclass(frozen=True)
class Num:
    """An exact number: ``(sum(coef * var) + const) / den`` with ``den > 0``.

    ``lo`` and ``hi`` bound the numerator, so the value lies in ``[lo/den, hi/den]``.
    """

    terms: tuple[tuple[int, int], ...]
    const: int
    den: int
    lo: int
    hi: int

    @property
    def constant(self) -> bool:
        return not self.terms

    def value(self) -> Fraction:
        """The value of a constant form."""
        return Fraction(self.const, self.den)


@dataclass
class OptionVar:
    """The CP-SAT variables of one option."""

    option: Option
    var: int  # bool: the variable; enum: the index; int/decimal: k on the step grid
    lits: dict[str, int] = field(default_factory=dict)  # enum value -> literal
    den: int = 1  # numerator of the value = base + scale * k, over den
    base: int = 0
    scale: int = 1


def _frac(value: Value) -> Fraction:
    if isinstance(value, str):  # pragma: no cover - ruled out by type checking
        raise TypeError("text used as a number")
    return Fraction(int(value)) if isinstance(value, bool) else value


class Translation:
    """A CP-SAT model of (part of) a product, built expression by expression.

    ``require`` adds a constraint (optionally enforced by literals, for conflict
    explanation), ``num`` and ``lit`` translate expressions (cached by structure, so a
    derived value shared by many rules is built once), and the ``*_in`` methods add
    per-question constraints to a clone of ``model`` without touching it.
    """

    def __init__(self, product: Product) -> None:
        self.product = product
        self.model = Model()
        self.options: dict[str, OptionVar] = {}
        self.where = "expression"
        self._vars: list[cp_model.IntVar] = []
        self._bounds: list[tuple[int, int]] = []
        self._nums: dict[Expr, Num] = {}
        self._lits: dict[Expr, Lit] = {}
        self._seen: dict[tuple[int, bool], tuple[Expr, Num | Lit]] = {}  # by id, no hashing
        self._ands: dict[frozenset[int], int] = {}

    # --- variables -------------------------------------------------------------------

    def _new_int(self, lo: int, hi: int, name: str = "") -> int:
        var = self.model.new_int_var(lo, hi, name)
        self._vars.append(var)
        self._bounds.append((lo, hi))
        assert var.index == len(self._vars) - 1
        return var.index

    def _new_bool(self, name: str = "") -> int:
        var = self.model.new_bool_var(name)
        self._vars.append(var)
        self._bounds.append((0, 1))
        assert var.index == len(self._vars) - 1
        return var.index

    def new_literal(self, name: str = "") -> int:
        """A fresh free Boolean variable (an enforcement literal, for example)."""
        return self._new_bool(name)

    def obj(self, lit: int) -> cp_model.IntVar:
        """The OR-Tools object of a (non-constant) literal."""
        return self._vars[lit] if lit >= 0 else ~self._vars[~lit]

    def var(self, index: int) -> cp_model.IntVar:
        """The OR-Tools variable of an index."""
        return self._vars[index]

    def option(self, name: str) -> OptionVar:
        """The variables of an option, created on first use."""
        got = self.options.get(name)
        if got is not None:
            return got
        option = self.product.options[name]
        if option.kind == "enum":
            lits = {v: self._new_bool(f"{name}={v}") for v in option.values}
            index = self._new_int(0, len(option.values) - 1, name)
            self.model.add_exactly_one(self._vars[i] for i in lits.values())
            self.model.add(
                self._vars[index]
                == cp_model.LinearExpr.weighted_sum(
                    [self._vars[i] for i in lits.values()], list(range(len(lits)))
                )
            )
            got = OptionVar(option, index, lits)
        elif option.kind == "bool":
            got = OptionVar(option, self._new_bool(name))
        else:
            den = math.lcm(option.min.denominator, option.step.denominator)
            base = option.min * den
            scale = option.step * den
            k = self._new_int(0, option.size - 1, name)
            got = OptionVar(option, k, den=den, base=int(base), scale=int(scale))
        self.options[name] = got
        return got

    def declare(self, names: Iterable[str] | None = None) -> None:
        """Create the variables of these options (all of them by default)."""
        for name in self.product.options if names is None else names:
            self.option(name)

    # --- values ------------------------------------------------------------------------

    def value_of(self, solver: cp_model.CpSolver, name: str) -> Value:
        """The value an option takes in the solver's solution."""
        ov = self.option(name)
        option = ov.option
        if option.kind == "enum":
            return option.values[solver.value(self._vars[ov.var])]
        if option.kind == "bool":
            return bool(solver.value(self._vars[ov.var]))
        return option.min + solver.value(self._vars[ov.var]) * option.step

    def grid_index(self, name: str, value: Value) -> int:
        """The position of a numeric value on its option's step grid."""
        option = self.product.options[name]
        return int((_frac(value) - option.min) / option.step)

    def fix_in(self, model: cp_model.CpModel, name: str, value: Value) -> None:
        """Fix an option to a value in ``model`` (a clone of this translation's model)."""
        ov = self.option(name)
        if ov.option.kind == "enum":
            model.add(self._vars[ov.var] == ov.option.values.index(str(value)))
        elif ov.option.kind == "bool":
            model.add(self._vars[ov.var] == int(bool(value)))
        else:
            model.add(self._vars[ov.var] == self.grid_index(name, value))

    def assume_in(self, model: cp_model.CpModel, name: str, value: Value) -> cp_model.IntVar:
        """A literal of ``model`` (a clone) that, when true, fixes the option to ``value``."""
        ov = self.option(name)
        if ov.option.kind == "enum":
            return self._vars[ov.lits[str(value)]]
        if ov.option.kind == "bool":
            return self.obj(ov.var if value else ~ov.var)
        lit = model.new_bool_var(f"{name}?")
        model.add(self._vars[ov.var] == self.grid_index(name, value)).only_enforce_if(lit)
        return lit

    def hint_in(self, model: cp_model.CpModel, name: str, value: Value) -> None:
        """Suggest a value for an option to the solver of ``model`` (a clone)."""
        ov = self.option(name)
        if ov.option.kind == "enum":
            model.add_hint(self._vars[ov.lits[str(value)]], True)
        elif ov.option.kind == "bool":
            model.add_hint(self._vars[ov.var], bool(value))
        else:
            model.add_hint(self._vars[ov.var], self.grid_index(name, value))

    # --- numbers ------------------------------------------------------------------------

    def const(self, value: Fraction | int) -> Num:
        """A constant number."""
        value = Fraction(value)
        return Num((), value.numerator, value.denominator, value.numerator, value.numerator)

    def make(self, terms: dict[int, int], const: int, den: int) -> Num:
        """A normalised form (smallest denominator), with bounds, checked for size."""
        terms = {v: c for v, c in terms.items() if c}
        if den < 0:
            terms = {v: -c for v, c in terms.items()}
            const, den = -const, -den
        g = math.gcd(den, const, *terms.values())
        if g > 1:
            terms = {v: c // g for v, c in terms.items()}
            const //= g
            den //= g
        lo = hi = const
        size = abs(const)
        for v, c in terms.items():
            a, b = self._bounds[v]
            lo += min(c * a, c * b)
            hi += max(c * a, c * b)
            size += abs(c) * max(abs(a), abs(b))
        if size > MAGNITUDE_LIMIT or den > MAGNITUDE_LIMIT:
            raise self._too_large()
        return Num(tuple(sorted(terms.items())), const, den, lo, hi)

    def linear(self, num: Num) -> cp_model.LinearExprT:
        """The numerator of a form as an OR-Tools linear expression."""
        if not num.terms:
            return num.const
        if len(num.terms) == 1:
            ((v, c),) = num.terms
            return c * self._vars[v] + num.const
        return (
            cp_model.LinearExpr.weighted_sum(
                [self._vars[v] for v, _ in num.terms], [c for _, c in num.terms]
            )
            + num.const
        )

    def _scaled(self, num: Num, factor: int) -> tuple[dict[int, int], int]:
        return {v: c * factor for v, c in num.terms}, num.const * factor

    def add(self, *nums: Num) -> Num:
        """The sum of forms."""
        den = math.lcm(*(n.den for n in nums))
        terms: dict[int, int] = {}
        const = 0
        for n in nums:
            f = den // n.den
            for v, c in n.terms:
                terms[v] = terms.get(v, 0) + c * f
            const += n.const * f
        return self.make(terms, const, den)

    def neg(self, num: Num) -> Num:
        """The negation of a form."""
        return self.make({v: -c for v, c in num.terms}, -num.const, num.den)

    def sub(self, a: Num, b: Num) -> Num:
        """``a - b``."""
        return self.add(a, self.neg(b))

    def scale(self, num: Num, factor: Fraction | int) -> Num:
        """``num * factor`` for a constant factor."""
        factor = Fraction(factor)
        terms, const = self._scaled(num, factor.numerator)
        return self.make(terms, const, num.den * factor.denominator)

    def _literal_factor(self, num: Num) -> tuple[int, Fraction] | None:
        """``num`` as ``scale * literal`` when it is one, else None."""
        if len(num.terms) != 1:
            return None
        ((v, c),) = num.terms
        if self._bounds[v] != (0, 1):
            return None
        if num.const == 0:
            return v, Fraction(c, num.den)
        if num.const == -c:
            return ~v, Fraction(-c, num.den)
        return None

    def mul(self, a: Num, b: Num) -> Num:
        """``a * b``: linear when one side is constant or a scaled literal, else a product."""
        if a.constant:
            return self.scale(b, a.value())
        if b.constant:
            return self.scale(a, b.value())
        for x, y in ((a, b), (b, a)):
            factor = self._literal_factor(x)
            if factor is not None:
                lit, k = factor
                return self.scale(self.select(lit, y, self.const(0)), k)
        a, b = self._affine(a), self._affine(b)
        corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        self._check_bounds(min(corners), max(corners))
        target = self._new_int(min(corners), max(corners))
        self.model.add_multiplication_equality(self._vars[target], [self.linear(a), self.linear(b)])
        return self.make({target: 1}, 0, a.den * b.den)

    def _check_bounds(self, lo: int, hi: int) -> None:
        if max(abs(lo), abs(hi)) > MAGNITUDE_LIMIT:
            raise self._too_large()

    def _too_large(self) -> ProductError:
        return ProductError(
            [
                (
                    self.where,
                    None,
                    "the numbers in this expression grow beyond what the solver handles "
                    "exactly (about 1e18); use fewer decimal places or narrower ranges",
                )
            ],
            "<solver>",
        )

    def _affine(self, num: Num) -> Num:
        """A form with at most one variable (a new variable equal to it if need be)."""
        if len(num.terms) <= 1:
            return num
        v = self._new_int(num.lo, num.hi)
        self.model.add(self._vars[v] == self.linear(num))
        return self.make({v: 1}, 0, num.den)

    def _common(self, nums: Sequence[Num]) -> tuple[int, list[Num]]:
        den = math.lcm(*(n.den for n in nums))
        out = []
        for n in nums:
            terms, const = self._scaled(n, den // n.den)
            lo, hi = n.lo * (den // n.den), n.hi * (den // n.den)
            self._check_bounds(lo, hi)
            out.append(Num(tuple(sorted(terms.items())), const, den, lo, hi))
        return den, out

    def select(self, test: Lit, then: Num, other: Num) -> Num:
        """``then if test else other``."""
        if isinstance(test, bool):
            return then if test else other
        if then == other:
            return then
        den, (a, b) = self._common([then, other])
        if a.constant and b.constant:
            # b + (a - b) * test, linear in the literal
            lit_num = self._lit_num(test)
            return self.add(self.scale(lit_num, Fraction(a.const - b.const, den)), other)
        lo, hi = min(a.lo, b.lo), max(a.hi, b.hi)
        r = self._new_int(lo, hi)
        self.model.add(self._vars[r] == self.linear(a)).only_enforce_if(self.obj(test))
        self.model.add(self._vars[r] == self.linear(b)).only_enforce_if(self.obj(~test))
        return self.make({r: 1}, 0, den)

    def minmax(self, fn: str, nums: Sequence[Num]) -> Num:
        """``min(...)`` or ``max(...)`` of forms."""
        if all(n.constant for n in nums):
            values = [n.value() for n in nums]
            return self.const(min(values) if fn == "min" else max(values))
        if len(nums) == 1:
            return nums[0]
        den, forms = self._common(nums)
        if fn == "min":
            lo, hi = min(f.lo for f in forms), min(f.hi for f in forms)
        else:
            lo, hi = max(f.lo for f in forms), max(f.hi for f in forms)
        t = self._new_int(lo, hi)
        exprs = [self.linear(f) for f in forms]
        if fn == "min":
            self.model.add_min_equality(self._vars[t], exprs)
        else:
            self.model.add_max_equality(self._vars[t], exprs)
        return self.make({t: 1}, 0, den)

    def absolute(self, num: Num) -> Num:
        """``abs(num)``."""
        if num.lo >= 0:
            return num
        if num.hi <= 0:
            return self.neg(num)
        t = self._new_int(0, max(-num.lo, num.hi))
        self.model.add_abs_equality(self._vars[t], self.linear(num))
        return self.make({t: 1}, 0, num.den)

    def _lit_num(self, lit: Lit) -> Num:
        if isinstance(lit, bool):
            return self.const(int(lit))
        if lit >= 0:
            return self.make({lit: 1}, 0, 1)
        return self.make({~lit: -1}, 1, 1)

    def _option_num(self, ov: OptionVar) -> Num:
        return self.make({ov.var: ov.scale}, ov.base, ov.den)

    def num(self, expr: Expr) -> Num:
        """The exact form of a numeric (or true/false, as 0/1) expression."""
        hit = self._seen.get((id(expr), True))
        if hit is not None and hit[0] is expr:
            return hit[1]  # type: ignore[return-value]
        got = self._nums.get(expr)
        if got is None:
            got = self._num(expr)
            self._nums[expr] = got
        self._seen[(id(expr), True)] = (expr, got)
        return got

    def _num(self, expr: Expr) -> Num:
        match expr:
            case Const(value=bool() as v):
                return self.const(int(v))
            case Const(value=Fraction() as v):
                return self.const(v)
            case Var(name=n):
                ov = self.option(n)
                if ov.option.kind == "bool":
                    return self._lit_num(ov.var)
                if ov.option.kind == "enum":
                    raise TypeError(f"{n} is text, not a number")
                return self._option_num(ov)
            case Neg(arg=a):
                return self.neg(self.num(a))
            case Bin(op="+", left=left, right=right):
                return self.add(self.num(left), self.num(right))
            case Bin(op="-", left=left, right=right):
                return self.sub(self.num(left), self.num(right))
            case Bin(op="*", left=left, right=right):
                return self.mul(self.num(left), self.num(right))
            case Bin(op="/", left=left, right=right):
                divisor = self.num(right)
                if not divisor.constant or divisor.const == 0:
                    raise TypeError("the divisor must be a non-zero constant")
                return self.scale(self.num(left), 1 / divisor.value())
            case Cond(test=t, then=a, other=b):
                return self.select(self.lit(t), self.num(a), self.num(b))
            case Call(fn="abs", args=(a,)):
                return self.absolute(self.num(a))
            case Call(fn=fn, args=args):
                return self.minmax(fn, [self.num(a) for a in args])
        return self._lit_num(self.lit(expr))

    # --- literals -----------------------------------------------------------------------

    def lit(self, expr: Expr) -> Lit:
        """The literal of a true/false expression, reified both ways."""
        hit = self._seen.get((id(expr), False))
        if hit is not None and hit[0] is expr:
            return hit[1]  # type: ignore[return-value]
        got = self._lits.get(expr)
        if got is None:
            got = self._lit(expr)
            self._lits[expr] = got
        self._seen[(id(expr), False)] = (expr, got)
        return got

    def _is_text(self, expr: Expr) -> bool:
        if isinstance(expr, Const):
            return isinstance(expr.value, str)
        return isinstance(expr, Var) and self.product.options[expr.name].kind == "enum"

    def _lit(self, expr: Expr) -> Lit:
        match expr:
            case Const(value=v):
                return bool(v)
            case Var(name=n):
                ov = self.option(n)
                if ov.option.kind != "bool":
                    raise TypeError(f"{n} is not a true/false option")
                return ov.var
            case Not(arg=a):
                return negate(self.lit(a))
            case Logic(op="and", args=args):
                return self.all_of([self.lit(a) for a in args])
            case Logic(op="or", args=args):
                return self.any_of([self.lit(a) for a in args])
            case Cmp(op=op, left=left, right=right):
                if self._is_text(left) or self._is_text(right):
                    return self._text_compare(op, left, right)
                diff = self.sub(self.num(left), self.num(right))
                return self._reify_domain(diff, _true_set(op, diff.lo, diff.hi))
            case In(arg=a, values=values, negate=neg):
                if self._is_text(a):
                    lit = self._text_in(a, values)
                else:
                    lit = self._num_in(self.num(a), values)
                return negate(lit) if neg else lit
            case Cond(test=t, then=a, other=b):
                test = self.lit(t)
                if isinstance(test, bool):
                    return self.lit(a if test else b)
                return self.any_of(
                    [self.all_of([test, self.lit(a)]), self.all_of([~test, self.lit(b)])]
                )
        raise TypeError(f"not a true/false expression: {expr!r}")

    def _text_compare(self, op: str, left: Expr, right: Expr) -> Lit:
        if op not in ("==", "!="):  # pragma: no cover - ruled out by type checking
            raise TypeError("text is compared with == or != only")
        if isinstance(left, Const):
            left, right = right, left
        assert isinstance(left, Var)
        if isinstance(right, Const):
            lit: Lit = self.option(left.name).lits.get(str(right.value), False)
        else:
            assert isinstance(right, Var)
            x, y = self.option(left.name), self.option(right.name)
            lit = self.any_of([self.all_of([x.lits[v], y.lits[v]]) for v in x.lits if v in y.lits])
        return lit if op == "==" else negate(lit)

    def _text_in(self, arg: Expr, values: Sequence[Value]) -> Lit:
        if isinstance(arg, Const):
            return arg.value in values
        assert isinstance(arg, Var)
        ov = self.option(arg.name)
        return self.any_of([ov.lits[str(v)] for v in dict.fromkeys(values) if str(v) in ov.lits])

    def _num_in(self, num: Num, values: Sequence[Value]) -> Lit:
        points = set()
        for v in values:
            scaled = _frac(v) * num.den
            if scaled.denominator == 1 and num.lo <= scaled.numerator <= num.hi:
                points.add(scaled.numerator)
        spans: list[tuple[int, int]] = []
        for p in sorted(points):
            if spans and spans[-1][1] == p - 1:
                spans[-1] = (spans[-1][0], p)
            else:
                spans.append((p, p))
        return self._reify_domain(num, spans)

    def _reify_domain(self, num: Num, intervals: list[tuple[int, int]]) -> Lit:
        """A literal true exactly when the numerator of ``num`` lies in ``intervals``.

        ``intervals`` are sorted, disjoint and inside ``[num.lo, num.hi]``.
        """
        if not intervals:
            return False
        if intervals == [(num.lo, num.hi)]:
            return True
        if num.constant:
            return any(a <= num.const <= b for a, b in intervals)
        expr = self.linear(num)
        b = self._new_bool()
        self.model.add_linear_expression_in_domain(
            expr, cp_model.Domain.from_intervals([list(i) for i in intervals])
        ).only_enforce_if(self._vars[b])
        self.model.add_linear_expression_in_domain(
            expr,
            cp_model.Domain.from_intervals([list(i) for i in _gaps(intervals, num.lo, num.hi)]),
        ).only_enforce_if(~self._vars[b])
        return b

    def all_of(self, lits: Iterable[Lit]) -> Lit:
        """A literal true exactly when every one of ``lits`` is."""
        seen: set[int] = set()
        for lit in lits:
            if lit is False:
                return False
            if lit is True:
                continue
            if ~lit in seen:
                return False
            seen.add(lit)
        if not seen:
            return True
        if len(seen) == 1:
            return next(iter(seen))
        key = frozenset(seen)
        got = self._ands.get(key)
        if got is None:
            got = self._new_bool()
            for lit in seen:
                self.model.add_implication(self._vars[got], self.obj(lit))
            self.model.add_bool_or([self._vars[got], *(self.obj(~lit) for lit in seen)])
            self._ands[key] = got
        return got

    def any_of(self, lits: Iterable[Lit]) -> Lit:
        """A literal true exactly when one or more of ``lits`` is."""
        return negate(self.all_of(negate(lit) for lit in lits))

    # --- constraints --------------------------------------------------------------------

    def clause(self, lits: Iterable[Lit], enforce: Sequence[int] = ()) -> None:
        """One of ``lits`` holds (when every ``enforce`` literal is true)."""
        out = []
        for lit in lits:
            if lit is True:
                return
            if lit is not False:
                out.append(self.obj(lit))
        self.model.add_bool_or(out + [self.obj(~e) for e in enforce])

    def require(self, expr: Expr, enforce: Sequence[int] = ()) -> None:
        """Add ``expr`` as a constraint; with ``enforce``, only when those literals hold.

        The top of a rule is added structurally (a conjunction as separate constraints,
        a disjunction as one clause, a comparison as one linear constraint), so the
        common shapes cost no auxiliary variable.
        """
        match expr:
            case Const(value=v):
                if not v:
                    self.clause([], enforce)
            case Logic(op="and", args=args):
                for a in args:
                    self.require(a, enforce)
            case Logic(op="or", args=args):
                self.clause([self.lit(a) for a in args], enforce)
            case Not(arg=Logic(op="and", args=args)):
                self.clause([negate(self.lit(a)) for a in args], enforce)
            case Not(arg=Logic(op="or", args=args)):
                for a in args:
                    self.require(Not(a), enforce)
            case Not(arg=Not(arg=a)):
                self.require(a, enforce)
            case Cmp(op=op, left=left, right=right) if not (
                self._is_text(left) or self._is_text(right)
            ):
                diff = self.sub(self.num(left), self.num(right))
                intervals = _true_set(op, diff.lo, diff.hi)
                if not intervals:
                    self.clause([], enforce)
                elif intervals != [(diff.lo, diff.hi)]:
                    ct = self.model.add_linear_expression_in_domain(
                        self.linear(diff),
                        cp_model.Domain.from_intervals([list(i) for i in intervals]),
                    )
                    if enforce:
                        ct.only_enforce_if([self.obj(e) for e in enforce])
            case _:
                self.clause([self.lit(expr)], enforce)


def _true_set(op: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The integers ``d`` in ``[lo, hi]`` with ``d op 0``, as sorted intervals."""
    if op == "==":
        spans = [(0, 0)]
    elif op == "!=":
        spans = [(lo, -1), (1, hi)]
    elif op == "<=":
        spans = [(lo, 0)]
    elif op == "<":
        spans = [(lo, -1)]
    elif op == ">=":
        spans = [(0, hi)]
    else:
        spans = [(1, hi)]
    out = []
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        if a <= b:
            out.append((a, b))
    return out


def _gaps(intervals: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The complement of sorted disjoint ``intervals`` within ``[lo, hi]``."""
    out = []
    at = lo
    for a, b in intervals:
        if a > at:
            out.append((at, a - 1))
        at = b + 1
    if at <= hi:
        out.append((at, hi))
    return out
