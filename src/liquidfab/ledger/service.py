"""``Ledger``: the batch API over one database, with group commit and checkpoints.

Used on its own (tests, benchmarks, the CLI) and by the node, whose messages'
settlements call the same store functions inside the dispatcher's transaction.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from liquidfab.db import Database, GroupCommitter
from liquidfab.identity import SigningKey
from liquidfab.ledger import reads
from liquidfab.ledger.audit import AuditReport, audit, checkpoint_bytes
from liquidfab.ledger.store import apply_accounts, apply_transfers, fetch, run
from liquidfab.ledger.types import (
    Account,
    AccountCode,
    AccountFlags,
    CreateResult,
    LedgerInfo,
    Transfer,
    account_id_for,
    valid_ledger,
)

__all__ = ["Ledger", "define_ledger", "maybe_checkpoint", "treasury_id"]

T = TypeVar("T")


def treasury_id(owner: str, ledger: str) -> str:
    """The account a ledger's supply is issued from: one per ledger, owned by the node."""
    return account_id_for(owner, f"treasury-{ledger.lower()}")


def define_ledger(
    conn: Connection, name: str, decimals: int, treasury_owner: str, now_ns: int
) -> LedgerInfo:
    """Create ledger ``name`` and its treasury (which may go negative: it issues); idempotent."""
    if not valid_ledger(name):
        raise ValueError(f"ledger name {name!r} must be 2-12 capital letters or digits")
    if not 0 <= decimals <= 18:
        raise ValueError("decimals must be between 0 and 18")
    found = [info for info in reads.list_ledgers(conn) if info.name == name]
    if found:
        return found[0]
    treasury = treasury_id(treasury_owner, name)
    run(
        conn,
        "INSERT INTO ledgers (name, decimals, treasury, timestamp) VALUES (?, ?, ?, ?)",
        (name, decimals, treasury, now_ns),
    )
    account = Account(treasury, name, AccountCode.TREASURY, AccountFlags.HISTORY)
    (result,) = apply_accounts(conn, [account], now_ns, allow_treasury=True)
    if result.result not in ("ok", "exists"):
        raise ValueError(f"the treasury of {name} could not be opened: {result.result}")
    return LedgerInfo(name, decimals, treasury, now_ns)


def maybe_checkpoint(conn: Connection, signer: SigningKey | None, every: int, now_us: int) -> None:
    """Sign the chain head when it has moved ``every`` batches past the last checkpoint."""
    if signer is None:
        return
    head = reads.get_head(conn)
    last = fetch(conn, "SELECT MAX(seq) FROM ledger_checkpoints")[0][0] or 0
    if head.seq and head.seq - last >= every:
        sign_checkpoint(conn, signer, now_us)


def sign_checkpoint(conn: Connection, signer: SigningKey, now_us: int) -> dict[str, Any] | None:
    head = reads.get_head(conn)
    if head.seq == 0:
        return None
    done = reads.latest_checkpoint(conn)
    if done and done["seq"] == head.seq:
        return done
    signature = base64.urlsafe_b64encode(signer.sign(checkpoint_bytes(head.seq, head.head)))
    row = (head.seq, head.head, signer.did, signature.rstrip(b"=").decode(), now_us)
    run(
        conn,
        "INSERT INTO ledger_checkpoints (seq, head, signer, signature, created_us) "
        "VALUES (?, ?, ?, ?, ?)",
        row,
    )
    return dict(zip(("seq", "head", "signer", "signature", "created_us"), row, strict=True))


class Ledger:
    """Accounts and transfers on one database, in TigerBeetle's batch model."""

    def __init__(
        self,
        database: Database,
        *,
        signer: SigningKey | None = None,
        checkpoint_every: int = 1000,
        clock: Callable[[], float] = time.time,
        writer: GroupCommitter | None = None,
    ) -> None:
        self.database = database
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.clock = clock
        self._own_writer = writer is None
        self._writer = writer or GroupCommitter(database)

    def now_ns(self) -> int:
        return int(self.clock() * 1_000_000_000)

    def _write(self, fn: Callable[[Connection, int], T]) -> T:
        def job(conn: Connection) -> T:
            now_ns = self.now_ns()
            result = fn(conn, now_ns)
            maybe_checkpoint(conn, self.signer, self.checkpoint_every, now_ns // 1000)
            return result

        return self._writer.run(job)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self.database.read(fn)

    # writes -----------------------------------------------------------------------

    def define_ledger(self, name: str, decimals: int, treasury_owner: str) -> LedgerInfo:
        return self._write(lambda c, now: define_ledger(c, name, decimals, treasury_owner, now))

    def create_accounts(self, batch: list[Account]) -> list[CreateResult]:
        """One result per account; an account retried with the same fields gives ``exists``."""
        return self._write(lambda c, now: apply_accounts(c, list(batch), now))

    def create_transfers(self, batch: list[Transfer]) -> list[CreateResult]:
        """One result per transfer; an id applies at most once, whatever is retried."""
        return self._write(lambda c, now: apply_transfers(c, list(batch), now))

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign the current head now (nothing to sign on an empty chain)."""
        if self.signer is None:
            raise ValueError("this ledger has no signing key")
        signer = self.signer
        return self._writer.run(lambda c: sign_checkpoint(c, signer, int(self.clock() * 1e6)))

    # reads ------------------------------------------------------------------------

    def lookup_accounts(self, ids: list[str]) -> list[Account]:
        return self._read(lambda c: reads.lookup_accounts(c, ids))

    def lookup_transfers(self, ids: list[str]) -> list[Transfer]:
        return self._read(lambda c: reads.lookup_transfers(c, ids))

    def accounts_of(self, owner: str) -> list[Account]:
        return self._read(lambda c: reads.accounts_of(c, owner))

    def account_transfers(self, account_id: str, limit: int = 100) -> list[Transfer]:
        return self._read(lambda c: reads.account_transfers(c, account_id, limit))

    def account_history(self, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._read(lambda c: reads.account_history(c, account_id, limit))

    def transfers_by_message(self, source: str, msg_id: str) -> list[Transfer]:
        return self._read(lambda c: reads.transfers_by_message(c, source, msg_id))

    def ledgers(self) -> list[LedgerInfo]:
        return self._read(reads.list_ledgers)

    def supply(self, ledger: str) -> int | None:
        return self._read(lambda c: reads.supply(c, ledger))

    def verify(self) -> AuditReport:
        """Recompute the chain and every balance; ``report.problems`` names what differs."""
        trusted = frozenset({self.signer.did}) if self.signer else None
        return self._read(lambda c: audit(c, trusted))

    def close(self) -> None:
        if self._own_writer:
            self._writer.close()
