"""Recompute the chain and every balance from the events, and say where they differ.

The chain binds every event (account opened, transfer applied, pending transfer
expired) to its batch; the balances are a cache of the events. So an audit replays
the events in timestamp order, recomputes each batch's head and each account's four
balances, and compares both with what is stored, along with pending states, balance
histories and the node's signed checkpoints.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from liquidfab.errors import IdentityError
from liquidfab.identity import VerifyKey
from liquidfab.ledger.store import (
    GENESIS,
    account_event,
    chain_digest,
    expiry_event,
    fetch,
    run,
    transfer_event,
)
from liquidfab.ledger.types import Account, AccountFlags, Transfer, TransferFlags

__all__ = ["AuditReport", "audit", "checkpoint_bytes", "verify_checkpoint"]


@dataclass
class AuditReport:
    """What an audit found: ``problems`` lists inconsistencies, the first one first."""

    batches: int = 0
    events: int = 0
    accounts: int = 0
    transfers: int = 0
    checkpoints: int = 0
    head: str = GENESIS
    supply: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "batches": self.batches,
            "events": self.events,
            "accounts": self.accounts,
            "transfers": self.transfers,
            "checkpoints": self.checkpoints,
            "head": self.head,
            "supply": {k: str(v) for k, v in self.supply.items()},
            "problems": self.problems,
        }


def checkpoint_bytes(seq: int, head: str) -> bytes:
    """What a checkpoint signature covers."""
    return f"liquidfab-ledger-checkpoint:{seq}:{head}".encode()


def verify_checkpoint(signer: str, seq: int, head: str, signature: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        return VerifyKey.from_did(signer).verify(checkpoint_bytes(seq, head), raw)
    except (IdentityError, ValueError):
        return False


_ACCOUNTS = (
    "SELECT id, ledger, code, flags, debits_pending, debits_posted, credits_pending, "
    "credits_posted, timestamp FROM accounts ORDER BY timestamp"
)
_TRANSFERS = (
    "SELECT id, debit_account_id, credit_account_id, amount, ledger, code, flags, pending_id, "
    "timeout, message_source, message_id, timestamp FROM transfers ORDER BY timestamp"
)
_EXPIRED = "SELECT closed_ts, id FROM pending_transfers WHERE status = 'expired' ORDER BY closed_ts"


def _events(conn: Connection) -> Iterator[tuple[int, str, Any]]:
    accounts = ((r[8], "a", Account(*r)) for r in run(conn, _ACCOUNTS))
    transfers = ((r[11], "t", Transfer(*r)) for r in run(conn, _TRANSFERS))
    expiries = ((r[0], "x", r[1]) for r in run(conn, _EXPIRED))
    return heapq.merge(accounts, transfers, expiries, key=lambda e: e[0])


class _Replay:
    """Balances and pending states rebuilt from events alone."""

    def __init__(self) -> None:
        self.balances: dict[str, list[int]] = {}
        self.flags: dict[str, int] = {}
        self.pending: dict[str, tuple[Transfer, str, str | None]] = {}
        self.history: dict[tuple[str, int], tuple[int, int, int, int]] = {}

    def apply(self, kind: str, item: Any, ts: int) -> str | None:
        if kind == "a":
            self.balances[item.id] = [0, 0, 0, 0]
            self.flags[item.id] = item.flags
            return None
        if kind == "x":
            if item not in self.pending or self.pending[item][1] != "pending":
                return f"expiry of {item} has no pending transfer to release"
            p = self.pending[item][0]
            self._move(p, -p.amount, 0)
            self.pending[item] = (p, "expired", None)
            self._snapshot(p, ts)
            return None
        t: Transfer = item
        if t.debit_account_id not in self.balances or t.credit_account_id not in self.balances:
            return f"transfer {t.id} names an account that no event opened"
        if t.flags & (TransferFlags.POST_PENDING | TransferFlags.VOID_PENDING):
            state = self.pending.get(t.pending_id or "")
            if state is None or state[1] != "pending":
                return f"transfer {t.id} closes {t.pending_id}, which is not pending then"
            p = state[0]
            posted = t.amount if t.flags & TransferFlags.POST_PENDING else 0
            self._move(p, -p.amount, posted)
            status = "posted" if t.flags & TransferFlags.POST_PENDING else "voided"
            self.pending[p.id] = (p, status, t.id)
        elif t.flags & TransferFlags.PENDING:
            self._move(t, t.amount, 0)
            self.pending[t.id] = (t, "pending", None)
        else:
            self._move(t, 0, t.amount)
        self._snapshot(t, ts)
        return None

    def _move(self, t: Transfer, pending: int, posted: int) -> None:
        dr = self.balances[t.debit_account_id]
        cr = self.balances[t.credit_account_id]
        dr[0] += pending
        dr[1] += posted
        cr[2] += pending
        cr[3] += posted

    def _snapshot(self, t: Transfer, ts: int) -> None:
        for aid in (t.debit_account_id, t.credit_account_id):
            if self.flags[aid] & AccountFlags.HISTORY:
                self.history[(aid, ts)] = tuple(self.balances[aid])  # type: ignore[assignment]


def audit(conn: Connection, trusted: frozenset[str] | None = None) -> AuditReport:
    """Check the ledger on ``conn``; read only.

    ``trusted``: the dids whose checkpoints count (the node's); a checkpoint by any other
    key is a problem, since whoever can write the database can sign with a key of theirs.
    """
    report = AuditReport()
    problems = report.problems
    replay = _Replay()
    events = _events(conn)
    pending_event = next(events, None)
    prev = GENESIS
    for seq, first_ts, last_ts, count, stored_head in fetch(
        conn, "SELECT seq, first_ts, last_ts, events, head FROM ledger_chain ORDER BY seq"
    ):
        report.batches += 1
        if seq != report.batches:
            problems.append(f"chain row {seq}: expected sequence number {report.batches}")
        batch: list[list[Any]] = []
        while pending_event is not None and pending_event[0] <= last_ts:
            ts, kind, item = pending_event
            if ts < first_ts:
                problems.append(f"event at timestamp {ts} ({_name(kind, item)}) is in no batch")
            else:
                batch.append(_encode(kind, item, ts))
                trouble = replay.apply(kind, item, ts)
                if trouble:
                    problems.append(f"chain row {seq}: {trouble}")
            pending_event = next(events, None)
        report.events += len(batch)
        if len(batch) != count:
            problems.append(f"chain row {seq}: holds {count} events, {len(batch)} found")
        digest = chain_digest(prev, batch) if batch else prev
        if digest != stored_head:
            problems.append(
                f"chain row {seq}: head {stored_head[:16]}… does not match the events "
                f"(recomputed {digest[:16]}…)"
            )
        prev = digest
    while pending_event is not None:
        ts, kind, item = pending_event
        problems.append(f"event at timestamp {ts} ({_name(kind, item)}) is in no batch")
        pending_event = next(events, None)
    report.head = prev
    head = fetch(conn, "SELECT seq, head FROM ledger_head WHERE id = 1")
    if not head or tuple(head[0]) != (report.batches, prev):
        problems.append(f"ledger head {tuple(head[0]) if head else None} is not the chain's end")
    _compare_accounts(conn, replay, report)
    _compare_pending(conn, replay, problems)
    _compare_history(conn, replay, problems)
    _check_checkpoints(conn, report, trusted)
    return report


def _encode(kind: str, item: Any, ts: int) -> list[Any]:
    if kind == "a":
        return account_event(item)
    if kind == "t":
        return transfer_event(item)
    return expiry_event(item, ts)


def _name(kind: str, item: Any) -> str:
    return {"a": "account", "t": "transfer", "x": "expiry of"}[
        kind
    ] + f" {getattr(item, 'id', item)}"


def _compare_accounts(conn: Connection, replay: _Replay, report: AuditReport) -> None:
    problems = report.problems
    totals = [0, 0, 0, 0]
    for row in fetch(conn, _ACCOUNTS):
        a = Account(*row)
        report.accounts += 1
        stored = [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted]
        for i, v in enumerate(stored):
            totals[i] += v
        expected = replay.balances.get(a.id)
        if expected is None:
            continue  # reported as an unchained event already
        if stored != expected:
            names = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
            diff = ", ".join(
                f"{n} stored {s} recomputed {e}"
                for n, s, e in zip(names, stored, expected, strict=True)
                if s != e
            )
            problems.append(f"account {a.id}: {diff}")
        dp, dpo, cp, cpo = expected
        if a.flags & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS and dp + dpo > cpo:
            problems.append(f"account {a.id}: debits exceed credits against its flag")
        if a.flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS and cp + cpo > dpo:
            problems.append(f"account {a.id}: credits exceed debits against its flag")
        if a.code == "treasury":
            report.supply[a.ledger] = dpo - cpo
    if totals[0] != totals[2] or totals[1] != totals[3]:
        problems.append(
            f"debits and credits differ: pending {totals[0]} vs {totals[2]}, "
            f"posted {totals[1]} vs {totals[3]}"
        )
    report.transfers = int(fetch(conn, "SELECT COUNT(*) FROM transfers")[0][0])


def _compare_pending(conn: Connection, replay: _Replay, problems: list[str]) -> None:
    stored = {
        r[0]: (r[1], r[2])
        for r in fetch(conn, "SELECT id, status, closed_by FROM pending_transfers")
    }
    expected = {pid: (status, by) for pid, (_, status, by) in replay.pending.items()}
    for pid in sorted(stored.keys() | expected.keys()):
        if stored.get(pid) != expected.get(pid):
            problems.append(
                f"pending transfer {pid}: stored {stored.get(pid)} recomputed {expected.get(pid)}"
            )


def _compare_history(conn: Connection, replay: _Replay, problems: list[str]) -> None:
    stored = {
        (r[0], r[1]): tuple(r[2:])
        for r in fetch(
            conn,
            "SELECT account_id, timestamp, debits_pending, debits_posted, credits_pending, "
            "credits_posted FROM account_history",
        )
    }
    for key in sorted(stored.keys() | replay.history.keys()):
        if stored.get(key) != replay.history.get(key):
            problems.append(f"balance history of {key[0]} at {key[1]} differs from the events")
            return


def _check_checkpoints(
    conn: Connection, report: AuditReport, trusted: frozenset[str] | None
) -> None:
    heads = {r[0]: r[1] for r in fetch(conn, "SELECT seq, head FROM ledger_chain")}
    for seq, head, signer, signature in fetch(
        conn, "SELECT seq, head, signer, signature FROM ledger_checkpoints ORDER BY seq"
    ):
        report.checkpoints += 1
        if trusted is not None and signer not in trusted:
            report.problems.append(f"checkpoint {seq}: signed by {signer}, not a trusted key")
        elif not verify_checkpoint(signer, seq, head, signature):
            report.problems.append(f"checkpoint {seq}: the signature by {signer} does not verify")
        elif heads.get(seq) != head:
            report.problems.append(
                f"checkpoint {seq}: signed head {head[:16]}… is not chain row {seq}'s "
                f"({(heads.get(seq) or 'missing')[:16]}…)"
            )
