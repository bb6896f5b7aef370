"""Jepsen's bank test: concurrent processes move money between accounts; none is created
or lost, none is overdrawn, and every transfer acknowledged is stored.

Several worker processes (spawned, each with its own Database and Ledger on the same
database) transfer random amounts between the bank's accounts for a few seconds, in
batches of independent transfers or linked chains, and read every balance now and then.
On SQLite they contend for the database's write lock (busy_timeout); on PostgreSQL for
the chain head's row lock. Afterwards:

* the bank's total is what was minted, in every read a worker made and at the end;
* no account is overdrawn (each forbids debits beyond its credits);
* every transfer a worker saw ``ok`` is stored as asked; none it saw refused is stored;
* the stored transfers are exactly the minting plus the acknowledged ones (no lost or
  phantom update), and each balance is what those transfers imply;
* ``verify()`` recomputes the same balances and the same chain;
* the workers' transfers are interleaved in the ledger, so they did run concurrently.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import time
from collections import Counter

from liquidfab.db import Database
from liquidfab.ledger import Account, Ledger, Transfer, TransferFlags, account_id_for
from liquidfab.protocol import uuid7

LEDGER = "LQD"
OWNER = "did:key:zBankTreasury"
ACCOUNTS = [account_id_for(f"did:key:zBank{i}") for i in range(8)]
INITIAL = 100
TOTAL = INITIAL * len(ACCOUNTS)
WORKERS = 4
SECONDS = 2.0


def _worker(url: str, seed: int, barrier, results) -> None:
    """Transfer and read until the time is up; put what was asked and answered on ``results``."""
    rng = random.Random(seed)
    database = Database(url)
    ledger = Ledger(database)
    asked: list[list] = []  # [id, debit, credit, amount, result]
    reads: list[int] = []  # the bank's total in each read
    try:
        barrier.wait(60)
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            if rng.random() < 0.15:
                reads.append(sum(a.balance for a in ledger.lookup_accounts(ACCOUNTS)))
                continue
            linked = rng.random() < 0.3
            batch = []
            for _ in range(rng.randint(2 if linked else 1, 4)):
                debit, credit = rng.sample(ACCOUNTS, 2)
                batch.append(Transfer(uuid7(), debit, credit, rng.randint(1, 60), LEDGER, "bank"))
            if linked:
                for t in batch[:-1]:
                    t.flags = TransferFlags.LINKED
            answers = ledger.create_transfers(batch)
            asked += [
                [t.id, t.debit_account_id, t.credit_account_id, t.amount, r.result]
                for t, r in zip(batch, answers, strict=True)
            ]
        results.put((seed, asked, reads, None))
    except BaseException as e:
        results.put((seed, asked, reads, repr(e)))
        raise
    finally:
        ledger.close()
        database.close()


def test_bank_conserves_money_under_concurrent_writers(database_url, database):
    ledger = Ledger(database)
    try:
        treasury = ledger.define_ledger(LEDGER, 2, OWNER).treasury
        opened = ledger.create_accounts([Account(a, LEDGER, "wallet") for a in ACCOUNTS])
        assert all(r.ok for r in opened)
        minting = [Transfer(uuid7(), treasury, a, INITIAL, LEDGER, "mint") for a in ACCOUNTS]
        assert all(r.ok for r in ledger.create_transfers(minting))

        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(WORKERS)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_worker, args=(database_url, seed, barrier, results))
            for seed in range(WORKERS)
        ]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0, f"worker exited with {p.exitcode}"
        errors = [(seed, e) for seed, _, _, e in outcomes if e]
        assert not errors, errors

        asked = {row[0]: (seed, row) for seed, rows, _, _ in outcomes for row in rows}
        ok = {tid: row for tid, (_, row) in asked.items() if row[4] == "ok"}
        codes = Counter(row[4] for _, row in asked.values())
        assert len(asked) == sum(len(rows) for _, rows, _, _ in outcomes), "a reused id"
        for seed, rows, _, _ in outcomes:
            assert sum(r[4] == "ok" for r in rows) >= 10, f"worker {seed} hardly got through"
        assert codes["exceeds_credits"] > 0, codes  # overdrafts were tried and refused

        reads = [total for _, _, totals, _ in outcomes for total in totals]
        assert reads, "no worker read the balances"
        assert set(reads) == {TOTAL}, "a read saw money created or lost"

        stored = {t.id: t for t in ledger.lookup_transfers(list(asked) + [t.id for t in minting])}
        count = database.read(
            lambda c: c.exec_driver_sql("SELECT COUNT(*) FROM transfers").scalar_one()
        )
        assert count == len(minting) + len(ok), "stored transfers are not the acknowledged ones"
        for tid, (_, debit, credit, amount, result) in ((k, v[1]) for k, v in asked.items()):
            if result == "ok":
                t = stored.get(tid)
                assert t is not None, f"acknowledged transfer {tid} is lost"
                assert (t.debit_account_id, t.credit_account_id, t.amount) == (
                    debit,
                    credit,
                    amount,
                )
            else:
                assert tid not in stored, f"transfer {tid} was refused ({result}) but is stored"

        implied = dict.fromkeys(ACCOUNTS, INITIAL)
        for _, debit, credit, amount, _ in ok.values():
            implied[debit] -= amount
            implied[credit] += amount
        accounts = {a.id: a for a in ledger.lookup_accounts(ACCOUNTS)}
        assert {a: accounts[a].balance for a in ACCOUNTS} == implied
        assert sum(implied.values()) == TOTAL
        for a in accounts.values():
            assert a.debits_posted <= a.credits_posted, f"{a.id} is overdrawn"
            assert a.debits_pending == a.credits_pending == 0

        report = ledger.verify()
        assert report.ok, report.problems[:5]
        assert report.supply == {LEDGER: TOTAL}
        assert report.transfers == count

        # The workers' transfers interleave in the ledger's order: they ran concurrently.
        order = sorted(ok, key=lambda tid: stored[tid].timestamp)
        switches = sum(asked[a][0] != asked[b][0] for a, b in itertools.pairwise(order))
        assert switches >= WORKERS, f"the workers' transfers hardly interleave ({switches})"
        print(
            f"{len(ok)} ok of {len(asked)} {dict(codes)}, {len(reads)} reads, {switches} switches"
        )
    finally:
        ledger.close()
