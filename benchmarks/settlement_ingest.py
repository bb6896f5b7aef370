"""Signed messages carrying a three-leg linked settlement, through HTTP, per second.

A message's transfers commit in its own transaction (docs/ledger.md), so settlement
costs what the ledger adds to a message: leg authorization, the working-set lookups,
the posting engine, the inserts and a chain row. One run measures, on one machine:

1. ``org.liquidfab.ledger.transfer`` messages, each with three linked legs (a sale
   split: creator, manufacturer, platform), into a node served by uvicorn on loopback;
2. the reference: ``org.liquidfab.identity.update`` messages (no settlement) into the
   same kind of node, sent the same way, in the same run.

Both one message per request and 100 per request. Every receipt is checked, and the
node's ledger is audited at the end (``ledger verify``) and its balances compared with
what was sent.

    python benchmarks/settlement_ingest.py          # small, well under a minute
    python benchmarks/settlement_ingest.py --full   # the headline size
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import protocol_ingest as ingest

from liquidfab.db import Database
from liquidfab.identity import SigningKey
from liquidfab.ledger import Ledger
from liquidfab.ledger.messages import TRANSFER
from liquidfab.node.core import Node
from liquidfab.protocol import Envelope, SettlementLeg, uuid7
from liquidfab.protocol import sign_message as sign

PAYERS = 16
SPLIT = (85, 10, 5)  # base units per leg: creator, manufacturer, platform
FUNDS = 10**12


def settling_node(tmp: Path, payers: list[SigningKey], payees: list[SigningKey]) -> tuple[str, str]:
    """A fresh SQLite node: payers funded, payees with wallets; its URL and keystore."""
    db_url, keystore = f"sqlite:///{tmp / 'node.db'}", str(tmp / "keys")
    node = Node.open(db_url, keystore)
    for i, key in enumerate(payers + payees):
        node.register(key, "owner", f"participant {i}")
        node.open_account(key)
    for key in payers:
        node.mint(node.key, f"{key.did}/wallet", FUNDS)
    node.close()
    return db_url, keystore


def sale_messages(payers: list[SigningKey], payees: list[SigningKey], count: int) -> list[Envelope]:
    out = []
    for i in range(count):
        payer = payers[i % len(payers)]
        legs = [
            SettlementLeg(
                id=uuid7(),
                debit_account=f"{payer.did}/wallet",
                credit_account=f"{payee.did}/wallet",
                ledger="LQD",
                amount=str(amount),
                code="market.sale",
                flags=["linked"] if n < 2 else [],
            )
            for n, (payee, amount) in enumerate(zip(payees, SPLIT, strict=True))
        ]
        out.append(sign(payer, TRANSFER, {"memo": f"sale {i}"}, settlement=legs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the headline size")
    parser.add_argument("--connections", type=int, default=8, help="client connections")
    args = parser.parse_args()
    sizes = ingest.FULL if args.full else ingest.SMALL
    print(" ".join(f"{k}: {v};" for k, v in ingest.machine().items()).rstrip(";"))
    payers = [SigningKey.generate() for _ in range(PAYERS)]
    payees = [SigningKey.generate() for _ in range(3)]
    rates: dict[str, float] = {}
    for kind, per_request, total in [
        ("settled", 1, sizes.single),
        ("plain", 1, sizes.single),
        ("settled", ingest.BATCH_SIZE, sizes.batched),
        ("plain", ingest.BATCH_SIZE, sizes.batched),
    ]:
        with tempfile.TemporaryDirectory(prefix="liquidfab-bench-") as tmp:
            if kind == "settled":
                db_url, keystore = settling_node(Path(tmp), payers, payees)
                sent = [0]

                def make(count: int, tag: str, sent: list[int] = sent) -> list[Envelope]:
                    sent[0] += count
                    return sale_messages(payers, payees, count)
            else:
                db_url, keystore = ingest.fresh_node(Path(tmp), payers)

                def make(count: int, tag: str) -> list[Envelope]:
                    return ingest.messages(payers, count, tag)

            with ingest.Server("node", "--db-url", db_url, "--keystore", keystore) as server:
                m = ingest.drive(server, make, total, per_request, sizes.chunk, args.connections)
            if kind == "settled":
                audit_and_check(db_url, payees, sent[0])
        name = f"{kind} {'batch' if per_request > 1 else 'single'}"
        rates[name] = m.rate
        print(
            f"  {name:<15} {m.messages:>7,} msgs in {m.seconds:6.2f} s = {m.rate:>8,.0f} msg/s"
            f"   server CPU {m.server_cpu / m.messages * 1e6:,.0f} us/msg",
            flush=True,
        )
    print()
    rows = [
        (
            "3-leg settlement, 1/request",
            rates["settled single"],
            "no settlement, 1/request",
            rates["plain single"],
            "",
        ),
        (
            "3-leg settlement, 100/request",
            rates["settled batch"],
            "no settlement, 100/request",
            rates["plain batch"],
            "",
        ),
    ]
    print("\n".join(ingest.table(rows)))


def audit_and_check(db_url: str, payees: list[SigningKey], messages: int) -> None:
    """The ledger verifies, and each payee holds exactly its share of every sale sent."""
    database = Database.open(db_url)
    ledger = Ledger(database)
    try:
        report = ledger.verify()
        if not report.ok:
            raise SystemExit(f"the ledger does not verify: {report.problems[0]}")
        wallets = ledger.lookup_accounts([f"{p.did}/wallet" for p in payees])
        got = [w.balance for w in wallets]
        want = [amount * messages for amount in SPLIT]
        if got != want:
            raise SystemExit(f"payee balances {got} are not the {want} sent")
    finally:
        ledger.close()
        database.close()


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(run took {time.perf_counter() - started:.0f} s)")
