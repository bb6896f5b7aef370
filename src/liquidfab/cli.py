"""The ``liquidfab`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from liquidfab.cli_device import device_app
from liquidfab.cli_factory import factory_app
from liquidfab.cli_fleet import fleet_app
from liquidfab.cli_market import market_app
from liquidfab.cli_orders import order_app, unit_app
from liquidfab.cli_produce import produce_command
from liquidfab.cli_product import product_app
from liquidfab.errors import LiquidfabError

app = typer.Typer(
    help="liquidfab: products as code, signed messages, value settled in tokens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Manage the Ed25519 keys in a keystore folder.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
ledger_app = typer.Typer(help="Audit and inspect the ledger; mint tokens.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(product_app, name="product")
app.add_typer(factory_app, name="factory")
app.add_typer(fleet_app, name="fleet")
app.add_typer(device_app, name="device")
app.command("produce")(produce_command)
app.add_typer(order_app, name="order")
app.add_typer(unit_app, name="unit")
app.add_typer(market_app, name="market")
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
    poll_seconds: Annotated[
        int, typer.Option(min=1, help="How long devices are told to sleep between polls.")
    ] = 300,
    mqtt: Annotated[
        str | None,
        typer.Option(help="mqtt://host[:port]: also serve devices through this broker."),
    ] = None,
) -> None:
    """Start the node with an example world (keys made on first run, participants registered)."""
    import uvicorn

    from liquidfab.db import participants
    from liquidfab.node import create_app, open_world_node

    try:
        node = open_world_node(world, db)
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    node.polls.sleep_seconds = poll_seconds
    count = node.database.read(participants.count_participants)
    console.print(f"[bold]{node.title}[/bold]: {count} participants, store {node.database.dialect}")
    console.print(f"node {node.did}")
    bridge = None
    if mqtt is not None:
        from liquidfab.fleet.mqtt_bridge import MqttBridge

        try:
            bridge = MqttBridge(node, mqtt).start()
        except LiquidfabError as e:
            raise _fail(str(e)) from e
        console.print(f"devices also through the MQTT broker at {mqtt}")
    console.print(f"serving on [link]http://{host}:{port}/[/link]  (API docs at /docs)")
    from liquidfab.market.billing import BillingLoop

    billing = BillingLoop(node).start()  # the market's subscriptions and usage, each minute
    try:
        uvicorn.run(create_app(node), host=host, port=port, log_level="warning")
    finally:
        billing.stop()
        if bridge is not None:
            bridge.stop()


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


WorldOpt = Annotated[Path, typer.Option(help="World folder whose node database to open.")]
DbOpt = Annotated[str | None, typer.Option(help="Database URL; default: the world's.")]


def _ledger_db(world: Path, db: str | None):  # type: ignore[no-untyped-def]
    from liquidfab.db import Database
    from liquidfab.node.world import default_db_url

    url = db or default_db_url(world)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        raise _fail(f"no database at {url}; run `liquidfab up --world {world}` first")
    try:
        return Database.open(url)
    except LiquidfabError as e:
        raise _fail(str(e)) from e


def _tokens(value: int, decimals: int) -> str:
    from liquidfab.ledger import format_amount

    return format_amount(value, decimals)


@ledger_app.command("verify")
def ledger_verify(world: WorldOpt = Path("examples/ebike"), db: DbOpt = None) -> None:
    """Recompute the hash chain and every balance from the transfers; name the first mismatch."""
    from liquidfab.identity import Keystore
    from liquidfab.ledger import audit

    node_keys = [k for k in Keystore(world / "keys").list() if k.name == "node"]
    trusted = frozenset({node_keys[0].did}) if node_keys else None
    database = _ledger_db(world, db)
    try:
        report = database.read(lambda c: audit(c, trusted))
    finally:
        database.close()
    console.print(
        f"{report.batches} batches, {report.events} events, {report.accounts} accounts, "
        f"{report.transfers} transfers, {report.checkpoints} signed checkpoints"
    )
    console.print(f"chain head {report.head}")
    for name, supply in report.supply.items():
        console.print(f"supply {name}: {supply} base units")
    if report.ok:
        console.print("[green]ok[/green]: the chain and every balance verify")
        return
    err.print(f"[red]{len(report.problems)} inconsistencies[/red]; the first:")
    err.print(escape(report.problems[0]), soft_wrap=True)
    for problem in report.problems[1:20]:
        err.print(f"  {escape(problem)}", soft_wrap=True)
    raise typer.Exit(1)


@ledger_app.command("balances")
def ledger_balances(
    world: WorldOpt = Path("examples/ebike"),
    db: DbOpt = None,
    owner: Annotated[str | None, typer.Option(help="Only this did's accounts.")] = None,
) -> None:
    """Every account (or one owner's) with its balances, in tokens."""
    from rich.table import Table

    from liquidfab.db import participants
    from liquidfab.ledger import reads

    database = _ledger_db(world, db)
    try:

        def load(conn):  # type: ignore[no-untyped-def]
            accounts = reads.accounts_of(conn, owner) if owner else reads.list_accounts(conn, 500)
            decimals = {i.name: i.decimals for i in reads.list_ledgers(conn)}
            names = {p["did"]: p["display_name"] for p in participants.list_participants(conn)}
            return accounts, decimals, names

        accounts, decimals, names = database.read(load)
    finally:
        database.close()
    table = Table("owner", "account", "kind", "balance", "pending out", "pending in")
    for a in accounts:
        d = decimals.get(a.ledger, 0)
        table.add_row(
            names.get(a.owner, a.owner),
            a.id.rsplit("/", 1)[1],
            a.code,
            f"{_tokens(a.balance, d)} {a.ledger}",
            _tokens(a.debits_pending, d),
            _tokens(a.credits_pending, d),
        )
    console.print(table)


@ledger_app.command("history")
def ledger_history(
    account: Annotated[str, typer.Argument(help="Account id, <did>/<name>.")],
    world: WorldOpt = Path("examples/ebike"),
    db: DbOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The transfers in and out of ACCOUNT, newest first."""
    from rich.table import Table

    from liquidfab.ledger import reads

    database = _ledger_db(world, db)
    try:
        found = database.read(lambda c: reads.lookup_accounts(c, [account]))
        transfers = database.read(lambda c: reads.account_transfers(c, account, limit))
    finally:
        database.close()
    if not found:
        raise _fail(f"no account {account}")
    table = Table("timestamp", "id", "direction", "amount", "code", "flags", "message")
    for t in transfers:
        out = t.debit_account_id == account
        table.add_row(
            str(t.timestamp),
            t.id,
            "out" if out else "in",
            f"{'-' if out else '+'}{t.amount}",
            t.code,
            ",".join(t.to_dict()["flags"]),  # type: ignore[arg-type]
            f"{t.message_source or ''} {t.message_id or ''}".strip(),
        )
    console.print(table)
    console.print(f"balance: {found[0].balance} base units")


@ledger_app.command("mint")
def ledger_mint(
    account: Annotated[str, typer.Argument(help="Account to credit, <did>/<name>.")],
    amount: Annotated[str, typer.Argument(help="Tokens, e.g. 250 or 0.5.")],
    key: Annotated[str, typer.Option("--key", help="An operator's key name.")],
    ledger: Annotated[str, typer.Option(help="Ledger (token).")] = "LQD",
    node: Annotated[str, typer.Option(help="Node URL.")] = "http://127.0.0.1:8000",
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Sign an org.liquidfab.ledger.mint message with KEY and post it to the node."""
    from decimal import Decimal, InvalidOperation

    import httpx

    from liquidfab.identity import Keystore
    from liquidfab.ledger.messages import MINT
    from liquidfab.protocol import CONTENT_TYPE, sign_message, uuid7

    base = node.rstrip("/")
    try:
        summary = httpx.get(f"{base}/v1/ledger", timeout=30).json()
        signer = Keystore(keystore).get(key)
    except httpx.HTTPError as e:
        raise _fail(f"cannot reach {node}: {e}") from e
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    info = next((x for x in summary.get("ledgers", []) if x["name"] == ledger), None)
    if info is None:
        raise _fail(f"the node keeps no ledger {ledger}")
    try:
        units = Decimal(amount).scaleb(info["decimals"])
    except InvalidOperation as e:
        raise _fail(f"{amount!r} is not a number") from e
    if units <= 0 or units != units.to_integral_value():
        raise _fail(f"amount must be positive with at most {info['decimals']} decimals")
    data = {"transfer": uuid7(), "account": account, "ledger": ledger, "amount": str(int(units))}
    try:
        message = sign_message(signer, MINT, data)
        response = httpx.post(
            f"{base}/v1/messages",
            content=message.to_json(),
            headers={"content-type": CONTENT_TYPE},
            timeout=30,
        )
    except LiquidfabError as e:
        raise _fail(str(e)) from e
    except httpx.HTTPError as e:
        raise _fail(f"cannot reach {node}: {e}") from e
    console.print_json(response.text)
    if response.status_code >= 400:
        raise typer.Exit(2)


def main() -> None:  # pragma: no cover - console entry point
    app()
