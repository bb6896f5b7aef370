"""``liquidfab factory``: check, simulate, sweep and compare factory layouts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from liquidfab.cli_post import KeystoreOpt, sign_and_post
from liquidfab.errors import DocumentError, LiquidfabError

factory_app = typer.Typer(
    help="Virtual factory: simulate a layout, sweep layout variants, compare two layouts.",
    no_args_is_help=True,
)
console = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False)

LayoutArg = Annotated[Path, typer.Argument(help="Layout file (YAML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ProductOpt = Annotated[
    Path | None,
    typer.Option(
        "--product",
        "-p",
        help="Product file for routing times (default: the one the layout names).",
    ),
]
JobsOpt = Annotated[int | None, typer.Option("--jobs", "-n", help="Jobs per replication.")]
HorizonOpt = Annotated[
    float | None,
    typer.Option("--horizon", help="Seconds per replication (instead of a job count)."),
]
RepsOpt = Annotated[int | None, typer.Option("--reps", "-r", help="Replications.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of the random streams.")]
EngineOpt = Annotated[str, typer.Option("--engine", help="auto, exact or des.")]
ChartsOpt = Annotated[
    Path | None, typer.Option("--charts", help="Folder for PNG and SVG pictures.")
]


def jsonable(value: Any) -> Any:
    from liquidfab.factory.simulation import jsonable as strict

    return strict(value)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _problems(e: DocumentError, what: str) -> typer.Exit:
    for line in e.render().splitlines():
        err.print(escape(line), soft_wrap=True)
    n = len(e.problems)
    return _fail(f"{what}: {n} problem{'s' if n != 1 else ''}")


def _load(file: Path, product: Path | None = None) -> Any:
    from liquidfab.factory import load_layout
    from liquidfab.product import load_product

    try:
        compiled = load_product(product) if product else None
        return load_layout(file, product=compiled)
    except DocumentError as e:
        raise _problems(e, str(file)) from e


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _simulate(layout: Any, label: str, **kwargs: Any) -> Any:
    from liquidfab.factory import simulate

    with _progress() as bar:
        task = bar.add_task(label, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            return simulate(layout, progress=tick, **kwargs)
        except (LiquidfabError, ValueError) as e:
            if isinstance(e, DocumentError):
                raise _problems(e, layout.file) from e
            raise _fail(str(e)) from e


def _fmt(est: Any, digits: int = 2) -> str:
    return f"{est.mean:,.{digits}f} ± {est.half_width:,.{digits}f}"


def _print_report(report: Any) -> None:
    d = report.to_dict()
    conf = round(report.confidence * 100)
    console.print(
        f"[bold]{escape(report.layout.name)}[/bold] {report.layout.version} — "
        f"{report.engine} engine, {len(report.replications)} "
        f"replication{'s' if len(report.replications) != 1 else ''} of "
        + (f"{report.jobs:,} jobs" if report.jobs else f"{report.horizon:,.0f} s")
        + f", warm-up {report.warmup} jobs, seed {report.seed}"
    )
    kpis = Table(title=f"Line ({conf}% confidence intervals)", title_justify="left")
    kpis.add_column("KPI")
    kpis.add_column("mean ± half-width", justify="right")
    per = "calendar hour" if report.layout.calendar else "hour"
    kpis.add_row(f"throughput (jobs per {per})", _fmt(report.throughput, 3))
    kpis.add_row(
        "lead time (min)",
        f"{report.lead_time.mean / 60:,.1f} ± {report.lead_time.half_width / 60:,.1f}",
    )
    kpis.add_row("WIP (jobs)", _fmt(report.wip))
    q = report.lead_time_quantiles()
    if q:
        kpis.add_row(
            "lead time p50 / p90 / p99 (min)",
            " / ".join(f"{q[k] / 60:,.1f}" for k in (0.5, 0.9, 0.99)),
        )
    kpis.add_row(
        "completed / scrapped after warm-up; sent to rework (whole run)",
        f"{d['completed']:,} / {d['scrapped']:,}; {d['reworked']:,}",
    )
    console.print(kpis)
    from liquidfab.factory.simulation import STATES

    table = Table(
        title="Stations (share of time; ranked by active share = bottleneck first)",
        title_justify="left",
    )
    for col in ("station", "servers", *STATES, "OEE"):
        table.add_column(col, justify="left" if col == "station" else "right")
    for s in report.bottlenecks():
        table.add_row(s.id, str(s.servers), *(f"{s.shares[k]:.1%}" for k in STATES), f"{s.oee:.1%}")
    console.print(table)
    console.print(f"Bottleneck: [bold]{report.bottlenecks()[0].id}[/bold]")
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)


def _charts(report: Any, folder: Path) -> list[Path]:
    from liquidfab.factory import charts

    out = []
    for fmt in charts.FORMATS:
        out.append(charts.write(charts.render_state_shares(report, fmt), folder / f"states.{fmt}"))
        if any(r.leads.size for r in report.replications):
            out.append(
                charts.write(charts.render_lead_times(report, fmt), folder / f"lead-times.{fmt}")
            )
        if report.gantt:
            out.append(charts.write(charts.render_gantt(report, fmt), folder / f"gantt.{fmt}"))
    return out


@factory_app.command("validate")
def validate(file: LayoutArg, product: ProductOpt = None) -> None:
    """Check a layout: schema, references, rework loops that could lock, overload."""
    layout = _load(file, product)
    reason = layout.exact_reason()
    console.print(
        f"[green]ok[/green] {layout.id} {layout.version}: {len(layout.stations)} "
        f"stations, {len(layout.variants)} variants; engine: "
        + ("exact (serial line)" if reason is None else f"general ({reason})")
    )


@factory_app.command("simulate")
def simulate_cmd(
    file: LayoutArg,
    product: ProductOpt = None,
    jobs: JobsOpt = None,
    horizon: HorizonOpt = None,
    reps: RepsOpt = None,
    seed: SeedOpt = None,
    engine: EngineOpt = "auto",
    target: Annotated[
        float | None,
        typer.Option(
            help="Add replications until the throughput CI half-width is this share of the mean."
        ),
    ] = None,
    charts: ChartsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a layout: throughput, lead time, WIP, station states, bottleneck, OEE."""
    if engine not in ("auto", "exact", "des"):
        raise _fail("--engine is auto, exact or des")
    layout = _load(file, product)
    report = _simulate(
        layout,
        "simulating",
        jobs=jobs,
        horizon=horizon,
        replications=reps,
        seed=seed,
        engine=engine,
        target_half_width=target,
    )
    if as_json:
        console.print_json(json.dumps(jsonable(report.to_dict())))
    else:
        _print_report(report)
    if charts:
        for path in _charts(report, charts):
            console.print(f"wrote {path}")


@factory_app.command("sweep")
def sweep_cmd(
    file: Annotated[Path, typer.Argument(help="Sweep file (YAML).")],
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address, tcp://host:port (default: local processes)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes.")] = None,
    out: Annotated[Path | None, typer.Option(help="Table to write (.csv or .parquet).")] = None,
    charts: ChartsOpt = None,
    jobs: JobsOpt = None,
    reps: RepsOpt = None,
    top: Annotated[int, typer.Option(help="Rows of the ranking to print.")] = 10,
) -> None:
    """Run every layout variant of a sweep with common random numbers and rank them."""
    from liquidfab.factory import charts as pictures
    from liquidfab.factory.experiment import load_sweep, run_sweep

    try:
        sweep = load_sweep(file)
    except DocumentError as e:
        raise _problems(e, str(file)) from e
    run: dict[str, Any] = {}
    if jobs:
        run["jobs"] = jobs
    if reps:
        run["replications"] = reps
    console.print(
        f"[bold]{escape(sweep.spec.sweep.name)}[/bold]: {len(sweep.variants)} layouts"
        f" of {sweep.base.id}, on "
        + (f"the Dask cluster at {scheduler}" if scheduler else "local processes")
    )
    with _progress() as bar:
        task = bar.add_task("layouts", total=len(sweep.variants))
        try:
            result = run_sweep(
                sweep,
                workers=workers,
                scheduler=scheduler,
                run=run,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        except DocumentError as e:
            raise _problems(e, str(file)) from e
        except LiquidfabError as e:
            raise _fail(str(e)) from e
    kpi = result.kpi
    table = Table(
        title=f"Layouts ranked by {kpi.replace('_', ' ')} (top {top})", title_justify="left"
    )
    for col in (
        "#",
        "layout",
        "throughput/h [CI]",
        "lead time (min)",
        "WIP",
        "bottleneck",
        "engine",
    ):
        table.add_column(
            col, justify="right" if col in ("#", "throughput/h [CI]", "WIP") else "left"
        )
    for k, row in enumerate(result.ranked()[:top], 1):
        table.add_row(
            str(k),
            row["name"],
            f"{row['throughput_mean']:.3f} [{row['throughput_low']:.3f}, "
            f"{row['throughput_high']:.3f}]",
            f"{row['lead_time_mean'] / 60:,.1f}",
            f"{row['wip_mean']:.1f}",
            row["bottleneck"],
            row["engine"],
        )
    console.print(table)
    legend = result.legend()
    if legend:
        console.print(escape(legend), soft_wrap=True)
    console.print(escape(result.verdict()), soft_wrap=True)
    console.print(f"{len(result.results)} layouts in {result.seconds:.1f} s")
    spec_out = sweep.spec.output
    table_path = out or (sweep.folder / spec_out.table if spec_out.table else None)
    if table_path:
        console.print(f"wrote {result.write_table(table_path)}")
    folder = charts or (sweep.folder / spec_out.charts if spec_out.charts else None)
    if folder:
        from liquidfab.factory import simulate

        best = result.best()
        best_layout = sweep.base.revised(next(c for n, c in sweep.variants if n == best["name"]))
        report = simulate(best_layout, **{**sweep.spec.sweep.run, **run})
        for fmt in pictures.FORMATS:
            rows = result.rows()
            path = pictures.write(
                pictures.render_sweep(
                    rows,
                    kpi=kpi,
                    title=f"{sweep.spec.sweep.name}: {kpi.replace('_', ' ')} against buffer places",
                    best_name=best["name"],
                    fmt=fmt,
                ),
                folder / f"{kpi}-by-buffers.{fmt}",
            )
            console.print(f"wrote {path}")
        for path in _charts(report, folder):
            console.print(f"wrote {path} (best layout)")


@factory_app.command("compare")
def compare_cmd(
    a: Annotated[Path, typer.Argument(help="First layout.")],
    b: Annotated[Path, typer.Argument(help="Second layout.")],
    product: ProductOpt = None,
    jobs: JobsOpt = None,
    reps: RepsOpt = None,
    seed: SeedOpt = None,
    kpi: Annotated[str, typer.Option(help="throughput, lead_time or wip.")] = "throughput",
    as_json: JsonOpt = False,
) -> None:
    """Which of two layouts is better, by how much, with what confidence (paired
    replications with common random numbers)."""
    from liquidfab.factory.statistics import paired_difference

    if kpi not in ("throughput", "lead_time", "wip"):
        raise _fail("--kpi is throughput, lead_time or wip")
    first, second = _load(a, product), _load(b, product)
    replications = reps or first.spec.run.replications
    if replications < 2:
        raise _fail("a comparison needs at least 2 replications (--reps)")
    # both layouts run alike: A's end (job count or horizon), replications and seed
    kwargs: dict[str, Any] = {
        "replications": replications,
        "seed": seed if seed is not None else first.spec.run.seed,
    }
    if jobs or first.spec.run.horizon is None:
        kwargs["jobs"] = jobs or first.spec.run.jobs
    else:
        kwargs["horizon"] = first.spec.run.horizon
    ra = _simulate(first, f"A: {first.name}", **kwargs)
    rb = _simulate(second, f"B: {second.name}", **kwargs)
    higher = kpi == "throughput"
    cmp = paired_difference(ra.values(kpi), rb.values(kpi), ra.confidence, higher_is_better=higher)
    unit = {"throughput": "jobs/h", "lead_time": "s", "wip": "jobs"}[kpi]
    sentence = cmp.sentence(
        f"A ({first.name})", f"B ({second.name})", kpi=kpi.replace("_", " "), unit=unit
    )
    if as_json:
        console.print_json(
            json.dumps(
                jsonable(
                    {
                        "a": ra.to_dict(),
                        "b": rb.to_dict(),
                        "kpi": kpi,
                        "better": cmp.better,
                        "difference": cmp.difference.to_dict(),
                        "ratio": cmp.ratio,
                        "sentence": sentence,
                    }
                )
            )
        )
        return
    table = Table(title=f"{kpi.replace('_', ' ')} ({unit})", title_justify="left")
    table.add_column("layout")
    table.add_column("mean ± half-width", justify="right")
    table.add_column("engine")
    for name, r in (("A " + first.name, ra), ("B " + second.name, rb)):
        table.add_row(escape(name), _fmt(r.estimate(kpi), 3), r.engine)
    console.print(table)
    console.print(escape(sentence), soft_wrap=True)


@factory_app.command("schema")
def schema(
    out: Annotated[Path, typer.Option(help="File to write.")] = Path(
        "docs/schemas/layout.schema.json"
    ),
) -> None:
    """Write the JSON Schema of layout files, for editors."""
    from liquidfab.factory import layout_json_schema

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(layout_json_schema(), indent=2, sort_keys=True) + "\n", "utf-8")
    console.print(str(out))


@factory_app.command("publish")
def publish(
    file: LayoutArg,
    key: Annotated[str, typer.Option("--key", help="The publisher's key name.")],
    product: ProductOpt = None,
    node: Annotated[str, typer.Option(help="Node URL.")] = "http://127.0.0.1:8000",
    keystore: KeystoreOpt = Path.home() / ".liquidfab" / "keys",
) -> None:
    """Sign the layout with KEY and publish it (its product must be published first; a
    version is immutable)."""
    from liquidfab.factory.messages import PUBLISH, publishable_document

    layout = _load(file, product)
    sign_and_post(keystore, key, PUBLISH, {"layout": publishable_document(layout)}, node)


@factory_app.command("cost")
def cost_cmd(
    file: LayoutArg,
    product: ProductOpt = None,
    chart: Annotated[
        Path | None, typer.Option(help="Write the cost curve against volume (PNG, or SVG).")
    ] = None,
    line_cost_per_hour: Annotated[
        str | None, typer.Option(help="What the line costs per hour, in the product's currency.")
    ] = None,
    simulate_jobs: Annotated[
        int | None,
        typer.Option(min=10, max=1_000_000, help="Check the changeover estimate by simulation."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """What a personalized unit costs on this line against a standard one, what a
    changeover costs, and cost per unit against volume."""
    from liquidfab.errors import ProductError
    from liquidfab.production import cost_model, write_cost_chart

    layout = _load(file, product)
    if layout.product is None:
        raise _fail(f"{file}: the layout names no product; give --product")
    try:
        report = cost_model(
            layout.product,
            layout,
            line_cost_per_hour=line_cost_per_hour,
            simulate_jobs=simulate_jobs,
        )
    except (ProductError, ValueError, ArithmeticError) as e:
        raise _fail(str(e)) from e
    if as_json:
        console.print_json(json.dumps(jsonable(report.to_dict())))
    else:
        for line in report.text():
            console.print(escape(line), soft_wrap=True)
    if chart is not None:
        console.print(f"chart: {write_cost_chart(report, chart)}")
