"""The child of test_crash.py: submits random transfer batches until it is killed.

Usage: python crash_child.py DATABASE_URL SEED [RETRY_FILE]

It opens the ledger (the parent has migrated the database), makes sure the ledger,
the bank accounts and their funding exist (``exists`` on a restart), resubmits the
batch in RETRY_FILE if there is one (the batch the previous child was killed in), then
loops. Every line it prints is one JSON object, flushed at once:

  {"begin": [transfer, ...], "linked": bool}  before a batch is submitted
  {"ack": [[id, result], ...]}                 after create_transfers returned
  {"retry": [[id, result], ...]}               the results of the resubmitted batch

A transfer is [id, debit, credit, amount, flags, pending_id, timeout].
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid

from liquidfab.db import Database
from liquidfab.ledger import Account, Ledger, Transfer, TransferFlags, account_id_for

LEDGER = "LQD"
OWNER = "did:key:zCrashTreasury"
ACCOUNTS = [account_id_for(f"did:key:zCrash{i}") for i in range(4)]
FUNDS = 1000
# Fixed ids, so a restarted child's funding is answered ``exists``.
FUNDING = [f"00000000-0000-7000-8000-{i:012x}" for i in range(len(ACCOUNTS))]


def transfer_id() -> str:
    """A UUIDv7 (without importing liquidfab.protocol: start-up time is the test's budget)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62)
    return str(uuid.UUID(int=value | (rand & ((1 << 62) - 1))))


def to_transfer(spec: list) -> Transfer:
    tid, debit, credit, amount, flags, pending_id, timeout = spec
    return Transfer(tid, debit, credit, amount, LEDGER, "bank", flags, pending_id, timeout)


def say(**line: object) -> None:
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def setup(ledger: Ledger) -> None:
    treasury = ledger.define_ledger(LEDGER, 2, OWNER).treasury
    for r in ledger.create_accounts([Account(a, LEDGER, "wallet") for a in ACCOUNTS]):
        assert r.result in ("ok", "exists"), r
    funding = [
        Transfer(tid, treasury, a, FUNDS, LEDGER, "bank")
        for tid, a in zip(FUNDING, ACCOUNTS, strict=True)
    ]
    for r in ledger.create_transfers(funding):
        assert r.result in ("ok", "exists"), r


def next_batch(rng: random.Random, open_pending: list[list]) -> tuple[list[list], bool]:
    """A linked chain (all or nothing by its flags) or independent transfers, which may
    include pending transfers (expiring after a second) and posts or voids of earlier ones."""
    linked = rng.random() < 0.4
    specs: list[list] = []
    for _ in range(rng.randint(2 if linked else 1, 6)):
        if not linked and open_pending and rng.random() < 0.25:
            p = open_pending.pop(rng.randrange(len(open_pending)))
            flag = TransferFlags.POST_PENDING if rng.random() < 0.6 else TransferFlags.VOID_PENDING
            specs.append([transfer_id(), "", "", None, int(flag), p[0], 0])
            continue
        debit, credit = rng.sample(ACCOUNTS, 2)
        pending = not linked and rng.random() < 0.2
        flags = TransferFlags.PENDING if pending else 0
        specs.append(
            [transfer_id(), debit, credit, rng.randint(1, 400), int(flags), None, int(pending)]
        )
    if linked:
        for spec in specs[:-1]:
            spec[4] |= TransferFlags.LINKED
    return specs, linked


def main() -> None:
    url, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    database = Database(url)  # migrated by the parent; the child only needs to start fast
    ledger = Ledger(database)
    setup(ledger)
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as f:
            batch = json.load(f)
        results = ledger.create_transfers([to_transfer(s) for s in batch])
        say(retry=[[r.id, r.result] for r in results])
    open_pending: list[list] = []
    while True:
        specs, linked = next_batch(rng, open_pending)
        say(begin=specs, linked=linked)
        results = ledger.create_transfers([to_transfer(s) for s in specs])
        say(ack=[[r.id, r.result] for r in results])
        for spec, r in zip(specs, results, strict=True):
            if r.ok and spec[4] & TransferFlags.PENDING:
                open_pending.append(spec)


if __name__ == "__main__":
    main()
