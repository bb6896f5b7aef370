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


@fleet_app.command("simulate")
def simulate_cmd(
    devices: Annotated[int, typer.Option(min=1, max=100_000, help="How many devices.")] = 1000,
    world: WorldOpt = Path("examples/ebike"),
    work: Annotated[
        Path | None, typer.Option(help="A fresh folder for the run; default: a temporary one.")
    ] = None,
    transport: Annotated[str, typer.Option(help="http, or mqtt through the broker.")] = "http",
    mqtt: Annotated[str, typer.Option(help="The broker, for --transport mqtt.")] = (
        "mqtt://127.0.0.1:1883"
    ),
    failures: Annotated[
        float, typer.Option(min=0, max=1, help="Share of devices whose install fails.")
    ] = 0.05,
    power_loss: Annotated[
        float, typer.Option(min=0, max=1, help="Share losing power mid-install.")
    ] = 0.05,
    corrupt: Annotated[
        float, typer.Option(min=0, max=1, help="Share whose first download is corrupted.")
    ] = 0.0,
    offline: Annotated[
        float, typer.Option(min=0, max=1, help="Share going offline for a while.")
    ] = 0.0,
    poll_seconds: Annotated[int, typer.Option(min=1, help="The node's poll interval.")] = 5,
    waves: Annotated[str, typer.Option(help="Cumulative percentages.")] = "10,50,100",
    success_threshold: Annotated[
        float, typer.Option(min=0, max=1, help="Share of a wave that must succeed.")
    ] = 0.8,
    error_threshold: Annotated[
        float, typer.Option(min=0, max=1, help="Share of finished devices failing that pauses.")
    ] = 0.1,
    threads: Annotated[int, typer.Option(min=1, max=256, help="Device worker threads.")] = 16,
    timeout: Annotated[float, typer.Option(min=1, help="Give up after this many seconds.")] = (
        3600.0
    ),
    chart: Annotated[
        Path | None, typer.Option(help="PNG of devices per state; default WORK/states.png.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the injected faults.")] = 7,
) -> None:
    """Run DEVICES real device agents in one process against the world's node (started
    here, on a copy of the world), roll a firmware out to them in waves with injected
    faults, and report: outcome, devices per state over time, requests served, node CPU."""
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from liquidfab.fleet.simulate import Faults, SimulationSettings, simulate
    from liquidfab.fleet.simulate_report import plot_states, summary_lines

    try:
        wave_list = tuple(int(w) for w in waves.split(","))
    except ValueError as e:
        _err.print(f"[red]error:[/red] waves are whole percentages, like 10,50,100: {waves}")
        raise typer.Exit(1) from e
    folder = work or Path(tempfile.mkdtemp(prefix="liquidfab-fleet-"))
    settings = SimulationSettings(
        devices=devices, transport=transport, mqtt_url=mqtt, poll_seconds=poll_seconds,
        waves=wave_list, success_threshold=success_threshold, error_threshold=error_threshold,
        threads=threads,
        timeout_seconds=timeout, seed=seed,
    )  # fmt: skip
    faults = Faults(install_failure=failures, power_loss=power_loss, corrupt_download=corrupt,
                    offline=offline)  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=_out, transient=False) as progress:
        task = progress.add_task("setting up", total=devices, detail="")

        def on_sample(sample: dict) -> None:
            done = sample["updated"] + sample["rolled back"] + sample["refused"]
            detail = (f"wave {sample['wave'] + 1}, {sample['state']}; {sample['updating']} "
                      f"updating, {sample['off']} off")  # fmt: skip
            progress.update(task, completed=done, description="rolling out", detail=detail)

        try:
            report = simulate(
                world, folder, settings, faults, on_sample=on_sample,
                on_phase=lambda text: progress.update(task, description=text),
            )  # fmt: skip
        except LiquidfabError as e:
            _err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(1) from e
    picture = chart or folder / "states.png"
    plot_states(report, picture)
    for line in summary_lines(report):
        _out.print(escape(line))
    _out.print(f"report: {folder / 'report.json'}; picture: {picture}")
    if not report.ok:
        _err.print("[red]some devices were left without a working slot[/red]")
        raise typer.Exit(2)
