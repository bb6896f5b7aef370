"""``liquidfab fleet``: device software releases in the world's TUF repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from liquidfab.errors import LiquidfabError

__all__ = ["fleet_app"]

fleet_app = typer.Typer(
    help="Device software: the TUF repository of releases.", no_args_is_help=True
)
_out = Console(emoji=False, highlight=False)
_err = Console(stderr=True, emoji=False, highlight=False)
WorldOpt = Annotated[Path, typer.Option(help="World folder (with world.yaml).")]


@fleet_app.command("publish")
def publish(
    file: Annotated[Path, typer.Argument(help="The artifact (firmware image, app, model).")],
    product: Annotated[str, typer.Option(help="Product id it is for.")],
    hardware: Annotated[str, typer.Option(help="Hardware it runs on.")],
    version: Annotated[str, typer.Option(help="Its version.")],
    kind: Annotated[str, typer.Option(help="firmware, app, model or config.")] = "firmware",
    name: Annotated[
        str | None, typer.Option(help="Target name; default <product>/<file name>.")
    ] = None,
    world: WorldOpt = Path("examples/ebike"),
) -> None:
    """Publish an artifact as a TUF target, signed with the operator's targets key
    (``tuf-targets`` in the world's keystore); the node's online keys sign the new
    snapshot and timestamp."""
    from liquidfab.fleet.service import OFFLINE_KEYS, open_repository
    from liquidfab.node.world import load_world, repository_folder

    try:
        data = file.read_bytes()
    except OSError as e:
        _err.print(f"[red]error:[/red] cannot read {escape(str(file))}: {e.strerror}")
        raise typer.Exit(1) from e
    try:
        keystore = load_world(world).keystore(world)
        service = open_repository(repository_folder(world), keystore)
        target = name or f"{product}/{file.name}"
        custom = {"product": product, "hardware": hardware, "version": version, "kind": kind}
        info = service.publish(target, data, custom, targets_key=keystore.get(OFFLINE_KEYS[1]))
    except LiquidfabError as e:
        _err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1) from e
    version_now = service.repository.targets().signed.version
    _out.print(f"published {info.name}: {info.length:,} bytes, sha256 {info.sha256}")
    _out.print(f"targets version {version_now}; devices fetch /tuf/targets/{info.stored_as}")
