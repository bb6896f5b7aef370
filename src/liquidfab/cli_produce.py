"""``liquidfab produce``: personal orders run end to end in an example world's node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from liquidfab.errors import LiquidfabError

__all__ = ["produce_command"]

_out = Console(emoji=False, highlight=False)
_err = Console(stderr=True, emoji=False, highlight=False)


def produce_command(
    world: Annotated[Path, typer.Option(help="World folder (with world.yaml).")] = Path(
        "examples/ebike"
    ),
    orders: Annotated[int, typer.Option(min=1, max=1_000_000, help="Orders to run.")] = 100,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Orders sequenced and built together.")
    ] = 100,
    seed: Annotated[int, typer.Option(help="Seed of configurations and the line.")] = 0,
    faults: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Probability that a program step fails.")
    ] = 0.01,
    db: Annotated[
        str | None,
        typer.Option(help="Database URL; default: sqlite file in WORLD/state/node.db."),
    ] = None,
    bundles: Annotated[
        Path | None,
        typer.Option(help="Write each unit's provisioning bundle (with its private key) here."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Generate personal orders from customers and run them end to end on the virtual line:
    placed with escrow, sequenced, parts supplied, built, recorded, delivered and paid."""
    from liquidfab.ledger import audit
    from liquidfab.node.world import open_world_node
    from liquidfab.production.produce import ProduceSettings, produce

    try:
        settings = ProduceSettings(
            orders=orders, batch=batch, seed=seed, fault_probability=faults, bundles=bundles
        )
        node = open_world_node(world, db)
    except (LiquidfabError, ValueError) as e:
        _err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1) from e
    columns = (
        TextColumn("[bold]producing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("orders"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=_err, transient=as_json) as bar:
            task = bar.add_task("orders", total=orders)
            report = produce(
                node,
                world,
                settings,
                progress=lambda _s, done, _t: bar.update(task, completed=done),
            )
        verified = node.database.read(lambda c: audit(c, frozenset({node.did})))
    except LiquidfabError as e:
        _err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from e
    finally:
        node.close()
    if as_json:
        _out.print_json(json.dumps({**report.to_dict(), "ledger_ok": verified.ok}))
    else:
        for line in report.text():
            _out.print(escape(line), soft_wrap=True)
        state = "[green]ok[/green]" if verified.ok else "[red]FAILED[/red]"
        _out.print(f"ledger verify: {state} ({verified.transfers} transfers)")
        _out.print(f"the run is on the node's line page: /line (run {report.run_id})")
    if not verified.ok or report.unfinished:
        raise typer.Exit(1)
