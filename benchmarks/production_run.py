"""Personal orders end to end (``liquidfab produce``), and which stage is slow.

Each size runs in a fresh copy of the e-bike world on SQLite, in process: customers
configure and place orders with escrow, batches of 100 are sequenced, parts are bought
through supply contracts, the virtual line builds, units are recorded and customers pay
on delivery, every step a signed message through the node. Printed: orders per second,
the share of wall time in each stage (configure, validate, compile, place, sequence,
supply, execute, record, settle), and the node's signed messages per second.

The reference, in the same run and on the same node: plain signed ledger transfers
(one leg, no production logic), the node's ceiling for a message that moves value. The
ratio says what the production steps cost on top of signing, logging and settling.

    python benchmarks/production_run.py          # 200 orders
    python benchmarks/production_run.py --full   # 1,000 and 10,000 orders
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from liquidfab.db import messages as message_log
from liquidfab.identity import SigningKey
from liquidfab.ledger.messages import TRANSFER
from liquidfab.node.world import load_world, open_world_node
from liquidfab.production.produce import ProduceSettings, produce
from liquidfab.protocol import SettlementLeg, sign_message, uuid7

ROOT = Path(__file__).resolve().parent.parent
WORLD = ROOT / "examples" / "ebike"
REFERENCE_TRANSFERS = 2000


def _world(into: Path) -> Path:
    folder = into / "ebike"
    shutil.copytree(WORLD, folder, ignore=shutil.ignore_patterns("keys", "state"))
    return folder


def transfers_per_second(node, operator: SigningKey) -> float:
    """Signed one-leg transfers between two funded wallets on ``node``, per second."""
    payer, payee = SigningKey.generate(), SigningKey.generate()
    for key in (payer, payee):
        node.register(key, "owner", "bench")
        node.open_account(key)
    node.mint(operator, f"{payer.did}/wallet", 10**12)
    messages = []
    for _ in range(REFERENCE_TRANSFERS):
        leg = SettlementLeg(
            id=uuid7(),
            debit_account=f"{payer.did}/wallet",
            credit_account=f"{payee.did}/wallet",
            ledger="LQD",
            amount="1",
            code="bench",
        )
        messages.append(sign_message(payer, TRANSFER, {"memo": "bench"}, settlement=[leg]))
    started = time.perf_counter()
    for message in messages:
        outcome = node.submit(message)
        assert outcome.accepted, outcome.body
    return REFERENCE_TRANSFERS / (time.perf_counter() - started)


def run(orders: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _world(Path(tmp))
        node = open_world_node(folder)
        try:
            before = node.database.read(message_log.count_messages)
            started = time.perf_counter()
            report = produce(node, folder, ProduceSettings(orders=orders, batch=100, seed=1))
            wall = time.perf_counter() - started
            sent = node.database.read(message_log.count_messages) - before
            reference = transfers_per_second(node, world_operator(folder))
        finally:
            node.close()
    return {"orders": orders, "report": report, "wall": wall, "messages": sent, "ref": reference}


def world_operator(folder: Path) -> SigningKey:
    world = load_world(folder)
    return world.keystore(folder).get(world.operator_keys()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000 and 10,000 orders")
    args = parser.parse_args()
    sizes = (1_000, 10_000) if args.full else (200,)
    print(
        f"# production_run, {datetime.now(UTC):%Y-%m-%d}, {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite in process\n"
    )
    results = [run(n) for n in sizes]
    print(
        "| orders | wall s | orders/s | units built | reworked | scrapped | supply contracts "
        "| messages | messages/s | reference transfers/s | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        rep = r["report"]
        rate = r["messages"] / r["wall"]
        print(
            f"| {r['orders']:,} | {r['wall']:.1f} | {r['orders'] / r['wall']:.1f} "
            f"| {rep.units_built:,} | {rep.reworked} | {rep.scrapped} | {rep.supply_contracts} "
            f"| {r['messages']:,} | {rate:,.0f} | {r['ref']:,.0f} | {rate / r['ref']:.2f} |"
        )
    print()
    stages = list(results[0]["report"].stages)
    print("| orders | " + " | ".join(stages) + " |")
    print("|---:|" + "---:|" * len(stages))
    for r in results:
        shares = r["report"].stage_shares()
        secs = r["report"].stages
        cells = [f"{shares[s]:.0%} ({secs[s]:.1f} s)" for s in stages]
        print(f"| {r['orders']:,} | " + " | ".join(cells) + " |")
    print()
    for r in results:
        d = r["report"].to_dict()
        print(
            f"{r['orders']:,} orders: throughput {d['throughput_per_hour']} units/h simulated, "
            f"lead time p50 {d['lead_time_p50_hours']} h / p95 {d['lead_time_p95_hours']} h, "
            f"{d['escrows_posted']} escrows posted = {d['payments_settled']} LQD = delivered "
            f"prices {d['prices_delivered']}"
        )


if __name__ == "__main__":
    main()
