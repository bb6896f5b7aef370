"""``liquidfab order`` and ``liquidfab unit``: orders and passports through a node's public API.

Everything goes over HTTP, as any peer would: the node completes and prices a
configuration, the command signs the order with its escrow leg, and reads orders and
passports back. Exit codes, the same in every command: 0 done; 1 nothing reached the
node, or the command refused on its own (a bad key or argument, an unreachable node,
``--set built``); 2 the node answered with a problem (a refusal, an invalid
configuration, an unknown order, product or serial).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from liquidfab.cli_http import NodeApi, fail, key_from, signed
from liquidfab.cli_post import KeystoreOpt

if TYPE_CHECKING:
    from liquidfab.identity import SigningKey
    from liquidfab.protocol import SettlementLeg

__all__ = ["order_app", "read_header", "unit_app"]

order_app = typer.Typer(
    help="Orders: place one with its price in escrow, move it, list them.", no_args_is_help=True
)
unit_app = typer.Typer(help="Built units: a unit's passport by serial.", no_args_is_help=True)
console = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False)

DEFAULT_NODE = "http://127.0.0.1:8000"
DEFAULT_KEYSTORE = Path.home() / ".liquidfab" / "keys"
NodeOpt = Annotated[str, typer.Option("--node", help="Node URL.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the node's JSON instead.")]
DAY = 24 * 3600


def _when(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


# --- order place ------------------------------------------------------------------------


def _choices(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise fail(f"--choice {item!r} is not name=value")
        out[name.strip()] = value.strip()
    return out


def _complete(node: NodeApi, product: str, version: str, chosen: dict[str, str]) -> dict[str, Any]:
    """The node's cheapest complete configuration keeping ``chosen``; exit 2 if none is."""
    body = {"choices": chosen, "complete": True, "objective": "price"}
    path = f"/v1/products/{quote(product, safe='')}/{quote(version, safe='')}/configure"
    out = node.answer(node.request("POST", path, json=body))
    completion = out.get("completion") or {}
    resolved = out.get("resolved")
    if resolved is not None:
        return resolved
    conflict = completion.get("conflict") or out["check"].get("conflict")
    if conflict:
        err.print(
            f"[red]error:[/red] no valid {escape(product)} {escape(version)} has these choices:"
        )
        for sentence in conflict.get("sentences", []):
            err.print(f"  {escape(sentence)}", soft_wrap=True)
        raise typer.Exit(2)
    raise fail("the node ran out of time completing the configuration; give more choices", 2)


def _print_configuration(resolved: dict[str, Any], features: list[str]) -> None:
    table = Table(title=f"{resolved['product']} {resolved['version']}", show_header=False)
    for name, value in resolved["choices"].items():
        table.add_row(name, escape(_plain(value)))
    console.print(table)
    prices = Table(title=f"Price ({resolved['currency']})")
    prices.add_column("line")
    prices.add_column("amount", justify="right")
    for line in resolved["price_lines"]:
        prices.add_row(escape(line["label"]), line["amount"])
    prices.add_row("[bold]total[/bold]", f"[bold]{resolved['price']}[/bold]")
    console.print(prices)
    included = [f["id"] for f in resolved.get("features", []) if f.get("included")]
    console.print(f"features: {escape(', '.join([*included, *features]) or 'none')}")


def _short_of_funds(api: NodeApi, wallet: str, amount: int, currency: str) -> None:
    """Say what the wallet holds when the ledger found it short of the escrow."""
    from liquidfab.ledger import format_amount

    account = api.get(f"/v1/ledger/accounts/{quote(wallet, safe='/:')}")
    decimals = {x["name"]: x["decimals"] for x in api.get("/v1/ledger")["ledgers"]}[currency]
    free = int(account["balance"]) - int(account["debits_pending"])
    err.print(
        f"{escape(wallet)} has {format_amount(free, decimals)} {currency} free; "
        f"the escrow needs {format_amount(amount, decimals)} {currency}",
        soft_wrap=True,
    )


@order_app.command("place")
def place(
    product: Annotated[str, typer.Argument(help="PRODUCT@VERSION (PRODUCT alone: the latest).")],
    key: Annotated[str, typer.Option("--key", help="The customer's key name.")],
    choice: Annotated[
        list[str] | None, typer.Option("--choice", "-c", help="option=value (repeat).")
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", "-f", help="A feature to buy (repeat).")
    ] = None,
    order: Annotated[str | None, typer.Option("--order", help="Order id; default: new.")] = None,
    timeout_days: Annotated[
        int, typer.Option(min=1, max=365, help="Days before an unclaimed escrow returns.")
    ] = 30,
    dry_run: Annotated[bool, typer.Option(help="Price it; sign and send nothing.")] = False,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Complete and price a configuration on the node, then sign the order with its escrow.

    Missing choices are completed as the node's configurator does (the lowest price that
    keeps yours); the escrow is one pending transfer of the price from KEY's wallet to
    the manufacturer's, returned to you if unclaimed after --timeout-days.
    """
    from liquidfab.production.order_messages import ORDER, price_units
    from liquidfab.protocol import SettlementLeg, uuid7

    product_id, _, version = product.partition("@")
    chosen, features = _choices(choice), list(feature or [])
    signer = None if dry_run else key_from(keystore, key)
    api = NodeApi(node)
    info = api.get(f"/v1/products/{quote(product_id, safe='')}")
    version = version or info["latest"]
    resolved = _complete(api, product_id, version, chosen)
    _print_configuration(resolved, features)
    currency = resolved["currency"]
    ledgers = {x["name"]: x["decimals"] for x in api.get("/v1/ledger")["ledgers"]}
    if currency not in ledgers:
        raise fail(f"the product is paid in {currency}, a ledger this node keeps not", 2)
    amount = price_units(Decimal(resolved["price"]), ledgers[currency])
    if amount is None:
        raise fail(f"the price {resolved['price']} is finer than the {currency} ledger", 2)
    if signer is None:
        console.print("dry run: nothing signed or sent")
        return
    escrow = SettlementLeg(
        id=uuid7(),
        debit_account=f"{signer.did}/wallet",
        credit_account=f"{info['manufacturer']}/wallet",
        ledger=currency,
        amount=str(amount),
        code="order",
        flags=["pending"],
        timeout_seconds=timeout_days * DAY,
    )
    data = {
        "order": order or uuid7(),
        "product": product_id,
        "version": version,
        "choices": resolved["choices"],
        "features": features,
    }
    response = api.post(signed(signer, ORDER, data, [escrow]))
    if response.status_code >= 400 and "exceeds_credits" in response.text:
        _short_of_funds(api, escrow.debit_account, amount, currency)
    result = api.answer(response)["result"]
    console.print(
        f"order {result['order']} placed: {result['price']} {result['ledger']} held in escrow "
        f"{result['escrow']} for {timeout_days} days",
        soft_wrap=True,
    )


# --- order status -----------------------------------------------------------------------


def _print_order(row: dict[str, Any], names: dict[str, str]) -> None:
    def who(did: str) -> str:
        return names.get(did, did)

    console.print(
        f"[bold]order {escape(row['id'])}[/bold]  {row['product_id']} {row['version']}  "
        f"state [bold]{row['state']}[/bold]",
        soft_wrap=True,
    )
    console.print(f"customer      {escape(who(row['customer']))}", soft_wrap=True)
    console.print(f"manufacturer  {escape(who(row['manufacturer']))}", soft_wrap=True)
    console.print(
        f"price         {row['price']} {row['ledger']} (escrow {row['pending_transfer']}, "
        f"{row['amount']} base units)",
        soft_wrap=True,
    )
    choices = ", ".join(f"{k}={_plain(v)}" for k, v in row["choices"].items())
    console.print(f"choices       {escape(choices)}", soft_wrap=True)
    console.print(f"features      {escape(', '.join(row['features']) or 'none')}")
    history = Table(title="History")
    for col in ("#", "state", "by", "at (UTC)", "note", "transfer"):
        history.add_column(col)
    for event in row["history"]:
        history.add_row(
            str(event["seq"]),
            event["state"],
            escape(who(event["actor"])),
            _when(event["at_us"]),
            escape(event["note"] or ""),
            event["transfer"] or "",
        )
    console.print(history)


def _escrow_leg(api: NodeApi, row: dict[str, Any], flag: str) -> SettlementLeg:
    """The leg that posts or voids the order's escrow, naming its accounts as the ledger does."""
    from liquidfab.protocol import SettlementLeg, uuid7

    pending = api.get(f"/v1/ledger/transfers/{quote(row['pending_transfer'], safe='')}")
    return SettlementLeg(
        id=uuid7(),
        debit_account=pending["debit_account_id"],
        credit_account=pending["credit_account_id"],
        ledger=pending["ledger"],
        code="order",
        flags=[flag],
        pending_id=row["pending_transfer"],
    )


@order_app.command("status")
def status(
    order: Annotated[str, typer.Argument(help="The order's id.")],
    set_state: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="Move it: accepted, scheduled, in-production, cancelled (manufacturer); "
            "delivered, cancel-requested (customer).",
        ),
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="Key that signs the move.")] = None,
    note: Annotated[str | None, typer.Option(help="A note to record with the move.")] = None,
    as_json: JsonOpt = False,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Show an order and its history; with --set and --key, sign and send a move first.

    ``delivered`` releases the escrow to the manufacturer (post); ``cancelled`` gives it
    back to the customer (void). ``built`` is not set here: the production line sends it
    with the unit's as-built record (``liquidfab produce``).
    """
    from liquidfab.production.order_messages import ORDER_STATUS

    if set_state == "built":
        raise fail(
            "an order becomes built when the production line sends it with the unit's as-built "
            "record (liquidfab produce); nothing was sent"
        )
    if set_state is not None and key is None:
        raise fail("--set needs --key, the key that signs the move")
    if set_state is None and (key is not None or note is not None):
        raise fail("--key and --note go with --set")
    api = NodeApi(node)
    path = f"/v1/orders/{quote(order, safe='')}"
    if set_state is not None and key is not None:
        signer = key_from(keystore, key)
        legs = None
        if set_state in ("delivered", "cancelled"):
            flag = "post_pending" if set_state == "delivered" else "void_pending"
            legs = [_escrow_leg(api, api.get(path), flag)]
        data: dict[str, Any] = {"order": order, "state": set_state}
        if note is not None:
            data["note"] = note
        result = api.send(signed(signer, ORDER_STATUS, data, legs))["result"]
        if not as_json:
            console.print(f"order {result['order']}: {result['previous']} -> {result['state']}")
    row = api.get(path)
    if as_json:
        console.print_json(json.dumps(row))
        return
    _print_order(row, api.names())


@order_app.command("list")
def list_orders(
    state: Annotated[str | None, typer.Option(help="Only orders in this state.")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer's (a did).")] = None,
    manufacturer: Annotated[str | None, typer.Option(help="Only this maker's (a did).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonOpt = False,
    node: NodeOpt = DEFAULT_NODE,
) -> None:
    """Orders on the node, newest first."""
    api = NodeApi(node)
    params = {"state": state, "customer": customer, "manufacturer": manufacturer, "limit": limit}
    rows = api.get("/v1/orders", params={k: v for k, v in params.items() if v is not None})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    names = api.names() if rows else {}
    table = Table("order", "product", "state", "price", "customer", "manufacturer", "updated")
    for row in rows:
        table.add_row(
            escape(row["id"]),
            f"{row['product_id']} {row['version']}",
            row["state"],
            f"{row['price']} {row['ledger']}",
            escape(names.get(row["customer"], row["customer"])),
            escape(names.get(row["manufacturer"], row["manufacturer"])),
            _when(row["updated_us"]),
        )
    console.print(table)
    console.print(f"{len(rows)} order{'s' if len(rows) != 1 else ''}")


# --- unit show --------------------------------------------------------------------------


def read_header(key: SigningKey, node_did: str, method: str, path: str, created: int) -> str:
    """The ``Liquidfab-Signature`` value that proves ``key`` asks for ``path`` (a signed read)."""
    from liquidfab.node.routes_units import read_signature_bytes

    sig = key.sign(read_signature_bytes(node_did, method, path, created))
    text = base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    return f"did={key.did}; created={created}; sig={text}"


def _print_passport(p: dict[str, Any], names: dict[str, str]) -> None:
    console.print(
        f"[bold]unit {escape(p['serial'])}[/bold]  {p['product']} {p['version']}  "
        f"({p['tier']} tier)",
        soft_wrap=True,
    )
    console.print(f"manufacturer  {escape(names.get(p['manufacturer'], p['manufacturer']))}")
    console.print(f"device        {p['device_did']}", soft_wrap=True)
    console.print(f"built at      {p['built_at']}")
    if "order" not in p:
        return
    console.print(f"order         {escape(p['order'])}", soft_wrap=True)
    console.print(f"owner         {escape(names.get(p['customer'], p['customer']))}")
    choices = ", ".join(f"{k}={_plain(v)}" for k, v in p["choices"].items())
    console.print(f"choices       {escape(choices)}", soft_wrap=True)
    console.print(f"features      {escape(', '.join(p['features']) or 'none')}")
    as_built = p["as_built"]
    console.print(f"as built      {as_built['status']}, program {as_built['program_digest']}")
    columns = ["part", "name", "quantity", "unit", "supplier", "lot"]
    shown = [c for c in columns if any(c in part for part in as_built["parts"])]
    parts = Table(*shown, title="Parts")
    for part in as_built["parts"]:
        parts.add_row(*(escape(_plain(part.get(c, ""))) for c in shown))
    console.print(parts)


@unit_app.command("show")
def show(
    serial: Annotated[str, typer.Argument(help="The unit's serial number.")],
    key: Annotated[
        str | None, typer.Option("--key", help="Sign the read: the owner or maker sees more.")
    ] = None,
    as_json: JsonOpt = False,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """A unit's passport: the public tier, or with --key the tier that key may read.

    The unit's owner reads the owner tier (its configuration and parts); its manufacturer
    and the node's operators the authority tier (suppliers, lots, station results). An
    unknown serial is the node's answer, so it exits 2 like any other problem it sends.
    """
    import httpx

    from liquidfab.node.routes_units import SIGNATURE_HEADER

    api = NodeApi(node)
    path = f"/v1/units/{quote(serial, safe='')}/passport"
    headers: dict[str, str] = {}
    if key is not None:
        signer = key_from(keystore, key)
        node_did = api.get("/.well-known/liquidfab")["node"]
        signed_path = httpx.URL(api.url + path).path
        header = read_header(signer, node_did, "GET", signed_path, int(time.time()))
        headers[SIGNATURE_HEADER] = header
    passport = api.get(path, headers=headers)
    if as_json:
        console.print_json(json.dumps(passport))
        return
    if key is not None and passport["tier"] == "public":
        err.print(f"[yellow]note:[/yellow] {escape(key)} has no standing on this unit; public tier")
    _print_passport(passport, api.names())
