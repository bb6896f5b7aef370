"""Crash safety: a writer killed with SIGKILL at random moments loses nothing it acknowledged
and leaves no batch half-applied.

A child process (crash_child.py) submits random batches of transfers between four funded
accounts, printing each batch before it submits it and each batch's results after
``create_transfers`` returned. The parent kills it at a random moment, restarts it (the
new child resubmits the batch its predecessor was killed in, as a client would) and
after every kill checks, against the database:

* every transfer acknowledged ``ok`` is stored once, as asked; none acknowledged with a
  failure is stored, and a failure that depends on the ledger's state is kept with its id;
* the batch in flight at the kill is all or nothing: a linked chain is stored whole or not
  at all; independent transfers are all decided (stored, or refused and kept) or none is;
* a resubmitted batch does not apply again what was stored (``exists``) nor what was refused;
* no stored transfer is one no child asked for, and ``verify()`` finds nothing.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from crash_child import ACCOUNTS, FUNDING, FUNDS, LEDGER, OWNER

from liquidfab.ledger import Ledger, TransferFlags
from liquidfab.ledger.service import treasury_id
from liquidfab.ledger.types import TRANSIENT

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 20
_TRANSIENT = {str(r) for r in TRANSIENT}
_CLOSING = TransferFlags.POST_PENDING | TransferFlags.VOID_PENDING


class Child:
    """One run of crash_child.py, its output collected by threads as it comes."""

    def __init__(self, url: str, seed: int, retry: Path | None) -> None:
        args = [sys.executable, str(CHILD), url, str(seed)] + ([str(retry)] if retry else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[bytes] = []
        self.err = b""
        self.acking = threading.Event()
        self._out = threading.Thread(target=self._read_out, daemon=True)
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out.start()
        self._err.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith(b'{"ack"'):
                self.acking.set()
        self.acking.set()  # the child ended: stop waiting

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.err = self.proc.stderr.read()

    def kill_after_first_ack(self, delay: float) -> None:
        assert self.acking.wait(60), "the child never acknowledged a batch"
        time.sleep(delay)
        alive = self.proc.poll() is None
        self.proc.kill()
        self.proc.wait()
        self._out.join()
        self._err.join()
        assert alive, f"the child died before it was killed:\n{self.err.decode()}"
        assert self.proc.returncode == -signal.SIGKILL

    def records(self) -> list[dict]:
        """Every complete line; a line cut short by the kill was never printed whole."""
        return [json.loads(line) for line in self.lines if line.endswith(b"\n")]


class Stored:
    """What the database holds: transfers by id, kept failures, and the audit."""

    def __init__(self, database) -> None:
        def load(conn):
            transfers = conn.exec_driver_sql(
                "SELECT id, debit_account_id, credit_account_id, amount, flags, pending_id, "
                "timeout, timestamp FROM transfers"
            ).fetchall()
            failed = conn.exec_driver_sql("SELECT id, result FROM ledger_failed").fetchall()
            return transfers, failed

        transfers, failed = database.read(load)
        self.transfers = {r[0]: tuple(r[1:]) for r in transfers}
        assert len(self.transfers) == len(transfers), "a transfer id is stored twice"
        self.failed = {r[0]: r[1] for r in failed}


def _check(ledger: Ledger, stored: Stored, batches: dict, acked: dict, unacked):
    transfers, failed = stored.transfers, stored.failed
    assert not transfers.keys() & failed.keys(), "an id is both stored and refused"
    unknown = transfers.keys() - set(FUNDING) - batches.keys()
    assert not unknown, f"stored transfers no child asked for: {sorted(unknown)[:5]}"
    for tid, result in acked.items():
        spec = batches[tid]
        if result in ("ok", "exists"):
            assert tid in transfers, f"transfer {tid} was acknowledged {result} but is lost"
            debit, credit, amount, flags, pending_id, timeout, _ = transfers[tid]
            assert (flags & ~TransferFlags.LINKED, pending_id) == (
                spec[4] & ~TransferFlags.LINKED,
                spec[5],
            )
            if not spec[4] & _CLOSING:
                assert (debit, credit, amount, timeout) == (spec[1], spec[2], spec[3], spec[6])
        else:
            assert tid not in transfers, f"transfer {tid} was refused ({result}) but is stored"
            if result in _TRANSIENT:
                assert failed.get(tid) == result, f"the refusal of {tid} ({result}) is not kept"
    if unacked is not None:
        specs, linked = unacked
        ids = {s[0] for s in specs}
        decided = ids & transfers.keys() if linked else ids & (transfers.keys() | failed.keys())
        assert decided in (set(), ids), (
            f"the batch in flight at the kill is half-applied: {len(decided)} of {len(ids)} "
            f"({'linked' if linked else 'independent'})"
        )
    report = ledger.verify()
    assert report.ok, report.problems[:5]
    assert report.supply == {LEDGER: FUNDS * len(ACCOUNTS)}
    balances = [a.balance for a in ledger.lookup_accounts(ACCOUNTS)]
    assert sum(balances) == FUNDS * len(ACCOUNTS)
    assert min(balances) >= 0


def _check_retry(before: Stored, after: Stored, results: list[list[str]]) -> None:
    """A resubmitted batch applies nothing twice and nothing that was refused before."""
    for tid, result in results:
        if tid in before.transfers:
            assert result in ("exists", "linked_event_failed"), (tid, result)
            assert after.transfers[tid] == before.transfers[tid]
        elif tid in before.failed:
            assert result in (before.failed[tid], "linked_event_failed"), (tid, result)
            assert tid not in after.transfers


def test_sigkill_loses_no_acknowledged_transfer(database_url, database, tmp_path):
    ledger = Ledger(database)
    rng = random.Random()
    batches: dict[str, list] = {}  # transfer id -> its spec, for every batch begun
    acked: dict[str, str] = {}  # transfer id -> the result a child printed
    retry: Path | None = None
    retry_batch: list | None = None
    before = Stored(database)
    in_flight = applied_in_flight = acked_batches = 0
    try:
        for run in range(KILLS):
            child = Child(database_url, rng.randrange(2**32), retry)
            child.kill_after_first_ack(rng.uniform(0.05, 0.4))
            unacked = retry_results = None
            for record in child.records():
                if "retry" in record:
                    assert retry_batch is not None
                    retry_results = record["retry"]
                elif "begin" in record:
                    batches.update((s[0], s) for s in record["begin"])
                    unacked = (record["begin"], record["linked"])
                else:
                    acked.update(dict(record["ack"]))
                    acked_batches += 1
                    unacked = None
            after = Stored(database)
            if retry_batch is not None:
                assert retry_results is not None, "the resubmitted batch was not answered"
                _check_retry(before, after, retry_results)
                # What the resubmission decided now counts as acknowledged; a failure
                # (``exists``, ``linked_event_failed``) of a transfer stored before it
                # says nothing new about that transfer.
                acked.update(
                    (tid, result)
                    for tid, result in retry_results
                    if result in ("ok", "exists") or tid not in after.transfers
                )
            _check(ledger, after, batches, acked, unacked)
            retry_batch = retry = None
            if unacked is not None:
                in_flight += 1
                applied_in_flight += bool({s[0] for s in unacked[0]} & after.transfers.keys())
                retry_batch = unacked[0]
                retry = tmp_path / f"retry-{run}.json"
                retry.write_text(json.dumps(retry_batch))
            before = after
        assert treasury_id(OWNER, LEDGER) in {a.id for a in ledger.accounts_of(OWNER)}
    finally:
        ledger.close()
    # The test means something only if kills landed inside batches, and batches applied.
    assert in_flight >= KILLS // 4, f"only {in_flight} of {KILLS} kills hit a batch in flight"
    assert acked_batches >= 2 * KILLS
    assert sum(r == "ok" for r in acked.values()) >= 2 * KILLS
    print(f"{in_flight} kills in flight ({applied_in_flight} after the commit), {acked_batches}")
