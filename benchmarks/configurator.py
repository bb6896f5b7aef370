"""Configurator latency (CP-SAT) against brute-force enumeration, in one run.

For each product (the desk lamp of the tests, the e-bike example, the synthetic product of
300 options and 1,000 rules) the configurator answers, many times over, with a fresh
choice each time:

- validate: ``check`` of a complete, valid configuration (the goal: under 50 ms at p99
  on the e-bike);
- check: ``check`` of half the options of a valid configuration (CP-SAT proves a
  completion exists);
- conflict: ``check`` of choices that cannot be completed, with the minimal conflict;
- complete: ``complete`` (cheapest price) from half the options;
- domains: ``domains`` from a third of the options;
- count: ``count`` of every valid variant (timed once per repeat, not per choice).

The reference is brute force: every combination of the open options tried with
``violated`` (and ``resolve`` for prices), stopping at the first valid one for a check.
It is measured on the lamp (810 combinations). On the larger products it cannot finish,
so its time is estimated as the measured cost of one combination on that product times
the number of combinations, and marked "est.".

    python benchmarks/configurator.py          # small: a minute or so
    python benchmarks/configurator.py --full   # more repeats, tighter percentiles
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import ortools

from liquidfab.product import Product, load_product
from liquidfab.product.configurator import Configurator
from liquidfab.product.expressions import Value, evaluate
from liquidfab.product.resolved import violated
from liquidfab.product.synthetic import synthetic_product

ROOT = Path(__file__).resolve().parent.parent
LAMP = ROOT / "tests" / "product" / "lamp.yaml"
EBIKE = ROOT / "examples" / "ebike" / "product.yaml"
GOAL_MS = 50.0  # validate on the e-bike, p99


@dataclass(frozen=True)
class Size:
    repeats: int  # answers timed per question on the lamp and the e-bike
    large: int  # answers timed per question on the synthetic product


SMALL = Size(200, 15)
FULL = Size(2000, 50)


@dataclass
class Figure:
    samples: list[float]  # seconds

    @property
    def p50(self) -> float:
        return _quantile(self.samples, 0.50)

    @property
    def p99(self) -> float:
        return _quantile(self.samples, 0.99)


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timed(calls: list[Callable[[], Any]]) -> Figure:
    samples = []
    for call in calls:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return Figure(samples)


# --- choices to ask about -----------------------------------------------------------------


def valid_configurations(cfg: Configurator, count: int, rng: random.Random) -> list[dict]:
    """Complete valid configurations, varied: random seeds completed by the configurator."""
    product = cfg.product
    names = list(product.options)
    out: list[dict] = []
    objectives = ["price", "cost", "time"]
    tries = 0
    while len(out) < count and tries < count * 20:
        tries += 1
        seed = {n: rng.choice(product.options[n].domain()) for n in rng.sample(names, 2)}
        done = cfg.complete(seed, rng.choice(objectives), maximize=rng.random() < 0.5)
        if done.resolved is not None:
            out.append(dict(done.resolved.choices))
    if not out:
        raise SystemExit(f"no valid configuration of {product.id} was found")
    return out


def partial(config: dict, share: float, rng: random.Random) -> dict:
    keep = rng.sample(list(config), max(1, int(len(config) * share)))
    return {k: config[k] for k in keep}


def conflicting(cfg: Configurator, rng: random.Random, count: int) -> list[dict]:
    """Choices that cannot be completed: a valid configuration with some values changed."""
    product = cfg.product
    out = []
    pool = valid_configurations(cfg, count, rng)
    tries = 0
    while len(out) < count and tries < count * 50:
        tries += 1
        choices = partial(rng.choice(pool), 0.5, rng)
        for name in rng.sample(list(choices), min(2, len(choices))):
            choices[name] = rng.choice(product.options[name].domain())
        if cfg.check(choices).valid is False:
            out.append(choices)
    return out


# --- brute force ------------------------------------------------------------------------------


def completions(product: Product, fixed: dict) -> Iterator[dict[str, Value]]:
    names = list(product.options)
    domains = [[fixed[n]] if n in fixed else product.options[n].domain() for n in names]
    for combo in itertools.product(*domains):
        yield dict(zip(names, combo, strict=True))


def brute_check(product: Product, fixed: dict) -> bool:
    return any(not violated(product, c) for c in completions(product, fixed))


def exact_price(product: Product, config: dict) -> Fraction:
    total = Fraction(product.base_price)
    for rule in product.price_rules:
        if rule.when is None or evaluate(rule.when, config):
            total += evaluate(rule.amount, config)  # type: ignore[operator]
    return total


def brute_complete(product: Product, fixed: dict) -> Fraction | None:
    prices = [
        exact_price(product, c) for c in completions(product, fixed) if not violated(product, c)
    ]
    return min(prices, default=None)


def brute_domains(product: Product, fixed: dict) -> dict[str, set]:
    seen: dict[str, set] = {n: set() for n in product.options}
    for c in completions(product, fixed):
        if not violated(product, c):
            for n, v in c.items():
                seen[n].add(v)
    return seen


def brute_count(product: Product) -> int:
    return sum(not violated(product, c) for c in completions(product, {}))


def open_combinations(product: Product, fixed: dict) -> int:
    n = 1
    for name, option in product.options.items():
        if name not in fixed:
            n *= option.size
    return n


# --- one product ----------------------------------------------------------------------------


@dataclass
class Row:
    product: str
    question: str
    figure: Figure
    reference: float | None  # seconds, brute force, median
    estimated: bool
    note: str = ""


def measure(name: str, product: Product, n: int, rng: random.Random, brute: bool) -> list[Row]:
    cfg = Configurator(product)
    configs = valid_configurations(cfg, min(n, 40), rng)
    picks = [rng.choice(configs) for _ in range(n)]
    halves = [partial(c, 0.5, rng) for c in picks]
    thirds = [partial(c, 1 / 3, rng) for c in picks]
    bad = conflicting(cfg, rng, min(n, 40))
    bad = [rng.choice(bad) for _ in range(n)] if bad else []

    # per-combination cost of brute force on this product (violated on a configuration)
    unit = timed([lambda c=c: violated(product, c) for c in picks]).p50
    rows = []

    def reference(kind: str, fixed_sets: list[dict]) -> tuple[float | None, bool]:
        if brute:
            sample = fixed_sets[: min(len(fixed_sets), 20)]
            fn = {
                "check": brute_check,
                "conflict": brute_check,
                "complete": brute_complete,
                "domains": brute_domains,
            }[kind]
            return timed([lambda f=f: fn(product, f) for f in sample]).p50, False
        combos = sorted(open_combinations(product, f) for f in fixed_sets)
        return unit * combos[len(combos) // 2], True

    rows.append(
        Row(name, "validate", timed([lambda c=c: cfg.check(c) for c in picks]), unit, False)
    )
    checks = timed([lambda c=c: cfg.check(c) for c in halves])
    rows.append(Row(name, "check (half chosen)", checks, *reference("check", halves)))
    if bad:
        conflicts = timed([lambda c=c: cfg.check(c) for c in bad])
        rows.append(Row(name, "conflict (minimal)", conflicts, *reference("conflict", bad)))
    done = timed([lambda c=c: cfg.complete(c, "price") for c in halves])
    rows.append(Row(name, "complete (price)", done, *reference("complete", halves)))
    answers: list[Any] = []
    doms = timed([lambda c=c: answers.append(cfg.domains(c)) for c in thirds])
    cut = sum(a.timed_out for a in answers)
    note = f"{cut} of {len(answers)} stopped by the {cfg.time_limit:g} s limit" if cut else ""
    rows.append(Row(name, "domains (third chosen)", doms, *reference("domains", thirds), note))
    results = []
    counts = timed([lambda: results.append(cfg.count()) for _ in range(max(3, n // 50))])
    last = results[-1]
    if brute:
        ref, est = timed([lambda: brute_count(product)]).p50, False
    else:
        ref, est = unit * product.variant_space(), True
    rows.append(
        Row(
            name,
            "count (all variants)",
            counts,
            ref,
            est,
            f"{_big(last.count)} exact"
            if last.exact
            else f"at least {_big(last.count)} (stopped by the "
            + (f"{cfg.time_limit:g} s limit)" if last.timed_out else "solution limit)"),
        )
    )
    return rows


# --- report -----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "ortools": ortools.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 3_600_000 * 1e6:
        return f"{ms / 3_600_000:.1e} h"
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:,.1f} h"
    if ms >= 10_000:
        return f"{ms / 1000:,.0f} s"
    return f"{ms:,.2f} ms" if ms < 10 else f"{ms:,.1f} ms"


def _big(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"{n:.2e}".replace("e+", "e")


def table(rows: list[Row]) -> Iterator[str]:
    yield "| product | question | p50 | p99 | brute force (p50) | ratio p50 | note |"
    yield "|---|---|---:|---:|---:|---:|---|"
    for r in rows:
        if r.reference is None:
            ref, ratio = "n/a", ""
        else:
            ref = _ms(r.reference) + (" est." if r.estimated else "")
            ratio = f"{r.figure.p50 / r.reference:.2g}" if r.reference else ""
        note = r.note
        if r.product == "e-bike" and r.question == "validate":
            met = "met" if r.figure.p99 * 1000 < GOAL_MS else "**not met**"
            note = f"goal p99 < {GOAL_MS:.0f} ms: {met}"
        yield (
            f"| {r.product} | {r.question} | {_ms(r.figure.p50)} | {_ms(r.figure.p99)} "
            f"| {ref} | {ratio} | {note} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more repeats")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    size = FULL if args.full else SMALL
    rng = random.Random(args.seed)
    products: list[tuple[str, Product, int, bool]] = [
        ("lamp", load_product(LAMP), size.repeats, True)
    ]
    if EBIKE.exists():
        products.append(("e-bike", load_product(EBIKE), size.repeats, False))
    else:
        print(f"({EBIKE} is missing: the e-bike rows are skipped)")
    start = time.perf_counter()
    products.append(("synthetic", synthetic_product(), size.large, False))
    print(f"synthetic product built in {time.perf_counter() - start:.2f} s")
    rows: list[Row] = []
    for name, product, n, brute in products:
        print(
            f"{name}: {len(product.options)} options, {len(product.constraints)} rules, "
            f"{_big(product.variant_space())} combinations; {n} answers per question ...",
            flush=True,
        )
        rows.extend(measure(name, product, n, rng, brute))
    print()
    print("\n".join(table(rows)))
    print()
    print("  ".join(f"{k}: {v}" for k, v in machine().items()))
    print(f"command: python benchmarks/configurator.py{' --full' if args.full else ''}")


if __name__ == "__main__":
    main()
