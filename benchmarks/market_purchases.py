"""Market purchases per second, end to end: a signed buy, its split, its entitlement.

Each run works on a fresh copy of the e-bike world (SQLite, as ``liquidfab up`` opens
it). The world's creator (``trailcraft``) claims the territory ``@trailworks``, lists the
range boost (one-time, 19.99 LQD), uploads its bytes (``PUT /v1/market/uploads/...``) and
publishes release 1.0.0. Owners made for the run are registered and given funded
wallets, and the manufacturer registers one device per purchase for them (a device holds
an app once). A purchase is an ``org.liquidfab.market.buy`` of the range boost for a new
device, signed by its owner and carrying the three linked legs the quote names (creator
85 %, manufacturer 10 %, platform 5 %): the node checks owner, device, listing, release and
legs, applies the split and issues the entitlement, all in one transaction.

Four ways, each next to its reference in the same run:

1. in process, ``Node.submit``: one message, one transaction;
2. in process, ``Dispatcher.submit_many``: batches of 100;
3. over HTTP to the node as its own process (``liquidfab up``: uvicorn on loopback),
   one message per request over 8 keep-alive connections;
4. the same, 100 messages per request.

In process, the node is handed each message parsed from its JSON body, as the HTTP route
hands it over. The reference is the same number of plain ``org.liquidfab.ledger.transfer``
messages from the same owners, each carrying the same three linked legs to the same
accounts, sent the same way: the ratio is what the market logic (device, listing, release,
price and legs checked, the entitlement, the earnings row, the device's notice) costs on
top of the ledger. The two kinds alternate in rounds (market first, then reference first,
...) so both see the same growing store; each way starts with an untimed warm-up of both.
Messages are signed before each timed window and every answer is checked accepted. At
the end the ledger is verified, the creator's, the manufacturer's and the platform's
accounts must have grown by exactly their share times the messages sent (purchases and
transfers, warm-ups included), and every purchase must have its entitlement and its
earnings row.

    python benchmarks/market_purchases.py                   # 400 purchases a way
    python benchmarks/market_purchases.py --full            # 10,000 purchases a way
    python benchmarks/market_purchases.py --purchases 100   # a quick trial
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import itertools
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import protocol_ingest as ingest
from sqlalchemy import func, select

from liquidfab.db.tables import entitlements
from liquidfab.fleet.messages import REGISTER_DEVICE
from liquidfab.fleet.simulate import NodeProcess, SimulationSettings
from liquidfab.identity import SigningKey
from liquidfab.ledger.messages import TRANSFER
from liquidfab.market import fees, purchases
from liquidfab.market.messages import BUY, CLAIM, LISTING
from liquidfab.market.publishing import publish_message
from liquidfab.node import create_app, load_world, open_world_node
from liquidfab.node.core import Node
from liquidfab.protocol import (
    BATCH_CONTENT_TYPE,
    CONTENT_TYPE,
    Envelope,
    SettlementLeg,
    parse_json,
    sign_message,
    uuid7,
)

ROOT = Path(__file__).resolve().parent.parent
WORLD = ROOT / "examples" / "ebike"
PRODUCT = "com.voltwerk.trail"
TERRITORY = "@trailworks"
BOOST = {
    "app": f"{TERRITORY}/range-boost",
    "kind": "feature",
    "title": "Range boost",
    "summary": "An assist map tuned for range.",
    "product": PRODUCT,
    "versions": "*",
    "pricing": {"model": "one-time", "amount": "19.99"},
}
RELEASE = b"range boost 1.0.0"
OWNERS = 32
FUNDS = 10**15  # base units minted into each owner's wallet (a billion LQD)
BATCH = 100  # messages per submit_many call or per batch request
CHUNK = 2_500  # most messages signed at once: all of them must land inside the skew window
SMALL, FULL = 400, 10_000


@dataclass(frozen=True)
class Way:
    """How messages reach the node: in process or over HTTP, so many per call."""

    name: str
    http: bool
    per_call: int

    @property
    def warmup(self) -> int:
        """Messages of each kind sent untimed first (statements compiled, caches filled)."""
        return max(self.per_call, 16 if self.http else 20)


WAYS = [
    Way("in process, 1/transaction", False, 1),
    Way(f"in process, {BATCH}/batch", False, BATCH),
    Way("HTTP, 1/request", True, 1),
    Way(f"HTTP, {BATCH}/request", True, BATCH),
]


@dataclass
class Measured:
    """Messages accepted, the seconds they took, and the CPU the node used for them."""

    messages: int = 0
    seconds: float = 0.0
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else float("nan")

    def cpu_us(self) -> float:
        return 1e6 * self.cpu / max(self.messages, 1)


@dataclass
class Market:
    """The world prepared for purchases: who is who, the legs, devices not yet used."""

    folder: Path
    creator: SigningKey
    owners: list[SigningKey]
    legs: list[dict[str, Any]]  # the quote's: credit_account, amount, role, flags
    devices: list[tuple[str, SigningKey]]  # (device did, its owner), one per purchase
    used: int = 0
    sent: dict[str, int] = field(default_factory=lambda: {"buy": 0, "transfer": 0})
    turn: itertools.count = field(default_factory=itertools.count)

    @property
    def price(self) -> int:
        return sum(int(leg["amount"]) for leg in self.legs)

    @property
    def payees(self) -> list[str]:
        return [leg["credit_account"] for leg in self.legs]

    def settlement(self, owner: SigningKey) -> list[SettlementLeg]:
        return [
            SettlementLeg(id=uuid7(), debit_account=f"{owner.did}/wallet",
                          credit_account=leg["credit_account"], ledger=purchases.LEDGER,
                          amount=leg["amount"], code=purchases.CODE, flags=leg["flags"])
            for leg in self.legs
        ]  # fmt: skip

    def buys(self, count: int) -> list[Envelope]:
        """``count`` signed buys of the app, each for a device not used before."""
        devices = self.devices[self.used : self.used + count]
        if len(devices) < count:
            raise SystemExit("ran out of registered devices")
        self.used += count
        return [
            sign_message(owner, BUY, {"purchase": f"p-{uuid7()}", "app": BOOST["app"],
                                      "device": did}, settlement=self.settlement(owner))
            for did, owner in devices
        ]  # fmt: skip

    def transfers(self, count: int) -> list[Envelope]:
        """``count`` signed plain transfers with the same legs, round-robin over the owners."""
        out = []
        for _ in range(count):
            i = next(self.turn)
            owner = self.owners[i % len(self.owners)]
            memo = {"memo": f"reference {i}"}
            out.append(sign_message(owner, TRANSFER, memo, settlement=self.settlement(owner)))
        return out


# --- the world ----------------------------------------------------------------------------


def accepted(outcomes: list[Any], what: str) -> None:
    for outcome in outcomes:
        if not outcome.accepted:
            raise SystemExit(f"REFUSED ({what}): {outcome.status} {outcome.body}")


def prepare(folder: Path, devices: int) -> tuple[Market, Node]:
    """Creator, listing, release, funded owners and ``devices`` registered devices."""
    node = open_world_node(folder)
    world = load_world(folder)
    keystore = world.keystore(folder)
    operator = keystore.get(world.operator_keys()[0])
    creator, maker = keystore.get("trailcraft"), keystore.get("voltwerk")
    with warnings.catch_warnings():  # starlette's TestClient would rather have httpx2
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    with TestClient(create_app(node)) as client:
        version = client.get(f"/v1/products/{PRODUCT}").json()["latest"]
        accepted([node.submit(sign_message(creator, CLAIM, {"territory": TERRITORY}))], "claim")
        accepted([node.submit(sign_message(creator, LISTING, BOOST))], "listing")
        sha = hashlib.sha256(RELEASE).hexdigest()
        if client.put(f"/v1/market/uploads/{sha}", content=RELEASE).status_code != 201:
            raise SystemExit("the upload was refused")
        role = client.get(f"/v1/market/roles/{TERRITORY}")
        current = role.json() if role.status_code == 200 else None
        release = publish_message(creator, BOOST, "1.0.0", RELEASE, current)
        accepted([node.submit(release)], "publish")
        owners = [SigningKey.generate() for _ in range(OWNERS)]
        for i, key in enumerate(owners):
            node.register(key, "owner", f"buyer {i}")
            node.mint(operator, node.open_account(key), FUNDS)
        pairs = [(SigningKey.generate().did, owners[i % OWNERS]) for i in range(devices)]
        for start in range(0, devices, CHUNK):
            messages = [
                sign_message(maker, REGISTER_DEVICE, {"did": did, "product": PRODUCT,
                                                      "version": version, "owner": owner.did})
                for did, owner in pairs[start : start + CHUNK]
            ]  # fmt: skip
            for i in range(0, len(messages), BATCH):
                accepted(node.dispatcher.submit_many(messages[i : i + BATCH]), "register-device")
        quote = client.get(f"/v1/market/apps/{BOOST['app']}/quote",
                           params={"device": pairs[0][0]}).json()  # fmt: skip
    legs = quote["legs"]
    shares = purchases.shares(fees.DEFAULT, int(quote["amount"]), creator=creator.did,
                              manufacturer=maker.did, node=node.did)  # fmt: skip
    if [(s.account, str(s.amount)) for s in shares] != [
        (leg["credit_account"], leg["amount"]) for leg in legs
    ]:
        raise SystemExit(f"the quote's legs {legs} are not purchases.shares {shares}")
    return Market(folder, creator, owners, legs, pairs), node


def balances(node: Node, accounts: list[str]) -> list[int]:
    found = {a.id: a.balance for a in node.ledger.lookup_accounts(accounts)}
    return [found[a] for a in accounts]


# --- sending ------------------------------------------------------------------------------


def in_process(node: Node, per_call: int, envs: list[Envelope], into: Measured | None) -> None:
    """Submit ``envs`` (one per call, or ``per_call`` to a batch), timed into ``into``.

    The node gets each message as the HTTP route hands it over, parsed from its JSON
    body (untimed), so it builds the envelope, its canonical bytes and digest itself."""
    bodies = [parse_json(env.to_json()) for env in envs]
    cpu, started = time.process_time(), time.perf_counter()
    if per_call == 1:
        outcomes = [node.submit(body) for body in bodies]
    else:
        outcomes = []
        for i in range(0, len(bodies), per_call):
            outcomes += node.dispatcher.submit_many(bodies[i : i + per_call])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    accepted(outcomes, envs[0].type)
    if into is not None:
        into.messages += len(envs)
        into.seconds += seconds
        into.cpu += cpu


def over_http(
    server: NodeProcess, per_call: int, connections: int, envs: list[Envelope],
    into: Measured | None,
) -> None:  # fmt: skip
    """POST ``envs`` (``per_call`` to a request) over ``connections``, timed into ``into``."""
    batch = per_call > 1
    groups = [envs[i : i + per_call] for i in range(0, len(envs), per_call)]
    bodies = [b"[" + b",".join(e.to_json() for e in g) + b"]" if batch else g[0].to_json()
              for g in groups]  # fmt: skip
    content_type = BATCH_CONTENT_TYPE if batch else CONTENT_TYPE
    requests = [ingest.request(server.port, content_type, body) for body in bodies]
    cpu, started = server.cpu_seconds(), time.perf_counter()
    results = asyncio.run(ingest._send_all(server.port, requests, connections))
    seconds, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu
    ingest.check(results, groups, batch)
    if into is not None:
        into.messages += len(envs)
        into.seconds += seconds
        into.cpu += cpu


def rounds(total: int) -> list[int]:
    """``total`` split into an even number of rounds of at most CHUNK."""
    n = max(2, math.ceil(total / CHUNK))
    n += n % 2
    return [total // n + (i < total % n) for i in range(n)]


def measure(market: Market, way: Way, total: int, send: Any) -> tuple[Measured, Measured]:
    """Purchases and reference transfers, alternating who goes first, each signed untimed."""
    buys, refs = Measured(), Measured()
    send(market.buys(way.warmup), None)
    send(market.transfers(way.warmup), None)
    market.sent["buy"] += way.warmup
    market.sent["transfer"] += way.warmup
    for i, count in enumerate(rounds(total)):
        order = [("buy", buys), ("transfer", refs)]
        for kind, into in order if i % 2 == 0 else order[::-1]:
            envs = market.buys(count) if kind == "buy" else market.transfers(count)
            send(envs, into)
            market.sent[kind] += count
    return buys, refs


# --- checks and the report ----------------------------------------------------------------


def checks(market: Market, before: list[int]) -> list[tuple[str, bool]]:
    """The ledger verifies; each payee grew by exactly its share of every message sent;
    one entitlement and one earnings row per purchase."""
    out: list[tuple[str, bool]] = []
    node = open_world_node(market.folder)
    try:
        report = node.ledger.verify()
        out.append((f"ledger verify: {'ok' if report.ok else report.problems[:1]}", report.ok))
        after = balances(node, market.payees)
        sent = market.sent["buy"] + market.sent["transfer"]
        both = f"({market.sent['buy']:,} purchases + {market.sent['transfer']:,} transfers)"
        for leg, b, a in zip(market.legs, before, after, strict=True):
            share = int(leg["amount"])
            verdict = "exact" if a - b == sent * share else f"NOT the {sent * share:,} sent"
            text = f"{leg['role']} account grew by {a - b:,} = {both} x {share:,}: {verdict}"
            out.append((text, a - b == sent * share))
        spent = OWNERS * FUNDS - sum(balances(node, [f"{o.did}/wallet" for o in market.owners]))
        verdict = "exact" if spent == sent * market.price else "NOT what was sent"
        out.append((f"owners spent {spent:,} = {both} x {market.price:,}: {verdict}",
                    spent == sent * market.price))  # fmt: skip
        e = entitlements.c
        query = select(func.count()).where(e.feature == BOOST["app"])
        held = node.database.read(lambda c: c.execute(query).scalar_one())
        earned = node.database.read(lambda c: purchases.earnings(c, market.creator.did))
    finally:
        node.close()
    buys, share = market.sent["buy"], int(market.legs[0]["amount"])
    out.append((f"entitlements for {BOOST['app']}: {held:,} of {buys:,} purchases", held == buys))
    text = f"creator earnings: {earned['charges']:,} charges, {earned['earned']:,} = {buys:,} x "
    ok = earned["charges"] == buys and earned["earned"] == buys * share
    out.append((f"{text}{share:,}", ok))
    return out


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def versions() -> str:
    names = ["uvicorn", "uvloop", "httptools", "fastapi", "sqlalchemy", "pynacl"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"no {name}")
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"{FULL:,} purchases a way")
    parser.add_argument("--purchases", type=int, help=f"purchases a way (default {SMALL})")
    parser.add_argument("--connections", type=int, default=8, help="HTTP client connections")
    parser.add_argument("--keep", action="store_true", help="keep the temporary world")
    args = parser.parse_args()
    total = args.purchases or (FULL if args.full else SMALL)
    print(" ".join(f"{k}: {v};" for k, v in ingest.machine().items()).rstrip(";"))
    print(f"also: {versions()}; load average at the start {load()}")
    print(f"{total:,} purchases and {total:,} reference transfers a way; {OWNERS} owners; "
          f"HTTP over {args.connections} connections")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="liquidfab-market-"))
    folder = tmp / "ebike"
    shutil.copytree(WORLD, folder, ignore=shutil.ignore_patterns("keys", "state"))
    results: dict[str, tuple[Measured, Measured]] = {}
    try:
        started = time.perf_counter()
        devices = sum(total + way.warmup for way in WAYS)
        market, node = prepare(folder, devices)
        split = " + ".join(f"{leg['role']} {int(leg['amount']):,}" for leg in market.legs)
        seconds = time.perf_counter() - started
        print(f"world ready in {seconds:.1f} s: {devices:,} devices; price {market.price:,} "
              f"base units = {split}", flush=True)  # fmt: skip
        before = balances(node, market.payees)
        try:
            for way in WAYS:
                if not way.http:
                    send = functools.partial(in_process, node, way.per_call)
                    results[way.name] = measure(market, way, total, send)
                    report(way, results[way.name], "process CPU")
        finally:
            node.close()
        server = NodeProcess(folder, SimulationSettings(), tmp / "node.log")
        try:
            server.wait_ready()
            for way in WAYS:
                if way.http:
                    send = functools.partial(over_http, server, way.per_call, args.connections)
                    results[way.name] = measure(market, way, total, send)
                    report(way, results[way.name], "node CPU")
        finally:
            server.stop()
        done = checks(market, before)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| way | purchases/s | reference: 3-leg transfers/s | ratio |")
    print("|---|---:|---:|---:|")
    for way in WAYS:
        buys, refs = results[way.name]
        print(f"| {way.name} | {buys.rate:,.0f} | {refs.rate:,.0f} | {buys.rate / refs.rate:.2f} |")
    print(f"\nload average at the end {load()} (other work on the machine disturbs the figures)")
    print()
    for text, ok in done:
        print(f"  {'ok ' if ok else 'BAD'} {text}")
    if not all(ok for _, ok in done):
        sys.exit(1)


def report(way: Way, measured: tuple[Measured, Measured], cpu: str) -> None:
    for kind, m in zip(("market.buy", "transfer"), measured, strict=True):
        print(f"  {way.name:<26} {kind:<11} {m.messages:>7,} in {m.seconds:6.2f} s = "
              f"{m.rate:>7,.0f}/s   {cpu} {m.cpu_us():,.0f} us/msg", flush=True)  # fmt: skip


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(run took {time.perf_counter() - started:.0f} s)")
