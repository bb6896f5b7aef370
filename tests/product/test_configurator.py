"""The configurator agrees with brute force: every combination, checked with ``violated``."""

from __future__ import annotations

import itertools
import json
import threading
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import liquidfab.product.configurator as configurator_module
from liquidfab.errors import ProductError
from liquidfab.product import load_product, product_from_data
from liquidfab.product.configurator import Configurator, ValueRange
from liquidfab.product.expressions import evaluate, parse
from liquidfab.product.resolved import resolve, violated
from liquidfab.product.synthetic import synthetic_document, synthetic_product

HERE = Path(__file__).parent
LAMP = load_product(HERE / "lamp.yaml")

# Decimals, negative numbers, min/max/abs, if-else, products of two options, an assembly
# whose quantity multiplies its component's, stations at rates that do not divide evenly.
MIXER = product_from_data(
    {
        "id": "org.example.mixer",
        "version": "1.0.0",
        "name": "Mixer",
        "options": [
            {"id": "speed", "type": "int", "min": -3, "max": 4},
            {"id": "gain", "type": "decimal", "min": -1.5, "max": 1.5, "step": 0.5},
            {"id": "mode", "type": "enum", "values": ["eco", "normal", "boost"]},
            {"id": "turbo", "type": "bool"},
            {"id": "level", "type": "decimal", "min": 0.25, "max": 1.75, "step": 0.75},
        ],
        "derived": [
            {"id": "power", "value": "speed * gain + (2 if mode == 'boost' else 0.5)"},
            {"id": "spread", "value": "abs(speed - 2 * gain)"},
        ],
        "constraints": [
            {"id": "power-cap", "message": "Power stays at 4 or less.", "rule": "power <= 4"},
            {
                "id": "spread-floor",
                "message": "Spread or level reaches 1.",
                "rule": "max(spread, level) >= 1",
            },
            {
                "id": "turbo-needs-drive",
                "message": "Turbo needs normal or boost mode and a speed of 1 or more.",
                "requires": {
                    "if": "turbo",
                    "then": "mode in ['boost', 'normal'] and min(speed, 2) >= 1",
                },
            },
            {
                "id": "eco-is-quiet",
                "message": "Eco mode keeps speed times level at 2 or less.",
                "excludes": ["mode == 'eco'", "speed * level > 2"],
            },
            {
                "id": "odd-balance",
                "message": "Gain may not balance the speed.",
                "rule": "-speed + gain / 0.5 != 1",
            },
        ],
        "suppliers": [{"id": "acme", "name": "Acme", "did": "did:key:z6MkTest"}],
        "parts": [
            {"id": "motor", "name": "Motor", "supplier": "acme", "unit_cost": 12.5},
            {"id": "widget", "name": "Widget", "supplier": "acme", "unit_cost": 0.75},
            {"id": "blade", "name": "Blade", "supplier": "acme", "unit_cost": 3},
            {
                "id": "head",
                "name": "Head",
                "components": [{"part": "blade", "quantity": "max(speed, 0) + 1"}],
            },
        ],
        "bom": [
            {"part": "motor", "quantity": "max(speed, 1)"},
            {"part": "widget", "quantity": "level * 2", "when": "not turbo"},
            {"part": "head", "quantity": "1 + turbo"},
        ],
        "stations": [
            {"id": "wind", "name": "Winding", "cost_per_hour": 36},
            {"id": "test", "name": "Test", "cost_per_hour": 50},
        ],
        "routing": [
            {"id": "wind", "station": "wind", "time": "60 + 10 * abs(speed)"},
            {
                "id": "spin",
                "station": "test",
                "time": "30 * level if turbo else 20 - gain",
                "when": "mode != 'eco'",
            },
        ],
        "pricing": {
            "base": 100,
            "rules": [
                {"id": "turbo", "label": "Turbo", "when": "turbo", "amount": 25.5},
                {"id": "speed", "label": "Speed", "amount": "max(speed, 0) * 3"},
                {
                    "id": "gain",
                    "label": "Gain",
                    "amount": "abs(gain) * 4 + (10 if mode == 'boost' else 0)",
                },
            ],
        },
    }
)

# Two enumerations compared with each other, 'in' over numbers, booleans in arithmetic,
# a forbidding table.
PAIRS = product_from_data(
    {
        "id": "org.example.pairs",
        "version": "1.0.0",
        "name": "Pairs",
        "options": [
            {"id": "a", "type": "enum", "values": ["x", "y", "z"]},
            {"id": "b", "type": "enum", "values": ["y", "z", "w"]},
            {"id": "n", "type": "int", "min": 0, "max": 5},
            {"id": "f", "type": "bool"},
            {"id": "g", "type": "bool"},
        ],
        "constraints": [
            {
                "id": "match",
                "message": "A matches B, or N is even.",
                "rule": "a == b or n in [0, 2, 4]",
            },
            {"id": "curve", "message": "The curve stays low.", "rule": "(f + n) * (n - 2) <= 6"},
            {
                "id": "no-pairs",
                "message": "Some pairs are not made.",
                "table": {
                    "columns": ["a", "n"],
                    "rows": [["x", 0], ["x", 1], ["y", 2], ["z", 3], ["z", 5]],
                    "allow": False,
                },
            },
        ],
        "pricing": {"base": 5, "rules": [{"id": "n", "label": "N", "amount": "n * 2 - f"}]},
    }
)

# No variant at all: n >= 4 is forced by a chain and n <= 2 is a rule; 'lonely' is noise.
BROKEN = product_from_data(
    {
        "id": "org.example.broken",
        "version": "1.0.0",
        "name": "Broken",
        "options": [
            {"id": "a", "type": "enum", "values": ["x", "y"]},
            {"id": "n", "type": "int", "min": 0, "max": 6},
            {"id": "f", "type": "bool"},
        ],
        "constraints": [
            {"id": "lonely", "message": "F is off.", "rule": "not f"},
            {"id": "always-x", "message": "A is always x.", "rule": "a == 'x'"},
            {
                "id": "x-is-big",
                "message": "X needs N of 4 or more.",
                "requires": {"if": "a == 'x'", "then": "n >= 4"},
            },
            {"id": "small", "message": "N is 2 or less.", "rule": "n <= 2"},
            {"id": "roomy", "message": "N is 6 or less.", "rule": "n <= 6"},
        ],
        "pricing": {"base": 1},
    }
)

SMALL = {"lamp": LAMP, "mixer": MIXER, "pairs": PAIRS}


# --- brute force ------------------------------------------------------------------------


def combos(product, fixed=None):
    fixed = fixed or {}
    names = list(product.options)
    domains = [[fixed[n]] if n in fixed else product.options[n].domain() for n in names]
    for combo in itertools.product(*domains):
        yield dict(zip(names, combo, strict=True))


def valid(product, fixed=None, constraints=None):
    rules = product.constraints if constraints is None else constraints
    return [c for c in combos(product, fixed) if all(evaluate(r.expr, c) for r in rules)]


def exact_price(product, config):
    total = Fraction(product.base_price)
    for rule in product.price_rules:
        if rule.when is None or evaluate(rule.when, config):
            total += evaluate(rule.amount, config)
    return total


def exact_cost(product, config):
    r = resolve(product, config)
    parts = sum((Fraction(i.unit_cost) * i.quantity for i in r.bom if i.purchased), Fraction(0))
    rates = {s: Fraction(st.cost_per_hour) / 3600 for s, st in product.stations.items()}
    return parts + sum((op.seconds * rates[op.station] for op in r.operations), Fraction(0))


def exact_time(product, config):
    return resolve(product, config).build_seconds


def coerce(product, choices):
    return {k: product.options[k].coerce(v) for k, v in choices.items()}


# --- counting ---------------------------------------------------------------------------


def test_lamp_count_is_brute_force():
    assert LAMP.variant_space() == 810
    count = Configurator(LAMP).count()
    assert count.exact and not count.timed_out
    assert count.count == len(valid(LAMP)) == sum(not violated(LAMP, c) for c in combos(LAMP))
    assert "exact" in count.note


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("leaf", [1, 300])
def test_counts_with_and_without_choices_are_brute_force(name, leaf, monkeypatch):
    """A leaf size of 1 makes every group split on its options: the decomposition counts."""
    monkeypatch.setattr(configurator_module, "LEAF_COMBINATIONS", leaf)
    product = SMALL[name]
    cfg = Configurator(product)
    first = list(product.options)
    samples = [{}, *({n: product.options[n].domain()[-1]} for n in first[:3])]
    samples.append(
        {
            first[0]: product.options[first[0]].domain()[0],
            first[-1]: product.options[first[-1]].domain()[1],
        }
    )
    for choices in samples:
        got = cfg.count(choices)
        assert got.exact, got.note
        assert got.count == len(valid(product, choices)), choices


def test_count_of_choices_that_break_a_rule_is_zero():
    cfg = Configurator(LAMP)
    got = cfg.count({"shade": "paper", "watts": 8})
    assert (got.count, got.exact) == (0, True)
    assert "paper-runs-cool" in got.note


def test_count_limit_gives_a_lower_bound_and_says_so():
    got = Configurator(LAMP).count(limit=10)
    assert not got.exact and not got.timed_out
    assert 0 < got.count <= 226
    assert "lower bound" in got.note and "limit of 10" in got.note


# --- completion ---------------------------------------------------------------------------

OBJECTIVES = {
    "price": exact_price,
    "cost": exact_cost,
    "time": exact_time,
}
CUSTOM = {
    "lamp": "watts * arm_cm - heat * 3",
    "mixer": "speed * gain - abs(level - 1) + (3 if turbo else -1) * min(speed, gain)",
    "pairs": "(n - 3) * (n - 1) + 2 * f - g",
}


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("objective", ["price", "cost", "time", "custom"])
@pytest.mark.parametrize("maximize", [False, True])
def test_completion_is_optimal_against_brute_force(name, objective, maximize):
    product = SMALL[name]
    cfg = Configurator(product)
    if objective == "custom":
        expr = parse(CUSTOM[name], product.scope, want="num", macros=product.derived)

        def measure(p, c):
            return Fraction(evaluate(expr, c))

        text = CUSTOM[name]
    else:
        measure, text = OBJECTIVES[objective], objective
    pick = max if maximize else min
    first = next(iter(product.options))
    for choices in ({}, {first: product.options[first].domain()[1]}):
        candidates = valid(product, coerce(product, choices))
        best = pick(measure(product, c) for c in candidates)
        got = cfg.complete(choices, text, maximize=maximize)
        assert got.optimal and not got.timed_out and got.conflict is None
        assert got.objective == text
        assert got.objective_value == best, (choices, got.resolved.choices)
        assert measure(product, got.resolved.choices) == best
        assert not violated(product, got.resolved.choices)
        assert all(got.resolved.choices[k] == v for k, v in coerce(product, choices).items())


def test_completion_of_conflicting_choices_names_the_conflict():
    got = Configurator(LAMP).complete({"shade": "glass", "colour": "brass"})
    assert got.resolved is None and not got.optimal
    assert got.conflict is not None and got.conflict.minimal
    assert got.objective_value is None


# --- checks and conflicts -----------------------------------------------------------------


def assert_minimal(product, conflict):
    """The conflict's rules and choices have no valid variant; without any one, they have."""
    assert conflict.minimal
    rules = conflict.constraints
    chosen = conflict.choices
    assert not valid(product, chosen, rules)
    for i in range(len(rules)):
        assert valid(product, chosen, rules[:i] + rules[i + 1 :]), rules[i].id
    for name in chosen:
        fewer = {k: v for k, v in chosen.items() if k != name}
        assert valid(product, fewer, rules), name


CONFLICTING = [
    (LAMP, {"shade": "paper", "colour": "brass"}),
    (LAMP, {"shade": "glass", "colour": "black", "dimmer": True, "arm_cm": 60, "watts": 4}),
    (LAMP, {"shade": "metal", "arm_cm": 50, "dimmer": True}),
    (LAMP, {"colour": "brass", "arm_cm": 60}),
    (LAMP, {"dimmer": True, "watts": "5.5", "shade": "paper"}),
    (MIXER, {"turbo": True, "speed": 0}),
    (MIXER, {"turbo": True, "mode": "eco", "level": 1, "gain": 0}),
    (MIXER, {"speed": 4, "gain": 1.5}),
    # complete: the broken rule reads mode too, but any mode breaks it (mode is spare)
    (MIXER, {"speed": 4, "gain": 1.5, "mode": "eco", "turbo": False, "level": 1}),
    (PAIRS, {"a": "x", "n": 1}),
    (PAIRS, {"a": "z", "b": "y", "n": 5}),
]


@pytest.mark.parametrize("case", range(len(CONFLICTING)))
def test_conflicts_are_minimal(case):
    product, choices = CONFLICTING[case]
    assert not valid(product, coerce(product, choices))
    check = Configurator(product).check(choices)
    assert check.valid is False and not check.timed_out
    assert_minimal(product, check.conflict)
    assert check.conflict.sentences
    json.dumps(check.to_dict())


def test_conflict_sentence_names_the_choices_and_the_rule():
    check = Configurator(LAMP).check({"shade": "paper", "colour": "brass", "dimmer": False})
    (sentence,) = check.conflict.sentences
    assert sentence == (
        "You chose shade paper and colour Brass (brass), but: "
        "Colour Brass is available only when shade == 'metal'."
    )
    assert check.conflict.choices == {"shade": "paper", "colour": "brass"}  # dimmer is spare


@pytest.mark.parametrize("name", sorted(SMALL))
def test_checks_agree_with_brute_force(name):
    product = SMALL[name]
    cfg = Configurator(product)
    names = list(product.options)
    every = list(combos(product))
    for k, config in enumerate(every[:: max(1, len(every) // 40)]):
        partial = {n: config[n] for n in names[: 1 + k % len(names)]}
        expected = bool(valid(product, partial))
        check = cfg.check(partial)
        assert check.valid is expected, partial
        assert (check.conflict is None) is expected


# --- domains ------------------------------------------------------------------------------


def brute_domains(product, fixed):
    configs = valid(product, fixed)
    return {
        n: [v for v in product.options[n].domain() if any(c[n] == v for c in configs)]
        for n in product.options
    }


@pytest.mark.parametrize("name", sorted(SMALL))
def test_domains_are_brute_force(name):
    product = SMALL[name]
    cfg = Configurator(product)
    names = list(product.options)
    samples = [{}]
    for config in valid(product)[::23]:
        samples.append({n: config[n] for n in names[:2]})
        samples.append({names[-1]: config[names[-1]], names[1]: config[names[1]]})
    for choices in samples:
        got = cfg.domains(choices)
        assert not got.timed_out and got.conflict is None
        want = brute_domains(product, choices)
        assert got.possible == want, choices
        forced = {n: v[0] for n, v in want.items() if len(v) == 1 and n not in choices}
        assert got.forced == forced
        json.dumps(got.to_dict())


def test_domains_of_conflicting_choices_give_the_conflict():
    got = Configurator(LAMP).domains({"shade": "paper", "watts": 8})
    assert got.possible == {} and got.forced == {}
    assert_minimal(LAMP, got.conflict)


def test_large_numeric_options_get_a_range(monkeypatch):
    monkeypatch.setattr(configurator_module, "DOMAIN_LIST_LIMIT", 4)
    choices = {"shade": "glass", "dimmer": True}
    got = Configurator(LAMP).domains(choices)
    want = brute_domains(LAMP, coerce(LAMP, choices))
    for name in ("arm_cm", "watts"):  # 5 and 9 values: more than 4
        option = LAMP.options[name]
        assert got.possible[name] == ValueRange(min(want[name]), max(want[name]), option.step)
    assert got.possible["watts"].min == 6
    assert got.to_dict()["possible"]["watts"] == {"min": 6, "max": 8, "step": 0.5}
    assert got.possible["colour"] == want["colour"] == ["white"]
    assert got.forced == {"colour": "white"}


# --- contradictions -------------------------------------------------------------------------


def test_a_product_without_any_variant_reports_its_minimal_contradiction():
    conflict = Configurator(BROKEN).contradictions()
    assert conflict is not None
    assert [c.id for c in conflict.constraints] == ["always-x", "x-is-big", "small"]
    assert conflict.choices == {}
    assert_minimal(BROKEN, conflict)
    assert conflict.sentences[0] == "No variant can keep all of these rules at once."
    assert Configurator(BROKEN).count().count == 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_consistent_products_have_no_contradiction(name):
    assert Configurator(SMALL[name]).contradictions() is None


# --- prices ---------------------------------------------------------------------------------


def test_price_explanation_lists_each_rule_and_why():
    choices = {"shade": "glass", "colour": "white", "dimmer": True, "arm_cm": 40, "watts": 6}
    got = Configurator(LAMP).explain_price(choices)
    assert [line.id for line in got.lines] == ["base", "glass", "dimmer", "arm"]
    assert got.total == resolve(LAMP, coerce(LAMP, choices)).price == Decimal(65)
    assert sum(line.amount for line in got.lines) == got.total
    assert (
        got.sentences[1] == "Glass shade: 12 LQD, because you chose shade glass (shade == 'glass')."
    )
    assert got.sentences[3] == "Arm length: 5 LQD = (arm_cm - 20) * 0.25 with arm_cm = 40."
    assert got.sentences[-1] == "Total: 65 LQD."
    json.dumps(got.to_dict())


def test_price_of_partial_choices_needs_completion():
    got = Configurator(LAMP).explain_price({"shade": "glass"})
    assert got.total is None and got.lines == []
    assert "still open: colour, dimmer, arm cm and watts" in got.sentences[0]


def test_price_of_an_invalid_configuration_is_refused():
    with pytest.raises(ProductError, match="paper"):
        Configurator(LAMP).explain_price(
            {"shade": "paper", "colour": "white", "dimmer": False, "arm_cm": 20, "watts": 8}
        )


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.check({"shade": "wood"}),
        lambda c: c.check({"handle": "long"}),
        lambda c: c.complete({"watts": 4.25}),
        lambda c: c.count({"arm_cm": 70}),
        lambda c: c.domains({"dimmer": "maybe"}),
        lambda c: c.explain_price({"watts": "bright"}),
        lambda c: c.check(["shade", "paper"]),
        lambda c: c.complete({}, "weight"),
        lambda c: c.complete({}, "shade"),
        lambda c: c.complete({}, ""),
    ],
)
def test_bad_choices_and_objectives_raise_product_error(call):
    with pytest.raises(ProductError):
        call(Configurator(LAMP))


def test_bad_limits_raise_value_error():
    with pytest.raises(ValueError):
        Configurator(LAMP, time_limit=0)
    with pytest.raises(ValueError):
        Configurator(LAMP).count(limit=0)


# --- time limits on a large product ---------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_product()


def test_synthetic_product_is_large_mixed_and_valid(synthetic):
    assert len(synthetic.options) == 300 and len(synthetic.constraints) == 1000
    assert {c.kind for c in synthetic.constraints} >= {"rule", "requires", "excludes", "table"}
    assert {o.kind for o in synthetic.options.values()} == {"enum", "bool", "int", "decimal"}
    reference = coerce(synthetic, synthetic.spec.value_model.reference)
    assert not violated(synthetic, reference)
    assert synthetic_document(seed=3) == synthetic_document(seed=3)
    assert synthetic_document(seed=3) != synthetic_document(seed=4)


def test_no_time_left_means_timed_out_answers(synthetic):
    cfg = Configurator(synthetic, time_limit=1e-9)
    reference = coerce(synthetic, synthetic.spec.value_model.reference)
    partial = dict(list(reference.items())[:50])
    assert cfg.check(partial) == configurator_module.Check(None, None, True)
    done = cfg.complete(partial)
    assert done.timed_out and done.resolved is None and not done.optimal
    count = cfg.count()
    assert not count.exact and count.timed_out and "time limit" in count.note
    domains = cfg.domains(partial)
    assert domains.timed_out and domains.forced == {}
    assert cfg.check(reference).valid is True  # a complete configuration needs no solver


def test_short_time_limits_stop_large_questions(synthetic):
    cfg = Configurator(synthetic, time_limit=0.05)
    count = cfg.count()
    assert not count.exact and count.timed_out
    assert cfg.domains({}).timed_out
    capped = Configurator(synthetic).count(limit=50)
    assert not capped.exact


def test_the_synthetic_product_is_configured(synthetic):
    cfg = Configurator(synthetic)
    assert cfg.contradictions() is None
    reference = coerce(synthetic, synthetic.spec.value_model.reference)
    partial = dict(list(reference.items())[:100])
    assert cfg.check(partial).valid is True
    done = cfg.complete(partial, "cost")
    assert done.resolved is not None and not violated(synthetic, done.resolved.choices)


# --- many threads, one configurator --------------------------------------------------------


def test_one_configurator_serves_many_threads():
    cfg = Configurator(MIXER)
    expected = {k: bool(valid(MIXER, coerce(MIXER, {"speed": k - 3}))) for k in range(8)}
    results: dict[int, object] = {}

    def work(k):
        objective = ["price", "cost", "time", "speed * gain"][k % 4]
        results[k] = (
            cfg.check({"speed": k % 8 - 3}).valid,
            cfg.complete({"speed": k % 8 - 3}, objective).objective_value,
        )

    threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, (ok, _) in results.items():
        assert ok is expected[k % 8]
    for k in range(16):
        objective = ["price", "cost", "time", "speed * gain"][k % 4]
        assert results[k][1] == cfg.complete({"speed": k % 8 - 3}, objective).objective_value


# --- random products ------------------------------------------------------------------------

OPTION_SPECS = st.sampled_from(
    [
        {"type": "enum", "values": ["p", "q", "r"]},
        {"type": "enum", "values": ["p", "s"]},
        {"type": "bool"},
        {"type": "int", "min": -2, "max": 2},
        {"type": "decimal", "min": -0.5, "max": 1, "step": 0.5},
    ]
)


@st.composite
def random_products(draw):
    kinds = draw(st.lists(OPTION_SPECS, min_size=2, max_size=4))
    options = [{"id": f"o{i}", **k} for i, k in enumerate(kinds)]
    names = [o["id"] for o in options]
    nums = [o["id"] for o in options if o["type"] != "enum"] or ["1"]
    enums = [o for o in options if o["type"] == "enum"]
    leaf = st.one_of(st.sampled_from(nums), st.sampled_from(["0", "1", "-1", "0.5"]))
    term = st.recursive(
        leaf,
        lambda c: st.one_of(
            st.tuples(c, st.sampled_from("+-*"), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(c, c).map(lambda t: f"max({t[0]}, {t[1]})"),
            st.tuples(c, c).map(lambda t: f"min({t[0]}, {t[1]})"),
            c.map(lambda a: f"abs({a})"),
        ),
        max_leaves=4,
    )
    atoms = [st.tuples(term, st.sampled_from(["<", "<=", "==", "!=", ">="]), term).map(" ".join)]
    for e in enums:
        atoms.append(st.sampled_from([f"{e['id']} == '{v}'" for v in e["values"]]))
    atom = st.one_of(*atoms)
    cond = st.one_of(
        atom,
        st.tuples(atom, atom).map(lambda t: f"{t[0]} or {t[1]}"),
        st.tuples(atom, atom).map(lambda t: f"not ({t[0]} and {t[1]})"),
    )
    rules = draw(st.lists(cond, min_size=1, max_size=4))
    constraints = [{"id": f"c{i}", "message": f"Rule {i}.", "rule": r} for i, r in enumerate(rules)]
    objective = draw(term)
    product = product_from_data(
        {
            "id": "org.example.random",
            "version": "1.0.0",
            "name": "Random",
            "options": options,
            "constraints": constraints,
            "pricing": {"base": 1},
        }
    )
    fixed_name = draw(st.sampled_from(names))
    fixed = {fixed_name: draw(st.sampled_from(product.options[fixed_name].domain()))}
    return product, objective, fixed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_products(), st.sampled_from([1, 300]))
def test_random_products_agree_with_brute_force(case, leaf):
    product, objective, fixed = case
    configurator_module.LEAF_COMBINATIONS, saved = leaf, configurator_module.LEAF_COMBINATIONS
    try:
        cfg = Configurator(product)
        for choices in ({}, fixed):
            configs = valid(product, choices)
            count = cfg.count(choices)
            assert count.exact and count.count == len(configs)
            check = cfg.check(choices)
            assert check.valid is bool(configs)
            if not configs:
                assert_minimal(product, check.conflict)
                continue
            assert cfg.domains(choices).possible == brute_domains(product, choices)
            expr = parse(objective, product.scope, want="num")
            for maximize in (False, True):
                best = (max if maximize else min)(evaluate(expr, c) for c in configs)
                got = cfg.complete(choices, objective, maximize=maximize)
                assert got.optimal and got.objective_value == best
        conflict = cfg.contradictions()
        assert (conflict is None) is bool(valid(product))
        if conflict is not None:
            assert_minimal(product, conflict)
    finally:
        configurator_module.LEAF_COMBINATIONS = saved
