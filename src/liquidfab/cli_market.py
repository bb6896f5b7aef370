"""``liquidfab market``: territories, listings, releases, purchases and subscriptions
through a node's public API.

Everything goes over HTTP, as any peer would: the command reads the quote or the
territory's role from the node, builds and signs the message with a key from the
keystore, and posts it to ``/v1/messages``. A release's role metadata is signed here, on
the publisher's machine; the node never holds a creator's key. Exit codes, as in
``liquidfab order``: 0 done; 1 nothing reached the node, or the command refused on its
own (a bad key, file or argument, an unreachable node); 2 the node answered with a
problem (a refusal, an unknown app, device or subscription).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from liquidfab.cli_http import NodeApi, fail, key_from, signed
from liquidfab.cli_post import KeystoreOpt
from liquidfab.errors import LiquidfabError

if TYPE_CHECKING:
    pass

__all__ = ["market_app"]

market_app = typer.Typer(
    help="The app market: claim a territory, publish apps, buy and subscribe.",
    no_args_is_help=True,
)
console = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False)

DEFAULT_NODE = "http://127.0.0.1:8000"
DEFAULT_KEYSTORE = Path.home() / ".liquidfab" / "keys"
LEDGER = "LQD"  # the market's token (market.purchases.LEDGER)
DAY_SECONDS = 86_400
NodeOpt = Annotated[str, typer.Option("--node", help="Node URL.")]
KeyOpt = Annotated[str, typer.Option("--key", help="Name of the signing key.")]
AppOpt = Annotated[str, typer.Option("--app", help="The app, @territory/app.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="The device's did.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the node's JSON instead.")]


def _app_path(app: str) -> str:
    """``/v1/market/apps/@territory/app``, once ``app`` is shaped like an app's name."""
    territory, _, slug = app.partition("/")
    if not territory.startswith("@") or not slug or "/" in slug:
        raise fail(f"{app!r} is not an app's name: @territory/app")
    return f"/v1/market/apps/{quote(territory, safe='@')}/{quote(slug, safe='')}"


def _lqd(units: int | str, decimals: int = 6) -> str:
    from liquidfab.ledger import format_amount

    return f"{format_amount(int(units), decimals)} {LEDGER}"


def _when(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _price(pricing: dict[str, Any]) -> str:
    """A listing's price in words: free, 19.99 LQD, 4.99 LQD/month, 0.05 LQD per minute."""
    model, amount = pricing["model"], pricing.get("amount", "0")
    if model == "free":
        return "free"
    if model == "one-time":
        return f"{amount} {LEDGER}"
    if model == "per-use":
        meter = pricing.get("meter") or {}
        return f"{amount} {LEDGER} per {meter.get('unit', 'use')}"
    recurring = f"{amount} {LEDGER}/{pricing.get('period')}"
    if model == "trial-then-paid":
        return f"{pricing.get('trial_days')}-day trial, then {recurring}"
    return recurring


# --- claim ------------------------------------------------------------------------------


@market_app.command("claim")
def claim(
    territory: Annotated[str, typer.Argument(help="The territory, @name.")],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Claim a territory, @name.

    The first claim wins; a name confusable with a claimed one is refused.
    """
    from liquidfab.market.messages import CLAIM

    signer = key_from(keystore, key)
    result = NodeApi(node).result(signed(signer, CLAIM, {"territory": territory}))
    console.print(f"claimed {result['territory']} for {result['owner']}", soft_wrap=True)


# --- publish ----------------------------------------------------------------------------


def _read_listing(path: Path) -> dict[str, Any]:
    import yaml

    try:
        listing = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise fail(f"cannot read {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise fail(f"{path} is not valid YAML: {e}") from e
    if not isinstance(listing, dict) or not isinstance(listing.get("app"), str):
        raise fail(f"{path} must hold a listing: a mapping with app, kind, title, pricing...")
    pricing = listing.get("pricing")
    if isinstance(pricing, dict) and isinstance(pricing.get("amount"), int | float):
        # YAML reads 4.99 as a float; the price travels as the decimal the author wrote
        pricing["amount"] = str(pricing["amount"])
    return listing


@market_app.command("publish")
def publish(
    key: KeyOpt,
    listing_file: Annotated[
        Path, typer.Option("--listing", help="The listing, YAML (app, kind, title, pricing...).")
    ],
    version: Annotated[str, typer.Option("--version", help="The release's version.")],
    file: Annotated[Path, typer.Option("--file", help="The artifact to release.")],
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """List an app (or update its listing), upload the artifact and release it as VERSION.

    The territory's next TUF role metadata, with the new target added, is signed here
    with KEY (the territory's owner or a co-publisher); the node checks and serves it.
    """
    import hashlib

    from liquidfab.market.delegation import territory_of
    from liquidfab.market.messages import LISTING
    from liquidfab.market.publishing import publish_message

    listing = _read_listing(listing_file)
    try:
        data = file.read_bytes()
    except OSError as e:
        raise fail(f"cannot read {file}: {e.strerror}") from e
    if not data:
        raise fail(f"{file} is empty")
    signer = key_from(keystore, key)
    api = NodeApi(node)
    listed = api.result(signed(signer, LISTING, listing))
    console.print(f"{'listed' if listed['created'] else 'updated'} {listed['app']}")
    sha256 = hashlib.sha256(data).hexdigest()
    api.answer(api.request("PUT", f"/v1/market/uploads/{sha256}", content=data))
    territory = territory_of(listing["app"])
    response = api.request("GET", f"/v1/market/roles/{quote(territory, safe='@')}")
    current = None if response.status_code == 404 else api.answer(response)
    try:
        message = publish_message(signer, listing, version, data, current)
    except (LiquidfabError, ValueError, KeyError) as e:
        raise fail(f"cannot sign the release: {e}") from e
    result = api.result(message)
    console.print(
        f"published {result['target']}: {len(data):,} bytes, sha256 {sha256}; "
        f"{territory} role version {result['role_version']}",
        soft_wrap=True,
    )


# --- list -------------------------------------------------------------------------------


@market_app.command("list")
def list_apps(
    query: Annotated[str | None, typer.Option("--query", "-q", help="Search words.")] = None,
    product: Annotated[str | None, typer.Option(help="Only apps for this product.")] = None,
    territory: Annotated[str | None, typer.Option(help="Only apps in this @territory.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonOpt = False,
    node: NodeOpt = DEFAULT_NODE,
) -> None:
    """The apps listed on the node."""
    params = {"q": query, "product": product, "territory": territory, "limit": limit}
    rows = NodeApi(node).get(
        "/v1/market/apps", params={k: v for k, v in params.items() if v is not None}
    )
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("app", "title", "kind", "price", "latest")
    for row in rows:
        table.add_row(
            escape(row["app"]),
            escape(row["title"]),
            row["kind"],
            escape(_price(row["pricing"])),
            escape(row["latest"] or "-"),
        )
    console.print(table)
    console.print(f"{len(rows)} app{'s' if len(rows) != 1 else ''}")


# --- buy --------------------------------------------------------------------------------


def _quote(api: NodeApi, app: str, device: str) -> dict[str, Any]:
    return api.get(f"{_app_path(app)}/quote", params={"device": device})


@market_app.command("buy")
def buy(
    app: AppOpt,
    device: DeviceOpt,
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Buy an app for a device you own.

    A one-time price is paid at once, split between the creator, the manufacturer and
    the platform; a free app costs nothing.
    """
    from liquidfab.market.messages import BUY
    from liquidfab.protocol import SettlementLeg, uuid7

    signer = key_from(keystore, key)
    api = NodeApi(node)
    offer = _quote(api, app, device)
    if offer["message"].endswith(".subscribe"):
        raise fail(f"{app} is sold as {offer['model']}: use `liquidfab market subscribe`")
    legs = [
        SettlementLeg(
            id=uuid7(),
            debit_account=f"{signer.did}/wallet",
            credit_account=leg["credit_account"],
            ledger=LEDGER,
            amount=leg["amount"],
            code="market",
            flags=leg["flags"],
        )
        for leg in offer["legs"]
    ]
    data = {"purchase": f"p-{uuid7()}", "app": app, "device": device}
    result = api.result(signed(signer, BUY, data, legs or None))
    if result["model"] == "trial":
        console.print(
            f"trial of {result['app']} until {_when(result['expires_us'])} "
            f"(purchase {result['purchase']})"
        )
        return
    decimals = api.decimals()
    paid = int(result["paid"])
    console.print(
        f"bought {result['app']} for {escape(device)}: "
        f"{_lqd(paid, decimals) if paid else 'free'} (purchase {result['purchase']})",
        soft_wrap=True,
    )
    if result.get("split"):
        shares = ", ".join(f"{r} {_lqd(a, decimals)}" for r, a in result["split"].items())
        console.print(f"split: {shares} (fee schedule v{result['fee_version']})")


# --- subscribe and cancel ---------------------------------------------------------------


def _cap_units(api: NodeApi, cap: str) -> int:
    from decimal import Decimal, InvalidOperation

    decimals = api.decimals()
    try:
        units = Decimal(cap).scaleb(decimals)
    except InvalidOperation as e:
        raise fail(f"--cap {cap!r} is not a number") from e
    if units <= 0 or units != units.to_integral_value():
        raise fail(f"--cap must be positive with at most {decimals} decimals")
    return int(units)


@market_app.command("subscribe")
def subscribe(
    app: AppOpt,
    device: DeviceOpt,
    key: KeyOpt,
    cap: Annotated[
        str | None,
        typer.Option(
            help="Most the node may charge per period, in LQD (default: the period's price; "
            "a per-use app needs it).",
        ),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Subscribe a device you own to an app.

    Grants the node a mandate on your wallet, then subscribes; the first period is
    charged at once (after a trial, at its end).
    """
    from liquidfab.ledger.messages import MANDATE
    from liquidfab.market.messages import SUBSCRIBE
    from liquidfab.protocol import uuid7

    signer = key_from(keystore, key)
    api = NodeApi(node)
    offer = _quote(api, app, device)
    if offer["message"].endswith(".buy"):
        raise fail(f"{app} is sold once ({offer['model']}): use `liquidfab market buy`")
    pricing = api.get(_app_path(app))["pricing"]
    if cap is None and pricing["model"] == "per-use":
        raise fail(f"{app} is paid per use: say with --cap how much it may charge in 30 days")
    units = int(offer["amount"]) if cap is None else _cap_units(api, cap)
    days = 365 if pricing.get("period") == "year" else 30
    mandate = str(uuid.uuid4())
    grant = {"action": "grant", "mandate": mandate, "account": f"{signer.did}/wallet",
             "grantee": offer["grantee"], "cap": str(units),
             "period_seconds": days * DAY_SECONDS}  # fmt: skip
    api.result(signed(signer, MANDATE, grant))
    data = {"subscription": f"s-{uuid7()}", "app": app, "device": device, "mandate": mandate}
    response = api.post(signed(signer, SUBSCRIBE, data))
    if response.status_code >= 400:  # the mandate is of no use without the subscription
        api.post(signed(signer, MANDATE, {"action": "revoke", "mandate": mandate}))
    result = api.answer(response)["result"]
    console.print(f"subscription {result['subscription']} to {result['app']} started "
                  f"({result['model']})", soft_wrap=True)  # fmt: skip
    decimals = api.decimals()
    console.print(f"mandate {mandate}: the node may charge up to {_lqd(units, decimals)} "
                  f"every {days} days", soft_wrap=True)  # fmt: skip
    if result["model"] != "per-use":
        ends = "trial ends" if result["model"] == "trial" else "paid through"
        console.print(f"{ends} {_when(result['period_end_us'])}")


@market_app.command("cancel")
def cancel(
    subscription: Annotated[str, typer.Option("--subscription", help="The subscription's id.")],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """Cancel a subscription: it ends when the period paid ends."""
    from liquidfab.market.messages import CANCEL

    signer = key_from(keystore, key)
    result = NodeApi(node).result(signed(signer, CANCEL, {"subscription": subscription}))
    console.print(f"subscription {result['subscription']} cancelled; it ends "
                  f"{_when(result['ends_us'])}", soft_wrap=True)  # fmt: skip


# --- earnings ---------------------------------------------------------------------------


@market_app.command("earnings")
def earnings(
    creator: Annotated[str | None, typer.Option(help="The creator's did.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Or: the creator's key.")] = None,
    as_json: JsonOpt = False,
    node: NodeOpt = DEFAULT_NODE,
    keystore: KeystoreOpt = DEFAULT_KEYSTORE,
) -> None:
    """A creator's earnings: the total, per app and per 30 days."""
    if (creator is None) == (key is None):
        raise fail("name the creator with --creator DID or --key NAME (one of them)")
    did = creator if creator is not None else key_from(keystore, str(key)).did
    api = NodeApi(node)
    body = api.get(f"/v1/market/creators/{quote(did, safe=':')}/earnings")
    if as_json:
        console.print_json(json.dumps(body))
        return
    decimals = api.decimals()
    charges = body["charges"]
    total = _lqd(body["earned"], decimals)
    plural = "s" if charges != 1 else ""
    console.print(f"[bold]{escape(did)}[/bold] earned {total} from {charges} charge{plural}",
                  soft_wrap=True)  # fmt: skip
    if not charges:
        return
    apps = Table("app", "charges", "gross", "earned", title="Per app")
    for app, row in sorted(body["apps"].items()):
        apps.add_row(escape(app), str(row["charges"]), _lqd(row["gross"], decimals),
                     _lqd(row["earned"], decimals))  # fmt: skip
    console.print(apps)
    periods = Table("from", "to", "earned", title="Per period")
    for row in body["periods"]:
        start = row["start_us"]
        periods.add_row(_when(start), _when(start + 30 * DAY_SECONDS * 1_000_000),
                        _lqd(row["earned"], decimals))  # fmt: skip
    console.print(periods)


@market_app.command("simulate")
def simulate(
    world: Annotated[Path, typer.Option(help="World folder (with world.yaml).")] = Path(
        "examples/ebike"
    ),
    app: AppOpt = "@acme-ai/riding-coach",
    owner: Annotated[str, typer.Option(help="Key of the subscribing owner.")] = "ada",
    maker: Annotated[str, typer.Option(help="Key of the bike's manufacturer.")] = "voltwerk",
    months: Annotated[int, typer.Option(min=1, max=120, help="Months to live through.")] = 12,
    fail_month: Annotated[
        int, typer.Option(min=0, max=120, help="The month whose charge fails (0: none).")
    ] = 7,
    db: Annotated[
        str | None, typer.Option(help="Database URL; default: sqlite file in WORLD/state.")
    ] = None,
) -> None:
    """Live months of a subscription on the world's node in seconds: a new bike, daily
    billing and device polls, a failed charge (grace, lapse, the app disabled) and a
    re-subscription; then the wallets are checked and the ledger verified."""
    from liquidfab.market.simulate import simulate_subscription
    from liquidfab.node.world import load_world, open_world_node

    try:
        node = open_world_node(world, db)
        keys = load_world(world).keystore(world)
        run = simulate_subscription(node, app=app, owner=keys.get(owner), maker=keys.get(maker),
                                    months=months, fail_month=fail_month or None)  # fmt: skip
    except LiquidfabError as e:
        raise fail(str(e)) from e
    try:
        lapsed, grace = run.first("lapsed"), run.first("grace")
        enabled = sum(run.enabled)
        console.print(f"[bold]{escape(run.app)}[/bold] on {escape(run.device)}, {run.days} days",
                      soft_wrap=True)  # fmt: skip
        console.print(f"charges: {run.charges}, taken from the owner {_lqd(run.charged)}")
        if grace is not None:
            console.print(f"day {grace}: a charge failed, grace began")
        if lapsed is not None:
            back = next((d for d in range(lapsed, run.days + 1) if run.enabled[d]), None)
            console.print(f"day {lapsed}: lapsed, the device disabled the app")
            if back is not None:
                console.print(f"day {back}: subscribed again, the app back on the device")
        console.print(f"the app ran on {enabled} of {run.days + 1} days")
        table = Table("wallet", "received", "expected from the charges")
        for role, amount in run.received.items():
            table.add_row(role, _lqd(amount), _lqd(run.expected[role]))
        console.print(table)
        verdict = "exact" if run.exact else "[red]NOT exact[/red]"
        console.print(f"split: {verdict}; ledger verify: {'ok' if run.ledger_ok else 'FAILED'}")
        if not (run.exact and run.ledger_ok):
            raise typer.Exit(1)
    finally:
        node.close()
