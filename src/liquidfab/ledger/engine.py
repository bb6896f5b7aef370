"""The posting engine: a batch of accounts or transfers applied to what was loaded.

Pure Python over plain objects, no database: the store loads every row a batch can
touch, the engine decides each item's result and the new balances, the store writes
what changed. Linked chains are applied one event at a time with an undo log, so a
chain that fails leaves the working set exactly as it was before the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from liquidfab.ledger.types import (
    AMOUNT_MAX,
    TRANSIENT,
    Account,
    AccountCode,
    AccountFlags,
    AccountResult,
    Transfer,
    TransferFlags,
    TransferResult,
    is_account_id,
    is_transfer_id,
    valid_code,
)

__all__ = ["AccountBatch", "Pending", "TransferBatch", "WorkingSet"]

_T = TransferResult
_OK = _T.OK
# Flags as plain ints: an IntFlag operand sends every ``&`` through enum machinery, which
# cost more than the rest of a transfer's checks together (benchmarks/ledger_throughput.py).
_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING)
_VOID = int(TransferFlags.VOID_PENDING)
_CLOSING = _POST | _VOID
_DMNEC = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CMNED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_HISTORY = int(AccountFlags.HISTORY)
_ACCOUNT_CODES = frozenset(c.value for c in AccountCode)


@dataclass(slots=True)
class Pending:
    """The state of a pending transfer: pending, posted, voided or expired."""

    status: str
    expires_ns: int | None  # None: never expires
    closed_ts: int | None = None
    closed_by: str | None = None


@dataclass
class WorkingSet:
    """Every stored row a batch may read, loaded up front; None marks a known miss."""

    accounts: dict[str, Account | None] = field(default_factory=dict)
    transfers: dict[str, Transfer | None] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    ledgers: frozenset[str] = frozenset()


def _chains(flags: list[int], linked: int) -> list[tuple[int, int, bool]]:
    """(start, end, open) for each chain: a run of linked events and the one closing it."""
    out, start = [], 0
    for i, f in enumerate(flags):
        if not f & linked:
            out.append((start, i + 1, False))
            start = i + 1
    if start < len(flags):
        out.append((start, len(flags), True))
    return out


class TransferBatch:
    """Applies one create_transfers batch to a working set; what changed is kept."""

    def __init__(self, ws: WorkingSet, now_ns: int, first_ts: int) -> None:
        self.ws = ws
        self.now_ns = now_ns
        self.first_ts = first_ts
        self.created: list[Transfer] = []
        self.dirty: dict[str, Account] = {}
        self.new_pending: list[tuple[str, int | None]] = []
        self.closed: list[tuple[str, str, int, str]] = []  # (pending id, status, ts, by)
        self.history: list[tuple[str, int, int, int, int, int]] = []
        self.failed: list[tuple[str, str, int]] = []
        # Balances and pending states as they were before the current chain (None: no
        # undo needed, the chain is one transfer and a refused transfer changes nothing).
        self._saved: dict[str, tuple[int, int, int, int]] | None = None
        self._saved_pending: dict[str, Pending] | None = None

    def run(self, batch: list[Transfer]) -> list[str]:
        if not any(t.flags & _LINKED for t in batch):
            return self._run_unlinked(batch)
        results: list[str] = [_T.OK] * len(batch)
        for start, end, is_open in _chains([t.flags for t in batch], _LINKED):
            mark = self._mark()
            for i in range(start, end):
                t = batch[i]
                code = (
                    _T.LINKED_EVENT_CHAIN_OPEN
                    if is_open and i == end - 1
                    else self._apply(t, self.first_ts + i)
                )
                if code is not _T.OK:
                    self._undo(mark)
                    for k in range(start, end):
                        results[k] = _T.LINKED_EVENT_FAILED
                    results[i] = code
                    if code in TRANSIENT and t.id not in self.ws.failed:
                        self.failed.append((t.id, code.value, self.first_ts + i))
                        self.ws.failed[t.id] = code.value
                    break
        return [str(r) for r in results]

    def _run_unlinked(self, batch: list[Transfer]) -> list[str]:
        """``run`` for a batch without linked events: every chain is one transfer.

        ``_apply`` refuses a transfer before it changes anything, so a refusal needs no
        undo and no undo log is kept.
        """
        self._saved = self._saved_pending = None
        ok = _OK.value
        results: list[str] = [ok] * len(batch)
        apply, failed, first_ts = self._apply, self.ws.failed, self.first_ts
        for i, t in enumerate(batch):
            code = apply(t, first_ts + i)
            if code is not _OK:
                results[i] = code.value
                if code in TRANSIENT and t.id not in failed:
                    self.failed.append((t.id, code.value, first_ts + i))
                    failed[t.id] = code.value
        return results

    # undo log -----------------------------------------------------------------

    def _mark(self) -> tuple[int, int, int, int, dict[str, tuple[int, int, int, int]], dict]:
        self._saved = {}
        self._saved_pending = {}
        return (
            len(self.created),
            len(self.new_pending),
            len(self.closed),
            len(self.history),
            self._saved,
            self._saved_pending,
        )

    def _touch(self, a: Account) -> None:
        saved = self._saved
        if saved is not None and a.id not in saved:
            saved[a.id] = (
                a.debits_pending,
                a.debits_posted,
                a.credits_pending,
                a.credits_posted,
            )
        self.dirty[a.id] = a

    def _undo(self, mark: tuple) -> None:
        n_created, n_pending, n_closed, n_history, saved, saved_pending = mark
        for t in self.created[n_created:]:
            self.ws.transfers[t.id] = None
        del self.created[n_created:]
        for pid, _ in self.new_pending[n_pending:]:
            self.ws.pending.pop(pid, None)
        del self.new_pending[n_pending:]
        del self.closed[n_closed:]
        del self.history[n_history:]
        for pid, old in saved_pending.items():
            self.ws.pending[pid] = old
        for aid, (dp, dpo, cp, cpo) in saved.items():
            a = self.ws.accounts[aid]
            assert a is not None
            a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted = (
                dp,
                dpo,
                cp,
                cpo,
            )

    # one transfer ---------------------------------------------------------------

    def _apply(self, t: Transfer, ts: int) -> TransferResult:
        flags = t.flags
        if flags & ~0xF:
            return _T.RESERVED_FLAG
        if not isinstance(t.id, str) or not is_transfer_id(t.id):
            return _T.ID_MALFORMED
        failed = self.ws.failed.get(t.id)
        if failed is not None:
            return TransferResult(failed)
        existing = self.ws.transfers.get(t.id)
        if existing is not None:
            return _exists(t, existing)
        closing = flags & _CLOSING
        if closing == _CLOSING or (closing and flags & _PENDING):
            return _T.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if closing:
            if not t.pending_id:
                return _T.PENDING_ID_REQUIRED
            if t.pending_id == t.id:
                return _T.PENDING_ID_MUST_BE_DIFFERENT
        else:
            if t.pending_id is not None:
                return _T.PENDING_ID_MUST_BE_NONE
            if t.debit_account_id == t.credit_account_id:
                return _T.ACCOUNTS_MUST_BE_DIFFERENT
            if t.amount is None:
                return _T.AMOUNT_REQUIRED
        if t.timeout and not flags & _PENDING:
            return _T.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if t.timeout < 0 or (
            t.amount is not None and (type(t.amount) is not int or not 0 <= t.amount <= AMOUNT_MAX)
        ):
            return _T.AMOUNT_INVALID
        if (t.code or not closing) and not valid_code(t.code):
            return _T.CODE_INVALID
        if closing:
            return self._close(t, ts)
        return self._post(t, ts)

    def _post(self, t: Transfer, ts: int) -> TransferResult:
        dr = self.ws.accounts.get(t.debit_account_id)
        if dr is None:
            return _T.DEBIT_ACCOUNT_NOT_FOUND
        cr = self.ws.accounts.get(t.credit_account_id)
        if cr is None:
            return _T.CREDIT_ACCOUNT_NOT_FOUND
        if dr.ledger != cr.ledger:
            return _T.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
        if t.ledger != dr.ledger:
            return _T.LEDGER_MUST_MATCH
        amount = t.amount
        assert amount is not None
        pending = t.flags & _PENDING
        if pending:
            if dr.debits_pending + amount > AMOUNT_MAX:
                return _T.OVERFLOWS_DEBITS_PENDING
            if cr.credits_pending + amount > AMOUNT_MAX:
                return _T.OVERFLOWS_CREDITS_PENDING
        else:
            if dr.debits_posted + amount > AMOUNT_MAX:
                return _T.OVERFLOWS_DEBITS_POSTED
            if cr.credits_posted + amount > AMOUNT_MAX:
                return _T.OVERFLOWS_CREDITS_POSTED
        if dr.debits_pending + dr.debits_posted + amount > AMOUNT_MAX:
            return _T.OVERFLOWS_DEBITS
        if cr.credits_pending + cr.credits_posted + amount > AMOUNT_MAX:
            return _T.OVERFLOWS_CREDITS
        if dr.flags & _DMNEC and dr.debits_pending + dr.debits_posted + amount > dr.credits_posted:
            return _T.EXCEEDS_CREDITS
        if cr.flags & _CMNED and cr.credits_pending + cr.credits_posted + amount > cr.debits_posted:
            return _T.EXCEEDS_DEBITS
        self._touch(dr)
        self._touch(cr)
        if pending:
            dr.debits_pending += amount
            cr.credits_pending += amount
            expires = self.now_ns + t.timeout * 1_000_000_000 if t.timeout else None
            self.new_pending.append((t.id, expires))
            self.ws.pending[t.id] = Pending("pending", expires)
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
        self._record(t, ts, dr, cr)
        return _T.OK

    def _close(self, t: Transfer, ts: int) -> TransferResult:
        assert t.pending_id is not None
        p = self.ws.transfers.get(t.pending_id)
        if p is None:
            return _T.PENDING_TRANSFER_NOT_FOUND
        if not p.flags & _PENDING:
            return _T.PENDING_TRANSFER_NOT_PENDING
        if t.debit_account_id and t.debit_account_id != p.debit_account_id:
            return _T.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if t.credit_account_id and t.credit_account_id != p.credit_account_id:
            return _T.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if t.ledger and t.ledger != p.ledger:
            return _T.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
        if t.code and t.code != p.code:
            return _T.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        assert p.amount is not None
        post = t.flags & _POST
        amount = p.amount if t.amount is None else t.amount
        if post and amount > p.amount:
            return _T.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if not post and amount != p.amount:
            return _T.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
        state = self.ws.pending[p.id]
        if state.status == "posted":
            return _T.PENDING_TRANSFER_ALREADY_POSTED
        if state.status == "voided":
            return _T.PENDING_TRANSFER_ALREADY_VOIDED
        if state.status == "expired" or (
            state.expires_ns is not None and state.expires_ns <= self.now_ns
        ):
            return _T.PENDING_TRANSFER_EXPIRED
        dr = self.ws.accounts[p.debit_account_id]
        cr = self.ws.accounts[p.credit_account_id]
        assert dr is not None and cr is not None
        if post:
            if dr.debits_posted + amount > AMOUNT_MAX:
                return _T.OVERFLOWS_DEBITS_POSTED
            if cr.credits_posted + amount > AMOUNT_MAX:
                return _T.OVERFLOWS_CREDITS_POSTED
        self._touch(dr)
        self._touch(cr)
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if post:
            dr.debits_posted += amount
            cr.credits_posted += amount
        status = "posted" if post else "voided"
        if self._saved_pending is not None and p.id not in self._saved_pending:
            self._saved_pending[p.id] = state
        self.ws.pending[p.id] = Pending(status, state.expires_ns, ts, t.id)
        self.closed.append((p.id, status, ts, t.id))
        stored = Transfer(
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
        t.timestamp = ts  # the caller reads the result's timestamp off the transfer asked
        self._record(stored, ts, dr, cr)
        return _T.OK

    def _record(self, t: Transfer, ts: int, dr: Account, cr: Account) -> None:
        t.timestamp = ts
        self.created.append(t)
        self.ws.transfers[t.id] = t
        for a in (dr, cr):
            if a.flags & _HISTORY:
                self.history.append(
                    (
                        a.id,
                        ts,
                        a.debits_pending,
                        a.debits_posted,
                        a.credits_pending,
                        a.credits_posted,
                    )
                )


def _exists(t: Transfer, e: Transfer) -> TransferResult:
    """The answer to an id used before: ``exists`` only if every field asked is the same."""
    if t.flags != e.flags:
        return _T.EXISTS_WITH_DIFFERENT_FLAGS
    if t.pending_id != e.pending_id:
        return _T.EXISTS_WITH_DIFFERENT_PENDING_ID
    if t.timeout != e.timeout:
        return _T.EXISTS_WITH_DIFFERENT_TIMEOUT
    closing = t.flags & _CLOSING
    if (t.debit_account_id or not closing) and t.debit_account_id != e.debit_account_id:
        return _T.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    if (t.credit_account_id or not closing) and t.credit_account_id != e.credit_account_id:
        return _T.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    if (t.amount is not None or not closing) and t.amount != e.amount:
        return _T.EXISTS_WITH_DIFFERENT_AMOUNT
    if (t.message_source, t.message_id) != (e.message_source, e.message_id):
        return _T.EXISTS_WITH_DIFFERENT_USER_DATA
    if (t.ledger or not closing) and t.ledger != e.ledger:
        return _T.EXISTS_WITH_DIFFERENT_LEDGER
    if (t.code or not closing) and t.code != e.code:
        return _T.EXISTS_WITH_DIFFERENT_CODE
    return _T.EXISTS


class AccountBatch:
    """Applies one create_accounts batch; ``allow_treasury`` only when a ledger is defined."""

    def __init__(self, ws: WorkingSet, first_ts: int, *, allow_treasury: bool = False) -> None:
        self.ws = ws
        self.first_ts = first_ts
        self.allow_treasury = allow_treasury
        self.created: list[Account] = []

    def run(self, batch: list[Account]) -> list[str]:
        results: list[str] = [AccountResult.OK] * len(batch)
        for start, end, is_open in _chains([a.flags for a in batch], AccountFlags.LINKED):
            n_created = len(self.created)
            for i in range(start, end):
                code = (
                    AccountResult.LINKED_EVENT_CHAIN_OPEN
                    if is_open and i == end - 1
                    else self._apply(batch[i], self.first_ts + i)
                )
                if code is not AccountResult.OK:
                    for a in self.created[n_created:]:
                        self.ws.accounts[a.id] = None
                    del self.created[n_created:]
                    for k in range(start, end):
                        results[k] = AccountResult.LINKED_EVENT_FAILED
                    results[i] = code
                    break
        return [str(r) for r in results]

    def _apply(self, a: Account, ts: int) -> AccountResult:
        if a.flags & ~0xF:
            return AccountResult.RESERVED_FLAG
        if not isinstance(a.id, str) or not is_account_id(a.id):
            return AccountResult.ID_MALFORMED
        if a.flags & _DMNEC and a.flags & _CMNED:
            return AccountResult.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if a.code not in _ACCOUNT_CODES:
            return AccountResult.CODE_INVALID
        if a.code == AccountCode.TREASURY and not self.allow_treasury:
            return AccountResult.TREASURY_RESERVED
        if a.ledger not in self.ws.ledgers:
            return AccountResult.LEDGER_NOT_FOUND
        e = self.ws.accounts.get(a.id)
        if e is not None:
            stored_flags = e.flags & ~AccountFlags.LINKED
            if a.flags & ~AccountFlags.LINKED != stored_flags:
                return AccountResult.EXISTS_WITH_DIFFERENT_FLAGS
            if a.ledger != e.ledger:
                return AccountResult.EXISTS_WITH_DIFFERENT_LEDGER
            if a.code != e.code:
                return AccountResult.EXISTS_WITH_DIFFERENT_CODE
            return AccountResult.EXISTS
        new = Account(a.id, a.ledger, a.code, a.flags & ~AccountFlags.LINKED, timestamp=ts)
        self.created.append(new)
        self.ws.accounts[a.id] = new
        return AccountResult.OK
