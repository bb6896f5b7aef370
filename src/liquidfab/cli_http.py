"""What the commands that talk to a node over HTTP share: one way to fail with a clear
message, and one client for the node's API (its time limit, its problems, its exit codes:
1 nothing reached the node, 2 the node answered with a problem)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from liquidfab.identity import SigningKey
    from liquidfab.protocol import Envelope, SettlementLeg

__all__ = ["NodeApi", "fail", "key_from", "signed"]

err = Console(stderr=True, emoji=False, highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


class NodeApi:
    """A node's HTTP API: the one place for requests, their time limit and their failures."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        import httpx

        try:
            return httpx.request(method, self.url + path, timeout=60, **kw)
        except httpx.HTTPError as e:
            raise fail(f"cannot reach {self.url}: {e}") from e

    def answer(self, response: httpx.Response) -> Any:
        """The JSON of a good answer; a problem is printed and ends the command (exit 2)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            if isinstance(body, dict) and "detail" in body:
                code = f"{body['code']}: " if "code" in body else ""
                raise fail(f"{code}{body['detail']}", 2)
            raise fail(f"{response.url} answered HTTP {response.status_code}", 2)
        if body is None:
            raise fail(f"{response.url} answered no JSON; is {self.url} a liquidfab node?")
        return body

    def get(self, path: str, **kw: Any) -> Any:
        return self.answer(self.request("GET", path, **kw))

    def post(self, message: Envelope) -> httpx.Response:
        from liquidfab.protocol import CONTENT_TYPE

        headers = {"content-type": CONTENT_TYPE}
        return self.request("POST", "/v1/messages", content=message.to_json(), headers=headers)

    def send(self, message: Envelope) -> dict[str, Any]:
        """Post a signed message; its receipt, or the problem printed (exit 2)."""
        return self.answer(self.post(message))

    def names(self) -> dict[str, str]:
        """Display names by did, to show people rather than keys."""
        return {p["did"]: p["display_name"] for p in self.get("/v1/participants")}

    def decimals(self, ledger: str = "LQD") -> int:
        """The decimals of a token the node keeps, to show amounts as people write them."""
        found = {x["name"]: x["decimals"] for x in self.get("/v1/ledger")["ledgers"]}
        if ledger not in found:
            raise fail(f"the node keeps no ledger {ledger}", 2)
        return found[ledger]

    def result(self, message: Envelope) -> Any:
        """Post a signed message; the result of its receipt (a problem: exit 2)."""
        return self.send(message)["result"]


def key_from(keystore: Path, name: str) -> SigningKey:
    """Key ``name`` of the keystore, or a clear failure (exit 1)."""
    from liquidfab.errors import LiquidfabError
    from liquidfab.identity import Keystore

    try:
        return Keystore(keystore).get(name)
    except LiquidfabError as e:
        raise fail(str(e)) from e


def signed(
    key: SigningKey, kind: str, data: Any, legs: list[SettlementLeg] | None = None
) -> Envelope:
    """The message signed by ``key``, or a clear failure (exit 1)."""
    from liquidfab.errors import LiquidfabError
    from liquidfab.protocol import sign_message

    try:
        return sign_message(key, kind, data, settlement=legs)
    except LiquidfabError as e:
        raise fail(str(e)) from e
