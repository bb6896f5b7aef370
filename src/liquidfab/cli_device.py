"""``liquidfab device``: provision a device's state folder and run its agent against a node."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from liquidfab.errors import LiquidfabError

__all__ = ["device_app"]

device_app = typer.Typer(help="Run a device: its agent polls the node.", no_args_is_help=True)
_out = Console(emoji=False, highlight=False)
_err = Console(stderr=True, emoji=False, highlight=False)
NodeOpt = Annotated[str, typer.Option(help="Node URL.")]
StateOpt = Annotated[Path, typer.Option("--state", help="The device's state folder.")]


def _fail(message: str) -> typer.Exit:
    _err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


MAX_TARGET_BYTES = 512 * 1024 * 1024  # the repository's own limit on a target
MAX_DOCUMENT_BYTES = 1024 * 1024  # metadata, the poll answer, assignments, licenses
TARGET_SECONDS, DOCUMENT_SECONDS = 1800.0, 60.0


class _Http:
    """The node over HTTP for an agent: GET files and reads, POST signed messages."""

    def __init__(self, node: str, timeout: float = 30.0) -> None:
        import httpx

        self.client = httpx.Client(base_url=node.rstrip("/"), timeout=timeout)

    def fetch(self, path: str) -> bytes | None:
        """The body at ``path`` (None: 404), read within a size and time budget, so a node
        or a man in the middle sending endless or trickling data cannot exhaust the device."""
        from tuf.api.exceptions import DownloadLengthMismatchError, SlowRetrievalError

        target = path.startswith("/tuf/targets/")
        cap = MAX_TARGET_BYTES if target else MAX_DOCUMENT_BYTES
        deadline = time.monotonic() + (TARGET_SECONDS if target else DOCUMENT_SECONDS)
        with self.client.stream("GET", path) as response:
            if response.status_code == 404:
                return None
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise DownloadLengthMismatchError(f"{path} is over {cap:,} bytes")
                if time.monotonic() > deadline:
                    raise SlowRetrievalError(f"{path} took too long")
                chunks.append(chunk)
        return b"".join(chunks)

    def send(self, message: Any) -> dict[str, Any]:
        from liquidfab.protocol import CONTENT_TYPE

        response = self.client.post(
            "/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
        )
        return response.json()


@device_app.command("provision")
def provision_cmd(
    bundle: Annotated[Path, typer.Argument(help="The unit's provisioning bundle (JSON).")],
    state: StateOpt,
    hardware: Annotated[str, typer.Option(help="The device's hardware.")],
    node: NodeOpt = "http://127.0.0.1:8000",
) -> None:
    """Write a device's state folder from its provisioning bundle (``liquidfab produce
    --bundles``): its key, the node's TUF root and its did as director."""
    import httpx

    from liquidfab.fleet.agent import provision

    try:
        data = json.loads(bundle.read_text(encoding="utf-8"))
        seed = data["private_key_seed"]
        device_seed = base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4))
        http = _Http(node)
        director = json.loads(http.fetch("/.well-known/liquidfab") or b"{}")["node"]
        root = http.fetch("/tuf/metadata/1.root.json")
        if root is None:
            raise LiquidfabError(f"{node} keeps no software repository")
        provision(
            state,
            device_seed=device_seed,
            director=director,
            product=data["product"],
            hardware=hardware,
            root=root,
        )
    except (OSError, ValueError, KeyError, LiquidfabError, httpx.HTTPError) as e:
        raise _fail(f"cannot provision from {bundle}: {e}") from e
    _out.print(f"provisioned {data['device_did']} ({data.get('serial')}) in {state}")


@device_app.command("run")
def run_cmd(
    state: StateOpt,
    node: NodeOpt = "http://127.0.0.1:8000",
    interval: Annotated[
        float | None,
        typer.Option(min=0.1, help="Seconds between polls; default: what the node says."),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(help="mqtt://host[:port]: send through the broker, wake on notices."),
    ] = None,
    once: Annotated[bool, typer.Option(help="Poll once and exit.")] = False,
) -> None:
    """Run the device agent: poll the node, install what is assigned, report. With
    --mqtt its messages go through the broker and a notice wakes it before the interval
    ends."""
    import threading

    import httpx
    from tuf.api.exceptions import DownloadError

    from liquidfab.fleet.agent import Agent

    http = _Http(node)
    try:
        agent = Agent(state, fetch=http.fetch, send=http.send)
        link = None
        if mqtt is not None:
            from liquidfab.fleet.mqtt_link import MqttLink

            link = MqttLink(mqtt, [agent.state.device])
            agent.send = link.send
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    woken = link.notified(agent.state.device) if link is not None else threading.Event()
    while True:
        woken.clear()
        try:
            phase = agent.poll()
            running = agent.state.running or {}
            note = f" ({agent.state.last_error})" if agent.state.last_error else ""
            wait = f", waiting for {agent.state.waiting}" if agent.state.waiting else ""
            _out.print(
                f"{phase}: running {running.get('version')} in slot {agent.state.active}"
                f"{note}{wait}"
            )
        except (httpx.HTTPError, DownloadError) as e:  # away, or garbage: try again later
            _err.print(f"cannot read from {escape(node)}: {escape(str(e))}")
        if once:
            if link is not None:
                link.close()
            return
        woken.wait(interval or agent.sleep_seconds or 60.0)
