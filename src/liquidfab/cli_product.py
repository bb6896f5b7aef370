"""``liquidfab product``: check, configure, explain, count, export and value a product file."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from liquidfab.cli_post import KeystoreOpt, sign_and_post
from liquidfab.errors import LiquidfabError, ProductError

product_app = typer.Typer(
    help="Products as code: validate, configure, explain, count variants, export AAS, value.",
    no_args_is_help=True,
)
console = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False)

FileArg = Annotated[Path, typer.Argument(help="Product file (YAML or JSON).")]
ChoicesArg = Annotated[
    list[str] | None, typer.Argument(help="Choices as option=value, e.g. frame_size=M rack=true.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TimeOpt = Annotated[float, typer.Option(help="Seconds each solve may take at most.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _load(file: Path) -> Any:
    from liquidfab.product import load_product

    try:
        return load_product(file)
    except ProductError as e:
        for line in e.render().splitlines():
            err.print(escape(line), soft_wrap=True)
        n = len(e.problems)
        raise _fail(f"{file}: {n} problem{'s' if n != 1 else ''}") from e


def _choices(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _fail(f"{item!r}: write a choice as option=value")
        if key.strip() in out:
            raise _fail(f"{key.strip()} is chosen twice")
        out[key.strip()] = value.strip()
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _configurator(product: Any, time_limit: float) -> Any:
    from liquidfab.product.configurator import Configurator

    return Configurator(product, time_limit=time_limit)


def _guard(fn: Any) -> Any:
    try:
        return fn()
    except ProductError as e:
        for path, _line, message in e.problems:
            err.print(escape(f"{path}: {message}" if path else message), soft_wrap=True)
        raise _fail("the choices are not usable") from e
    except (LiquidfabError, ValueError) as e:
        raise _fail(str(e)) from e


def _print_conflict(conflict: Any) -> None:
    console.print("[bold red]Not a valid configuration.[/bold red]")
    for sentence in conflict.sentences:
        console.print(f"  • {escape(sentence)}", soft_wrap=True)
    if not conflict.minimal:
        console.print("  [muted](the time limit stopped the search for the smallest set)[/]")


@product_app.command("validate")
def validate(file: FileArg, time_limit: TimeOpt = 5.0, as_json: JsonOpt = False) -> None:
    """Check a product file: schema, expressions, references, BOM cycles, satisfiability."""
    product = _load(file)
    cfg = _configurator(product, time_limit)
    conflict = _guard(cfg.contradictions)
    count = _guard(lambda: cfg.count(limit=200_000))
    domains = _guard(lambda: cfg.domains({}))
    dead = []
    if conflict is None:
        for option in product.options.values():
            possible = domains.possible.get(option.id)
            if isinstance(possible, list) and option.size <= 200:
                dead += [(option.id, v) for v in option.domain() if v not in possible]
    purchased = [p for p in product.parts.values() if p.supplier is not None]
    summary = {
        "product": product.id,
        "version": product.version,
        "digest": product.digest(),
        "options": len(product.options),
        "constraints": len(product.constraints),
        "parts": len(product.parts),
        "purchased_parts": len(purchased),
        "suppliers": len({p.supplier.id for p in purchased}),
        "features": len(product.features),
        "stations": len(product.stations),
        "operations": len(product.routing),
        "combinations": product.variant_space(),
        "valid_variants": count.count,
        "count_exact": count.exact,
        "count_note": count.note,
        "never_possible": [f"{k}={_plain(v)}" for k, v in dead],
        "valid": conflict is None,
    }
    if as_json:
        console.print_json(json.dumps(summary))
    else:
        console.print(f"[bold]{escape(product.name)}[/bold]  {product.id} {product.version}")
        console.print(
            f"{summary['options']} options, {summary['constraints']} constraints, "
            f"{summary['purchased_parts']} purchased parts from {summary['suppliers']} suppliers, "
            f"{summary['features']} software features, {summary['operations']} operations on "
            f"{summary['stations']} stations"
        )
        bound = "" if count.exact else " (a bound: " + count.note + ")"
        console.print(
            f"{count.count:,} valid variants{bound} of {summary['combinations']:,} combinations"
        )
        for item in summary["never_possible"]:
            console.print(f"[yellow]warning:[/yellow] {item} is never possible", soft_wrap=True)
        console.print(f"digest {summary['digest']}")
    if conflict is not None:
        console.print("[bold red]No variant is valid:[/bold red] these constraints contradict:")
        for constraint in conflict.constraints:
            console.print(f"  • {constraint.id}: {escape(constraint.message)}", soft_wrap=True)
        raise typer.Exit(1)


def _print_resolved(resolved: Any) -> None:
    product = resolved.product
    table = Table(title="Configuration", show_header=False)
    for key, value in resolved.choices.items():
        option = product.options[key]
        table.add_row(option.label, escape(option.show(value)))
    console.print(table)
    prices = Table(title=f"Price ({product.currency})")
    prices.add_column("line")
    prices.add_column("amount", justify="right")
    for line in resolved.price_lines:
        prices.add_row(escape(line.label), f"{line.amount:,.2f}")
    prices.add_row("[bold]total[/bold]", f"[bold]{resolved.price:,.2f}[/bold]")
    console.print(prices)
    tree = Tree(f"BOM of {escape(product.name)}")
    stack: list[Any] = [tree]
    for item in resolved.bom:
        del stack[item.level :]
        qty = _plain(item.quantity)
        supplier = f"  [dim]{item.supplier}[/dim]" if item.supplier else ""
        cost = f"  {item.cost:,.2f}" if item.purchased else ""
        stack.append(
            stack[-1].add(f"{qty} {item.unit} {escape(item.name)} ({item.part}){supplier}{cost}")
        )
    console.print(tree)
    routing = Table(title="Routing")
    for col in ("operation", "station", "seconds", "parameters"):
        routing.add_column(col, justify="right" if col == "seconds" else "left")
    for op in resolved.operations:
        params = ", ".join(f"{k}={_plain(v)}" for k, v in op.parameters.items())
        routing.add_row(op.id, op.station, f"{float(op.seconds):g}", escape(params))
    console.print(routing)
    console.print(
        f"unit cost {resolved.unit_cost:,.2f} (parts {resolved.material_cost:,.2f}, "
        f"labour {resolved.labour_cost:,.2f}); build time {float(resolved.build_seconds):g} s; "
        f"longest part lead time {resolved.lead_time_days} days"
    )


@product_app.command("configure")
def configure(
    file: FileArg,
    choices: ChoicesArg = None,
    objective: Annotated[
        str, typer.Option(help="price, cost, time, or an expression over the options.")
    ] = "price",
    maximize: Annotated[bool, typer.Option("--max", help="Maximize instead.")] = False,
    time_limit: TimeOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Complete a (partial) configuration optimally; print its price, BOM and routing."""
    product = _load(file)
    cfg = _configurator(product, time_limit)
    chosen = _choices(choices)
    completion = _guard(lambda: cfg.complete(chosen, objective, maximize=maximize))
    if as_json:
        data = completion.to_dict()
        if completion.resolved is not None:
            data["resolved"] = completion.resolved.to_dict()
        console.print_json(json.dumps(data))
    if completion.resolved is None:
        if completion.conflict is not None:
            if not as_json:
                _print_conflict(completion.conflict)
            raise typer.Exit(1)
        raise _fail("the time limit passed before any valid completion was found; raise it")
    if not as_json:
        _print_resolved(completion.resolved)
        how = "optimal" if completion.optimal else "best found within the time limit"
        console.print(
            f"{'maximum' if maximize else 'minimum'} {objective}: "
            f"{_plain(completion.objective_value)} ({how})"
        )


@product_app.command("explain")
def explain(
    file: FileArg, choices: ChoicesArg = None, time_limit: TimeOpt = 5.0, as_json: JsonOpt = False
) -> None:
    """Say why choices are invalid, what is still possible, or how the price is made."""
    product = _load(file)
    cfg = _configurator(product, time_limit)
    chosen = _choices(choices)
    check = _guard(lambda: cfg.check(chosen))
    if check.valid is False:
        if as_json:
            console.print_json(json.dumps(check.to_dict()))
        else:
            _print_conflict(check.conflict)
        raise typer.Exit(1)
    if check.valid is None:
        raise _fail("the time limit passed before the choices could be checked; raise it")
    if len(chosen) == len(product.options):
        price = _guard(lambda: cfg.explain_price(chosen))
        if as_json:
            console.print_json(json.dumps(price.to_dict()))
            return
        for sentence in price.sentences:
            console.print(escape(sentence), soft_wrap=True)
        return
    domains = _guard(lambda: cfg.domains(chosen))
    if as_json:
        console.print_json(json.dumps(domains.to_dict()))
        return
    console.print("Valid so far. Still possible:")
    table = Table()
    table.add_column("option")
    table.add_column("possible values")
    for option in product.options.values():
        if option.id in chosen:
            continue
        possible = domains.to_dict()["possible"].get(option.id)
        forced = " (forced)" if option.id in domains.forced else ""
        table.add_row(option.id, escape(json.dumps(possible)) + forced)
    console.print(table)


@product_app.command("variants")
def variants(
    file: FileArg,
    choices: ChoicesArg = None,
    limit: Annotated[int, typer.Option(help="Stop counting a component past this.")] = 1_000_000,
    time_limit: TimeOpt = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Count the valid variants (given some choices): exact where feasible, else a bound."""
    product = _load(file)
    cfg = _configurator(product, time_limit)
    chosen = _choices(choices)
    count = _guard(lambda: cfg.count(chosen, limit=limit))
    if as_json:
        console.print_json(json.dumps(count.to_dict()))
        return
    kind = "exactly" if count.exact else "bound:"
    console.print(f"{kind} {count.count:,} valid variants", soft_wrap=True)
    if count.note:
        console.print(escape(count.note), soft_wrap=True)


@product_app.command("export-aas")
def export_aas(
    file: FileArg,
    out: Annotated[Path | None, typer.Option(help="File to write; .json or .aasx.")] = None,
    unit: Annotated[
        list[str] | None,
        typer.Option(help="A unit's choice option=value (repeat); exports an as-built shell."),
    ] = None,
    serial: Annotated[str, typer.Option(help="Serial number of the unit.")] = "PROTO-0001",
) -> None:
    """Export the product type (or one configured unit) as an Asset Administration Shell."""
    from liquidfab.product.aas import type_shell, unit_shell, verify_environment

    product = _load(file)
    if unit:
        chosen = _choices(unit)
        cfg = _configurator(product, 5.0)
        completion = _guard(lambda: cfg.complete(chosen, "price"))
        if completion.resolved is None:
            if completion.conflict is not None:
                _print_conflict(completion.conflict)
            raise typer.Exit(1)
        export = unit_shell(product, completion.resolved, serial)
        default = f"{product.id}-{serial}.aasx"
    else:
        export = type_shell(product)
        default = f"{product.id}-{product.version}.aasx"
    path = out or Path(default)
    errors = verify_environment(export.to_jsonable())
    if errors:
        for e in errors:
            err.print(escape(e), soft_wrap=True)
        raise _fail(f"the export fails AAS verification ({len(errors)} errors); nothing written")
    if path.suffix == ".json":
        export.write_json(path)
    elif path.suffix == ".aasx":
        export.write_aasx(path)
    else:
        raise _fail("--out ends in .json or .aasx")
    console.print(
        f"{path}  shell {export.shell_id}, {len(export.submodel_ids)} submodels, "
        "verified (aas-core3.0): 0 errors",
        soft_wrap=True,
    )


@product_app.command("value")
def value(
    file: FileArg,
    chart: Annotated[Path | None, typer.Option(help="PNG (or .svg) to write.")] = None,
    life_months: Annotated[int | None, typer.Option(help="Override the life in months.")] = None,
    attach: Annotated[
        list[str] | None, typer.Option(help="Override an attach rate: feature=0.3 (repeat).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Hardware margin against software revenue per unit over its life; writes the chart."""
    from liquidfab.product.value import value_model
    from liquidfab.product.value_chart import write_chart

    product = _load(file)
    assumptions = product.spec.value_model
    changes: dict[str, Any] = {}
    if life_months is not None:
        changes["life_months"] = life_months
    if attach:
        rates = dict(assumptions.attach_rates)
        for key, rate in _choices(attach).items():
            try:
                rates[key] = Decimal(rate)
            except ArithmeticError as e:
                raise _fail(f"attach rate {rate!r} for {key} is not a number") from e
        changes["attach_rates"] = rates
    if changes:
        from pydantic import ValidationError

        try:
            assumptions = type(assumptions).model_validate({**assumptions.model_dump(), **changes})
        except ValidationError as e:
            raise _fail(f"bad assumption: {e.errors()[0]['msg']}") from e
    cfg = _configurator(product, 5.0)
    reference = {
        k: (v if isinstance(v, bool | str) else str(v)) for k, v in assumptions.reference.items()
    }
    completion = _guard(lambda: cfg.complete(reference, "price"))
    if completion.resolved is None:
        raise _fail("the reference unit has no valid completion")
    report = _guard(lambda: value_model(product, completion.resolved, assumptions))
    path = chart or Path(f"{product.id}-{product.version}-value.png")
    _guard(lambda: write_chart(report, path))
    if as_json:
        console.print_json(json.dumps({**report.to_dict(), "chart": str(path)}))
        return
    console.print(escape(report.render()), soft_wrap=True)
    console.print(f"chart: {path}")


@product_app.command("publish")
def publish(
    file: FileArg,
    key: Annotated[str, typer.Option("--key", help="The manufacturer's key name.")],
    node: Annotated[str, typer.Option(help="Node URL.")] = "http://127.0.0.1:8000",
    keystore: KeystoreOpt = Path.home() / ".liquidfab" / "keys",
) -> None:
    """Sign the definition with KEY and publish it to the node (a version is immutable)."""
    from liquidfab.product.messages import PUBLISH

    product = _load(file)
    sign_and_post(keystore, key, PUBLISH, {"definition": product.document()}, node)


@product_app.command("schema")
def schema(
    out: Annotated[Path, typer.Option(help="File to write.")] = Path(
        "docs/schemas/product.schema.json"
    ),
) -> None:
    """Write the JSON Schema of product files, for editors."""
    from liquidfab.product import product_json_schema

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(product_json_schema(), indent=2, sort_keys=True) + "\n", "utf-8")
    console.print(str(out))
