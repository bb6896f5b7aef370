"""The ``liquidfab`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from liquidfab.errors import LiquidfabError

app = typer.Typer(
    help="liquidfab: products as code, signed messages, value settled in tokens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Manage the Ed25519 keys in a keystore folder.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False)

KeystoreOpt = Annotated[
    Path,
    typer.Option("--keystore", "-k", envvar="LIQUIDFAB_KEYSTORE", help="Keystore folder."),
]
DEFAULT_KEYSTORE = Path.home() / ".liquidfab" / "keys"


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


@keys_app.command("new")
def keys_new(name: str, keystore: KeystoreOpt = DEFAULT_KEYSTORE) -> None:
    """Create a new key NAME (written 0600)."""
    from liquidfab.identity import Keystore

    try:
        key = Keystore(keystore).new(name)
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    console.print(f"{name}\t{key.did}", markup=False, soft_wrap=True)


@keys_app.command("list")
def keys_list(keystore: KeystoreOpt = DEFAULT_KEYSTORE) -> None:
    """List the keys in the keystore (never their secrets)."""
    from liquidfab.identity import Keystore

    try:
        infos = Keystore(keystore).list()
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    # One line per key, never wrapped or cut: dids are copied whole and piped into scripts.
    for info in infos:
        console.print(f"{info.name}\t{info.did}\t{info.created}", markup=False, soft_wrap=True)


@keys_app.command("show")
def keys_show(name: str, keystore: KeystoreOpt = DEFAULT_KEYSTORE) -> None:
    """Show a key's did and public key."""
    from liquidfab.identity import Keystore

    try:
        key = Keystore(keystore).get(name)
        info = Keystore(keystore).info(name)
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    console.print_json(
        json.dumps(
            {
                "name": name,
                "did": key.did,
                "public_key_hex": key.public.raw.hex(),
                "created": info.created,
                "file": str(info.path),
            }
        )
    )


@app.command()
def up(
    world: Annotated[Path, typer.Option(help="World folder (with world.yaml).")] = Path(
        "examples/ebike"
    ),
    db: Annotated[
        str | None,
        typer.Option(help="Database URL; default: sqlite file in WORLD/state/node.db."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Start the node with an example world (keys made on first run, participants registered)."""
    import uvicorn

    from liquidfab.db import participants
    from liquidfab.node import create_app, open_world_node

    try:
        node = open_world_node(world, db)
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    count = node.database.read(participants.count_participants)
    console.print(f"[bold]{node.title}[/bold]: {count} participants, store {node.database.dialect}")
    console.print(f"node {node.did}")
    console.print(f"serving on [link]http://{host}:{port}/[/link]  (API docs at /docs)")
    uvicorn.run(create_app(node), host=host, port=port, log_level="warning")


@app.command()
def send(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON {type, data, subject?, id?}, or '-' for stdin; the text {signer} is "
            "replaced by the signing key's did."
        ),
    ],
    key: Annotated[str, typer.Option("--key", help="Name of the signing key.")],
    node: Annotated[str, typer.Option(help="Node URL.")] = "http://127.0.0.1:8000",
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Sign a message with KEY and post it to the node; prints the receipt or the problem."""
    import httpx

    from liquidfab.identity import Keystore
    from liquidfab.protocol import CONTENT_TYPE, sign_message

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        signer = Keystore(keystore).get(key)
        spec = json.loads(text.replace("{signer}", signer.did))
        if not isinstance(spec, dict) or "type" not in spec:
            raise _fail(f"{file} must hold a JSON object with 'type' and 'data'")
        message = sign_message(
            signer,
            spec["type"],
            spec.get("data"),
            subject=spec.get("subject"),
            id=spec.get("id"),
        )
    except (OSError, json.JSONDecodeError) as e:
        raise _fail(f"cannot read {file}: {e}") from e
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    try:
        response = httpx.post(
            f"{node.rstrip('/')}/v1/messages",
            content=message.to_json(),
            headers={"content-type": CONTENT_TYPE},
            timeout=30,
        )
    except httpx.HTTPError as e:
        raise _fail(f"cannot reach {node}: {e}") from e
    console.print_json(response.text)
    if response.status_code >= 400:
        raise typer.Exit(2)


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Folder to write the schemas into.")] = Path("schemas"),
) -> None:
    """Write the JSON Schema of the envelope and every message type, and the OpenAPI document."""
    from liquidfab.node.schema_export import write_schemas

    written = write_schemas(out)
    for path in written:
        console.print(str(path))


def main() -> None:  # pragma: no cover - console entry point
    app()
