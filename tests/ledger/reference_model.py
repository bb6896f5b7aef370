"""A plain in-memory ledger with the engine's semantics, to check the engine against.

Written from the rules (TigerBeetle's, as docs/ledger.md states them), not from
``liquidfab.ledger.engine``: dicts of accounts and transfers, a linked chain applied to a
deep copy of the state that is kept only if the whole chain succeeds, and one function
per check in the documented order. Slow and obvious on purpose.

Amounts are ints; time is an int of nanoseconds, given with each transfer batch.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from liquidfab.ledger.types import (
    AMOUNT_MAX,
    Account,
    AccountFlags,
    AccountResult,
    Transfer,
    TransferFlags,
    TransferResult,
)

__all__ = ["Model", "ModelAccount", "ModelTransfer"]

R = TransferResult
A = AccountResult

LINKED = 1
PENDING = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING)
VOID = int(TransferFlags.VOID_PENDING)
KNOWN_FLAGS = 0b1111
NO_OVERDRAFT = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
NO_OVERCREDIT = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)

ACCOUNT_CODES = {"wallet", "revenue", "escrow", "fees", "treasury"}
TRANSFER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ACCOUNT_ID = re.compile(r"did:[a-z0-9]+:[A-Za-z0-9._:%-]+/[a-z0-9][a-z0-9._-]*")
TRANSFER_CODE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")

# Failures that depend on the state at the time; the first one is kept with the id.
REMEMBERED = {
    R.DEBIT_ACCOUNT_NOT_FOUND,
    R.CREDIT_ACCOUNT_NOT_FOUND,
    R.PENDING_TRANSFER_NOT_FOUND,
    R.PENDING_TRANSFER_EXPIRED,
    R.EXCEEDS_CREDITS,
    R.EXCEEDS_DEBITS,
    R.OVERFLOWS_DEBITS_PENDING,
    R.OVERFLOWS_CREDITS_PENDING,
    R.OVERFLOWS_DEBITS_POSTED,
    R.OVERFLOWS_CREDITS_POSTED,
    R.OVERFLOWS_DEBITS,
    R.OVERFLOWS_CREDITS,
}


@dataclass
class ModelAccount:
    id: str
    ledger: str
    code: str
    flags: int
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0


@dataclass(frozen=True)
class ModelTransfer:
    """A transfer as stored: a post or void holds the pending transfer's accounts."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    ledger: str
    code: str
    flags: int
    pending_id: str | None
    timeout: int
    message_source: str | None
    message_id: str | None


class Model:
    def __init__(self) -> None:
        self.ledgers: set[str] = set()
        self.accounts: dict[str, ModelAccount] = {}
        self.transfers: dict[str, ModelTransfer] = {}
        # pending transfer id -> "pending" | "posted" | "voided" | "expired"
        self.status: dict[str, str] = {}
        self.closed_by: dict[str, str | None] = {}
        self.expires_ns: dict[str, int | None] = {}
        self.failed: dict[str, str] = {}

    # -- ledgers ----------------------------------------------------------------------

    def define_ledger(self, name: str, treasury: str) -> None:
        self.ledgers.add(name)
        self.accounts[treasury] = ModelAccount(
            treasury, name, "treasury", int(AccountFlags.HISTORY)
        )

    # -- linked chains ----------------------------------------------------------------

    def _state(self) -> dict:
        return copy.deepcopy(
            {
                "accounts": self.accounts,
                "transfers": self.transfers,
                "status": self.status,
                "closed_by": self.closed_by,
                "expires_ns": self.expires_ns,
            }
        )

    def _restore(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _run(self, items: list, apply_one) -> list[str]:
        """Apply ``items`` chain by chain; a failed chain leaves the state as it was."""
        results: list[str] = []
        start = 0
        while start < len(items):
            end = start
            while end < len(items) and items[end].flags & LINKED:
                end += 1
            is_open = end == len(items)  # ran off the end while still linked
            if not is_open:
                end += 1  # the closing event belongs to the chain
            chain = items[start:end]

            saved = self._state()
            codes: list[str] = []
            for k, item in enumerate(chain):
                if is_open and k == len(chain) - 1:
                    code = "linked_event_chain_open"
                else:
                    code = apply_one(item)
                codes.append(code)
                if code != "ok":
                    break
            if codes[-1] == "ok":
                results += codes
            else:
                self._restore(saved)
                failing = chain[len(codes) - 1]
                if codes[-1] in REMEMBERED and failing.id not in self.failed:
                    self.failed[failing.id] = codes[-1]
                chain_codes = ["linked_event_failed"] * len(chain)
                chain_codes[len(codes) - 1] = codes[-1]
                results += chain_codes
            start = end
        return results

    # -- accounts ---------------------------------------------------------------------

    def create_accounts(self, batch: list[Account]) -> list[str]:
        return self._run(batch, self._create_account)

    def _create_account(self, a: Account) -> str:
        if a.flags & ~KNOWN_FLAGS:
            return A.RESERVED_FLAG
        if not ACCOUNT_ID.fullmatch(a.id):
            return A.ID_MALFORMED
        if a.flags & NO_OVERDRAFT and a.flags & NO_OVERCREDIT:
            return A.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if a.code not in ACCOUNT_CODES:
            return A.CODE_INVALID
        if a.code == "treasury":
            return A.TREASURY_RESERVED
        if a.ledger not in self.ledgers:
            return A.LEDGER_NOT_FOUND
        flags = a.flags & ~LINKED  # linked says how it was asked for, not what it is
        old = self.accounts.get(a.id)
        if old is not None:
            if old.flags != flags:
                return A.EXISTS_WITH_DIFFERENT_FLAGS
            if old.ledger != a.ledger:
                return A.EXISTS_WITH_DIFFERENT_LEDGER
            if old.code != a.code:
                return A.EXISTS_WITH_DIFFERENT_CODE
            return A.EXISTS
        self.accounts[a.id] = ModelAccount(a.id, a.ledger, a.code, flags)
        return A.OK

    # -- transfers --------------------------------------------------------------------

    def expire(self, now_ns: int) -> None:
        """Release every pending transfer whose time has come."""
        for pid, status in self.status.items():
            when = self.expires_ns[pid]
            if status == "pending" and when is not None and when <= now_ns:
                p = self.transfers[pid]
                self.accounts[p.debit_account_id].debits_pending -= p.amount
                self.accounts[p.credit_account_id].credits_pending -= p.amount
                self.status[pid] = "expired"

    def create_transfers(self, batch: list[Transfer], now_ns: int) -> list[str]:
        self.expire(now_ns)
        return self._run(batch, lambda t: self._create_transfer(t, now_ns))

    def _create_transfer(self, t: Transfer, now_ns: int) -> str:
        if t.flags & ~KNOWN_FLAGS:
            return R.RESERVED_FLAG
        if not TRANSFER_ID.fullmatch(t.id):
            return R.ID_MALFORMED
        if t.id in self.failed:
            return self.failed[t.id]
        if t.id in self.transfers:
            return self._compare_with_existing(t, self.transfers[t.id])

        is_post = bool(t.flags & POST)
        is_void = bool(t.flags & VOID)
        is_pending = bool(t.flags & PENDING)
        closes = is_post or is_void
        if (is_post and is_void) or (closes and is_pending):
            return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if closes:
            if not t.pending_id:
                return R.PENDING_ID_REQUIRED
            if t.pending_id == t.id:
                return R.PENDING_ID_MUST_BE_DIFFERENT
        else:
            if t.pending_id is not None:
                return R.PENDING_ID_MUST_BE_NONE
            if t.debit_account_id == t.credit_account_id:
                return R.ACCOUNTS_MUST_BE_DIFFERENT
            if t.amount is None:
                return R.AMOUNT_REQUIRED
        if t.timeout != 0 and not is_pending:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if t.amount is not None and not 0 <= t.amount <= AMOUNT_MAX:
            return R.AMOUNT_INVALID
        if (t.code != "" or not closes) and not TRANSFER_CODE.fullmatch(t.code):
            return R.CODE_INVALID
        if closes:
            return self._close_pending(t, is_post)
        return self._move(t, is_pending, now_ns)

    def _compare_with_existing(self, t: Transfer, e: ModelTransfer) -> str:
        closes = bool(t.flags & (POST | VOID))
        if t.flags != e.flags:
            return R.EXISTS_WITH_DIFFERENT_FLAGS
        if t.pending_id != e.pending_id:
            return R.EXISTS_WITH_DIFFERENT_PENDING_ID
        if t.timeout != e.timeout:
            return R.EXISTS_WITH_DIFFERENT_TIMEOUT
        # A post or void may leave these empty, meaning "the pending transfer's".
        if not (closes and t.debit_account_id == "") and t.debit_account_id != e.debit_account_id:
            return R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
        if not (closes and t.credit_account_id == "") and (
            t.credit_account_id != e.credit_account_id
        ):
            return R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
        if not (closes and t.amount is None) and t.amount != e.amount:
            return R.EXISTS_WITH_DIFFERENT_AMOUNT
        if t.message_source != e.message_source or t.message_id != e.message_id:
            return R.EXISTS_WITH_DIFFERENT_USER_DATA
        if not (closes and t.ledger == "") and t.ledger != e.ledger:
            return R.EXISTS_WITH_DIFFERENT_LEDGER
        if not (closes and t.code == "") and t.code != e.code:
            return R.EXISTS_WITH_DIFFERENT_CODE
        return R.EXISTS

    def _move(self, t: Transfer, is_pending: bool, now_ns: int) -> str:
        dr = self.accounts.get(t.debit_account_id)
        if dr is None:
            return R.DEBIT_ACCOUNT_NOT_FOUND
        cr = self.accounts.get(t.credit_account_id)
        if cr is None:
            return R.CREDIT_ACCOUNT_NOT_FOUND
        if dr.ledger != cr.ledger:
            return R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
        if t.ledger != dr.ledger:
            return R.LEDGER_MUST_MATCH
        amount = t.amount
        assert amount is not None
        if is_pending:
            if dr.debits_pending + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_PENDING
            if cr.credits_pending + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_PENDING
        else:
            if dr.debits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_POSTED
            if cr.credits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_POSTED
        if dr.debits_pending + dr.debits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_DEBITS
        if cr.credits_pending + cr.credits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_CREDITS
        over_credits = dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        if dr.flags & NO_OVERDRAFT and over_credits:
            return R.EXCEEDS_CREDITS
        over_debits = cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        if cr.flags & NO_OVERCREDIT and over_debits:
            return R.EXCEEDS_DEBITS

        if is_pending:
            dr.debits_pending += amount
            cr.credits_pending += amount
            self.status[t.id] = "pending"
            self.closed_by[t.id] = None
            self.expires_ns[t.id] = now_ns + t.timeout * 1_000_000_000 if t.timeout else None
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
        self.transfers[t.id] = ModelTransfer(
            t.id,
            t.debit_account_id,
            t.credit_account_id,
            amount,
            t.ledger,
            t.code,
            t.flags,
            None,
            t.timeout,
            t.message_source,
            t.message_id,
        )
        return R.OK

    def _close_pending(self, t: Transfer, is_post: bool) -> str:
        p = self.transfers.get(t.pending_id or "")
        if p is None:
            return R.PENDING_TRANSFER_NOT_FOUND
        if not p.flags & PENDING:
            return R.PENDING_TRANSFER_NOT_PENDING
        if t.debit_account_id != "" and t.debit_account_id != p.debit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if t.credit_account_id != "" and t.credit_account_id != p.credit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if t.ledger != "" and t.ledger != p.ledger:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
        if t.code != "" and t.code != p.code:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        amount = p.amount if t.amount is None else t.amount
        if is_post and amount > p.amount:
            return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if not is_post and amount != p.amount:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
        status = self.status[p.id]
        if status == "posted":
            return R.PENDING_TRANSFER_ALREADY_POSTED
        if status == "voided":
            return R.PENDING_TRANSFER_ALREADY_VOIDED
        if status == "expired":
            return R.PENDING_TRANSFER_EXPIRED
        assert status == "pending"

        dr = self.accounts[p.debit_account_id]
        cr = self.accounts[p.credit_account_id]
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if is_post:
            dr.debits_posted += amount
            cr.credits_posted += amount
        self.status[p.id] = "posted" if is_post else "voided"
        self.closed_by[p.id] = t.id
        self.transfers[t.id] = ModelTransfer(
            t.id,
            p.debit_account_id,
            p.credit_account_id,
            amount,
            p.ledger,
            p.code,
            t.flags,
            t.pending_id,
            t.timeout,
            t.message_source,
            t.message_id,
        )
        return R.OK
