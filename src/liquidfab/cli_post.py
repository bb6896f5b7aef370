"""Signing a message with a keystore key and posting it to a node, for every command
that publishes something: one place for the request, its time limit and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from liquidfab.errors import LiquidfabError

__all__ = ["KeystoreOpt", "sign_and_post"]

KeystoreOpt = Annotated[
    Path,
    typer.Option("--keystore", "-k", envvar="LIQUIDFAB_KEYSTORE", help="Keystore folder."),
]

_out = Console(emoji=False, highlight=False)
_err = Console(stderr=True, emoji=False, highlight=False)


def sign_and_post(
    keystore: Path, key: str, kind: str, data: Any, node: str, *, timeout: float = 60
) -> None:
    """Sign ``data`` as a ``kind`` message with ``key`` and post it to ``node``; print the
    receipt or the problem, and exit 2 when the node refuses (1 when nothing was sent)."""
    import httpx

    from liquidfab.identity import Keystore
    from liquidfab.protocol import CONTENT_TYPE, sign_message

    try:
        message = sign_message(Keystore(keystore).get(key), kind, data)
    except LiquidfabError as e:
        _err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1) from e
    try:
        response = httpx.post(
            f"{node.rstrip('/')}/v1/messages",
            content=message.to_json(),
            headers={"content-type": CONTENT_TYPE},
            timeout=timeout,
        )
    except httpx.HTTPError as e:
        _err.print(f"[red]error:[/red] {escape(f'cannot reach {node}: {e}')}", soft_wrap=True)
        raise typer.Exit(1) from e
    _out.print_json(response.text)
    if response.status_code >= 400:
        raise typer.Exit(2)
