"""A layout checked and compiled into what the engines run.

``load_layout`` reads the YAML, validates it, resolves names (rework targets, setup
variants, routing stations), turns routing times into per-variant means from the
product, and refuses models that could never finish: a rework loop whose buffers are
all finite (it can fill and deadlock) and an order stream heavier than the line can
carry (the backlog grows without bound). Every fault comes with its path and line.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rfc8785
from pydantic import ValidationError

from liquidfab.errors import LayoutError, LiquidfabError, ProductError
from liquidfab.factory.distributions import Deterministic, Lognormal, _Dist
from liquidfab.factory.format import DAYS, CalendarSpec, LayoutFile, ShiftSpec
from liquidfab.product.source import Located, dotted_path, read_source, validation_problems

__all__ = [
    "Calendar",
    "Layout",
    "Station",
    "Variant",
    "compile_layout",
    "layout_from_data",
    "load_layout",
    "visit_ratios",
]

Problem = tuple[str, int | None, str]
WEEK = 7 * 86400
#: Below this share of the week (a calendar) or of the time (availability), no run
#: reaches a steady state in any useful length.
MIN_SHARE = 0.01
#: More expected visits per job than this at one station means a rework loop that
#: (almost) never lets go.
MAX_VISITS = 100.0


@dataclass(frozen=True)
class Calendar:
    """Working spans of one week, in seconds from Monday 00:00, sorted and disjoint."""

    spans: tuple[tuple[float, float], ...]

    @classmethod
    def from_spec(cls, spec: CalendarSpec) -> Calendar:
        spans = []
        for day in spec.days:
            base = DAYS.index(day) * 86400
            for s in spec.shifts:
                spans.append((base + ShiftSpec.seconds(s.start), base + ShiftSpec.seconds(s.end)))
        spans.sort()
        merged: list[tuple[float, float]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return cls(tuple(merged))

    @property
    def share(self) -> float:
        """The share of the week that is working time."""
        return sum(b - a for a, b in self.spans) / WEEK

    def finish(self, start: float, work: float) -> float:
        """When ``work`` seconds of working time begun at ``start`` are done."""
        if work <= 0:
            return start
        week_work = sum(b - a for a, b in self.spans)
        # any WEEK-long stretch holds exactly week_work of working time, so whole weeks
        # can be skipped; an exact multiple keeps its last week to find the finish in it
        weeks, rest = divmod(work, week_work)
        if rest == 0:
            weeks, rest = weeks - 1, week_work
        t = start + weeks * WEEK
        base = math.floor(t / WEEK) * WEEK
        while True:
            for a, b in self.spans:
                a, b = base + a, base + b
                if t >= b:
                    continue
                t = max(t, a)
                if t + rest <= b:
                    return t + rest
                rest -= b - t
                t = b
            base += WEEK

    def next_open(self, t: float) -> float:
        """The first working instant at or after ``t``."""
        base = math.floor(t / WEEK) * WEEK
        while True:
            for a, b in self.spans:
                if t < base + b:
                    return max(t, base + a)
            base += WEEK


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    choices: dict[str, Any]


@dataclass(frozen=True)
class Station:
    """One station as the engines see it. ``times[v]`` is the process-time distribution
    for variant ``v``; ``setup[a, b]`` the changeover from variant a to b (seconds)."""

    id: str
    name: str
    index: int
    servers: int
    buffer: int | None
    times: tuple[_Dist, ...]
    setup: np.ndarray | None
    mtbf: _Dist | None
    mttr: _Dist | None
    failure_clock: str
    inspection_yield: float | None
    failed_to: int | None
    rework: bool
    next: int | None

    @property
    def scrap_on_fail(self) -> bool:
        return self.inspection_yield is not None and self.failed_to is None

    def mean_time(self, shares: np.ndarray) -> float:
        """Mean process time plus the mean setup of a random mix (without failures)."""
        mean = float(sum(s * d.mean for s, d in zip(shares, self.times, strict=True)))
        if self.setup is not None:
            mean += float(shares @ self.setup @ shares)
        return mean

    def availability(self) -> float:
        """Long-run share of working capacity left by failures."""
        if self.mtbf is None or self.mttr is None:
            return 1.0
        return self.mtbf.mean / (self.mtbf.mean + self.mttr.mean)


@dataclass(frozen=True)
class Layout:
    """A compiled layout; ``line`` lists the line stations in flow order."""

    spec: LayoutFile
    stations: tuple[Station, ...]
    line: tuple[int, ...]
    variants: tuple[Variant, ...]
    calendar: Calendar | None
    file: str = "<layout>"
    product: Any = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.spec.layout.id

    @property
    def version(self) -> str:
        return self.spec.layout.version

    @property
    def name(self) -> str:
        return self.spec.layout.name

    @property
    def shares(self) -> np.ndarray:
        return np.array([v.share for v in self.variants])

    @property
    def interarrival(self) -> _Dist | None:
        return self.spec.arrivals.interarrival

    def index(self, station_id: str) -> int:
        for st in self.stations:
            if st.id == station_id:
                return st.index
        raise KeyError(station_id)

    def exact_reason(self) -> str | None:
        """Why the exact flow-line engine cannot run this layout (None when it can)."""
        if self.spec.blocking != "after-service":
            return "blocking before service"
        if self.calendar is not None:
            return "a shift calendar"
        for st in self.stations:
            if st.rework:
                return f"rework station {st.id}"
            if st.servers != 1:
                return f"{st.servers} parallel servers at {st.id}"
            if st.mtbf is not None:
                return f"breakdowns at {st.id}"
            if st.inspection_yield is not None:
                return f"inspection at {st.id}"
        return None

    def document(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(rfc8785.dumps(self.document())).hexdigest()

    def revised(self, changes: Mapping[str, Any]) -> Layout:
        """A variant of this layout, for sweeps. ``changes`` maps ``buffers`` (a list in
        line order, or station id → size), ``servers`` (station id → count) and
        ``order`` (line station ids in a new order)."""
        unknown = sorted(set(changes) - {"buffers", "servers", "order"})
        if unknown:
            raise LayoutError(
                [
                    (k, None, "not a change a sweep can make (buffers, servers, order)")
                    for k in unknown
                ],
                self.file,
            )
        doc = self.document()
        by_id = {s["id"]: s for s in doc["stations"]}
        problems: list[Problem] = []
        buffers = changes.get("buffers")
        if isinstance(buffers, list):
            line_ids = [self.stations[i].id for i in self.line]
            if len(buffers) != len(line_ids):
                raise LayoutError(
                    [
                        (
                            "buffers",
                            None,
                            f"needs {len(line_ids)} sizes, one per "
                            f"line station ({', '.join(line_ids)})",
                        )
                    ],
                    self.file,
                )
            buffers = dict(zip(line_ids, buffers, strict=True))
        for key in ("buffers", "servers"):
            table = buffers if key == "buffers" else changes.get(key)
            for sid, value in (table or {}).items():
                if sid not in by_id:
                    problems.append((f"{key}.{sid}", None, "no such station"))
                else:
                    by_id[sid]["buffer" if key == "buffers" else "servers"] = value
        order = changes.get("order")
        if order is not None:
            line = [s for s in doc["stations"] if s.get("role", "line") == "line"]
            if sorted(order) != sorted(s["id"] for s in line):
                problems.append(("order", None, "must list every line station exactly once"))
            else:
                rest = [s for s in doc["stations"] if s.get("role", "line") != "line"]
                doc["stations"] = [by_id[i] for i in order] + rest
        if problems:
            raise LayoutError(problems, self.file)
        return compile_layout(Located(doc, {}, self.file), product=self.product)


def load_layout(source: str | Path, *, product: Any = None, file: str | None = None) -> Layout:
    """Read, validate and compile a layout (a path, or the YAML text itself).

    ``product`` (a compiled ``Product``) gives routing times; when not given and the
    layout names a product file, that file is loaded relative to the layout.
    """
    try:
        located = read_source(source, file=file)
    except ProductError as e:
        raise LayoutError(e.problems, e.file) from None
    if product is None and isinstance(source, Path) and isinstance(located.data, dict):
        ref = (located.data.get("layout") or {}).get("product")
        if isinstance(ref, str) and ref.endswith((".yaml", ".yml", ".json")):
            product = _load_product(source.parent / ref, located)
    return compile_layout(located, product=product)


def _load_product(path: Path, located: Located) -> Any:
    from liquidfab.product import load_product

    try:
        return load_product(path)
    except ProductError as e:
        line = located.line_of(("layout", "product"))
        raise LayoutError(
            [("layout.product", line, f"the product does not load: {p[2]}") for p in e.problems],
            located.file,
        ) from None


def layout_from_data(
    data: Mapping[str, Any], *, product: Any = None, file: str = "<document>"
) -> Layout:
    """Compile a layout already held as data (for example a published message's)."""
    return compile_layout(Located(dict(data), {}, file), product=product)


def compile_layout(located: Located, *, product: Any = None) -> Layout:
    """Compile layout data already read (for example a published message's)."""
    if not isinstance(located.data, dict):
        raise LayoutError([("", 1, "a layout file is a mapping of fields")], located.file)
    try:
        spec = LayoutFile.model_validate(located.data)
    except ValidationError as e:
        raise LayoutError(validation_problems(e, located), located.file) from None
    return _Compiler(spec, located, product).run()


class _Compiler:
    def __init__(self, spec: LayoutFile, located: Located, product: Any) -> None:
        self.spec = spec
        self.located = located
        self.product = product
        self.problems: list[Problem] = []

    def fault(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append((dotted_path(path), self.located.line_of(path), message))

    def stop(self) -> None:
        if self.problems:
            raise LayoutError(self.problems, self.located.file)

    def run(self) -> Layout:
        spec = self.spec
        names = [v.name for v in spec.mix]
        for i, name in enumerate(names):
            if names.index(name) != i:
                self.fault(("mix", i, "name"), f"variant {name!r} appears twice")
        ids = [s.id for s in spec.stations]
        for i, sid in enumerate(ids):
            if ids.index(sid) != i:
                self.fault(("stations", i, "id"), f"station {sid!r} appears twice")
        self.stop()
        line_specs = [s for s in spec.stations if s.role == "line"]
        if not line_specs:
            self.fault(("stations",), "a layout needs at least one line station")
        self.stop()
        order = line_specs + [s for s in spec.stations if s.role == "rework"]
        index = {s.id: i for i, s in enumerate(order)}
        position = {s.id: spec.stations.index(s) for s in spec.stations}
        total = sum(v.weight for v in spec.mix)
        variants = tuple(Variant(v.name, v.weight / total, dict(v.choices)) for v in spec.mix)
        routing = self.routing_times(variants)
        stations = []
        for i, s in enumerate(order):
            where = ("stations", position[s.id])
            nxt = i + 1 if s.role == "line" and i + 1 < len(line_specs) else None
            if s.role == "rework":
                if s.returns_to not in index:
                    self.fault((*where, "returns_to"), f"no station {s.returns_to!r}")
                elif order[index[s.returns_to]].role != "line":
                    self.fault((*where, "returns_to"), "rework returns to a line station")
                nxt = index.get(s.returns_to or "")
            failed_to = None
            if s.inspection is not None and s.inspection.failed != "scrap":
                target = s.inspection.failed
                if target not in index:
                    self.fault((*where, "inspection", "failed"), f"no station {target!r}")
                elif order[index[target]].role != "rework":
                    self.fault(
                        (*where, "inspection", "failed"),
                        f"{target!r} is not a rework station (role: rework)",
                    )
                else:
                    failed_to = index[target]
            stations.append(
                Station(
                    id=s.id,
                    name=s.name or s.id,
                    index=i,
                    servers=s.servers,
                    buffer=None if s.buffer == "unbounded" else int(s.buffer),
                    times=self.times(s, where, variants, routing),
                    setup=self.setup(s, where, names),
                    mtbf=s.breakdowns.mtbf if s.breakdowns else None,
                    mttr=s.breakdowns.mttr if s.breakdowns else None,
                    failure_clock=s.breakdowns.clock if s.breakdowns else "operating",
                    inspection_yield=s.inspection.yield_ if s.inspection else None,
                    failed_to=failed_to,
                    rework=s.role == "rework",
                    next=nxt,
                )
            )
        self.stop()
        calendar = Calendar.from_spec(spec.calendar) if spec.calendar else None
        layout = Layout(
            spec,
            tuple(stations),
            tuple(range(len(line_specs))),
            variants,
            calendar,
            self.located.file,
            self.product,
        )
        self.check_loops(layout, position)
        self.check_load(layout, position)
        self.stop()
        return layout

    def routing_times(self, variants: tuple[Variant, ...]) -> list[dict[str, float]] | None:
        uses = any(s.process.kind == "routing" for s in self.spec.stations)
        if not uses:
            return None
        if self.product is None:
            self.fault(
                ("layout", "product"),
                "stations take times from the routing, so the "
                "layout needs its product (a product file path)",
            )
            self.stop()
        from liquidfab.product import Configurator, resolve

        out = []
        configurator: Configurator | None = None
        for i, v in enumerate(variants):
            try:
                from liquidfab.product import coerce_choices

                choices = coerce_choices(self.product, v.choices)
                if len(choices) < len(self.product.options):
                    configurator = configurator or Configurator(self.product)
                    done = configurator.complete(choices)
                    if done.resolved is None:
                        sentences = (
                            done.conflict.sentences if done.conflict else ["no valid variant"]
                        )
                        raise ProductError([("", None, "; ".join(sentences))], "")
                    resolved = done.resolved
                else:
                    resolved = resolve(self.product, choices)
            except (ProductError, LiquidfabError) as e:
                problems = getattr(e, "problems", [("", None, str(e))])
                for path, _, message in problems:
                    self.fault(("mix", i, "choices"), f"{path}: {message}" if path else message)
                continue
            per: dict[str, float] = {}
            for op in resolved.operations:
                per[op.station] = per.get(op.station, 0.0) + float(op.seconds)
            out.append(per)
        self.stop()
        return out

    def times(
        self,
        s: Any,
        where: tuple,
        variants: tuple[Variant, ...],
        routing: list[dict[str, float]] | None,
    ) -> tuple[_Dist, ...]:
        p = s.process
        if p.kind == "routing":
            station = p.station or s.id
            assert routing is not None
            if station not in self.product.stations:
                self.fault(
                    (*where, "process", "station"),
                    f"the product has no station "
                    f"{station!r} (it has {', '.join(self.product.stations)})",
                )
                return ()
            out = []
            for per in routing:
                mean = per.get(station, 0.0)
                if mean <= 0 or p.cv == 0:
                    out.append(Deterministic(value=mean))
                else:
                    out.append(Lognormal(mean=mean, cv=p.cv))
            return tuple(out)
        if p.kind == "by-variant":
            missing = [v.name for v in variants if v.name not in p.times]
            extra = [k for k in p.times if k not in {v.name for v in variants}]
            if missing:
                self.fault((*where, "process", "times"), f"no time for {', '.join(missing)}")
            if extra:
                self.fault((*where, "process", "times"), f"{', '.join(extra)} not in the mix")
            return tuple(p.times.get(v.name, Deterministic(value=0)) for v in variants)
        return tuple(p for _ in variants)

    def setup(self, s: Any, where: tuple, names: list[str]) -> np.ndarray | None:
        if s.setup is None:
            return None
        k = len(names)
        m = np.full((k, k), s.setup.default, dtype=np.float64)
        np.fill_diagonal(m, 0.0)
        for a, row in s.setup.matrix.items():
            if a not in names:
                self.fault((*where, "setup", "matrix", a), f"{a!r} is not a variant of the mix")
                continue
            for b, t in row.items():
                if b not in names:
                    self.fault((*where, "setup", "matrix", a, b), f"{b!r} is not a variant")
                    continue
                m[names.index(a), names.index(b)] = t
        return m if m.any() else None

    def check_loops(self, layout: Layout, position: dict[str, int]) -> None:
        """A rework loop whose every buffer is finite can fill and lock: the inspecting
        station waits for room at rework while rework waits for room upstream."""
        for st in layout.stations:
            if st.failed_to is None:
                continue
            rework = layout.stations[st.failed_to]
            back = rework.next
            assert back is not None
            if back > st.index:
                self.fault(
                    ("stations", position[rework.id], "returns_to"),
                    f"rework must return to {st.id} or a station before it",
                )
                continue
            loop = [layout.stations[i] for i in range(back + 1, st.index + 1)] + [rework]
            if all(x.buffer is not None for x in loop) and layout.stations[back].buffer is not None:
                names = " → ".join(
                    [layout.stations[back].id, *(x.id for x in loop), layout.stations[back].id]
                )
                self.fault(
                    ("stations", position[rework.id], "buffer"),
                    f"the rework loop {names} has only finite buffers, so it can fill "
                    "and deadlock; make the rework station's buffer 'unbounded'",
                )

    def check_load(self, layout: Layout, position: dict[str, int]) -> None:
        """Refuse what would never reach a steady state, before anything runs: a job
        that would visit a station without end (a yield near zero in a rework loop), a
        station almost never available, a calendar with almost no working time, a line
        where nothing takes time, and an order stream at or above a station's capacity
        (its queue grows without bound)."""
        visits = visit_ratios(layout)
        share = layout.calendar.share if layout.calendar else 1.0
        if share < MIN_SHARE:
            self.fault(
                ("calendar",),
                f"the calendar works {share * WEEK / 60:.0f} minutes a "
                f"week, under {MIN_SHARE:.0%} of it: no run would reach a steady state",
            )
        work = 0.0
        for st, v in zip(layout.stations, visits, strict=True):
            where = ("stations", position[st.id])
            if not math.isfinite(v) or v > MAX_VISITS:
                self.fault(
                    (*where, "inspection"),
                    f"a job would visit {st.id} "
                    f"{'without end' if not math.isfinite(v) else f'{v:,.0f} times'} on "
                    f"average (more than {MAX_VISITS}): raise the yields of the rework "
                    "loop",
                )
                continue
            if st.availability() < MIN_SHARE:
                self.fault(
                    (*where, "breakdowns"),
                    f"{st.id} is available "
                    f"{st.availability():.2g} of the time (mean time between failures "
                    f"against mean time to repair), under {MIN_SHARE:.0%}: no run would "
                    "reach a steady state",
                )
                continue
            work = max(work, v * st.mean_time(layout.shares) / st.servers)
        if self.problems:
            return
        if work <= 0:
            self.fault(
                ("stations",),
                "no station takes any time, so the line would finish "
                "jobs infinitely fast; give the stations process times",
            )
            return
        arrivals = layout.interarrival
        if arrivals is None:
            return
        if arrivals.mean <= 0:
            self.fault(("arrivals", "interarrival"), "orders need a mean interarrival above 0")
            return
        rate = 1.0 / arrivals.mean
        for st, v in zip(layout.stations, visits, strict=True):
            capacity = st.servers * st.availability() * share
            load = rate * v * st.mean_time(layout.shares) / capacity
            if load >= 1:
                self.fault(
                    ("stations", position[st.id]),
                    f"utilization {load:.3f} ≥ 1: orders arrive faster than {st.id} can "
                    "work them, so its queue grows without bound and the run never "
                    "reaches a steady state",
                )


def visit_ratios(layout: Layout) -> list[float]:
    """Expected visits per released job at each station (traffic equations): a job that
    passes a station's inspection (all do where there is none) goes to its ``next``,
    one that fails goes to its rework station or leaves as scrap."""
    n = len(layout.stations)
    p = np.zeros((n, n))
    for st in layout.stations:
        passing = st.inspection_yield if st.inspection_yield is not None else 1.0
        if st.next is not None:
            p[st.index, st.next] += passing
        if st.failed_to is not None:
            p[st.index, st.failed_to] += 1.0 - passing
    entry = np.zeros(n)
    entry[layout.line[0]] = 1.0
    try:
        visits = np.linalg.solve(np.eye(n) - p.T, entry)
    except np.linalg.LinAlgError:  # a loop no job leaves
        return [math.inf] * n
    return [float(x) if x >= 0 else math.inf for x in visits]
