"""Random batches against the real ledger and the reference model, on SQLite and PostgreSQL.

A Hypothesis state machine opens accounts and sends batches of transfers (linked chains,
pending transfers posted in full or in part, voided or left to expire, retries of used
ids with the same or other fields, overdrafts, unknown accounts, malformed ids) to a
``Ledger`` on a fresh database and to ``reference_model.Model``. After every step each
result code must be the model's, debits must equal credits, no flagged account may be
overdrawn and every stored balance must be the model's; at the end the audit must pass.

LIQUIDFAB_STATEFUL_EXAMPLES and LIQUIDFAB_STATEFUL_STEPS run it longer.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from reference_model import Model

from liquidfab.db import Database
from liquidfab.ledger import (
    AMOUNT_MAX,
    Account,
    AccountFlags,
    Ledger,
    Transfer,
    TransferFlags,
    account_id_for,
    treasury_id,
)
from liquidfab.ledger.store import fetch

SETTINGS = settings(
    max_examples=int(os.environ.get("LIQUIDFAB_STATEFUL_EXAMPLES", "15")),
    stateful_step_count=int(os.environ.get("LIQUIDFAB_STATEFUL_STEPS", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

START_S = 1_700_000_000  # whole seconds keep clock() * 1e9 exact
NODE = "did:example:node"
OWNERS = ("did:example:alice", "did:example:bob", "did:example:carol")
NAMES = ("wallet", "escrow", "fees")
POOL = [account_id_for(owner, name) for owner in OWNERS for name in NAMES]
TREASURY = {name: treasury_id(NODE, name) for name in ("LQD", "ABC")}
UNKNOWN = "did:example:nobody/wallet"  # well formed, never opened
BAD_ACCOUNT_IDS = ["no-account", "did:example:alice/Wallet", "did:example:alice"]

L = int(TransferFlags.LINKED)
PENDING = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING)
VOID = int(TransferFlags.VOID_PENDING)
DMNEC = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
CMNED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
HISTORY = int(AccountFlags.HISTORY)
RESERVED = 16

# -- strategies -------------------------------------------------------------------------

small_amounts = st.integers(0, 300)
huge_amounts = st.sampled_from([AMOUNT_MAX, AMOUNT_MAX - 1, AMOUNT_MAX // 2 + 1, 2**62])
amounts = st.one_of(small_amounts, small_amounts, small_amounts, huge_amounts)
linked = st.sampled_from([0, 0, 0, L])
timeouts = st.sampled_from([0, 0, 1, 2, 5])
user_data = st.sampled_from(
    [(None, None), (None, None), (None, None), ("did:example:alice", "m-1"), (NODE, "m-2")]
)
codes = st.sampled_from(["pay", "pay", "pay", "fee"])

account_flags = st.sampled_from(
    [DMNEC, DMNEC, DMNEC, DMNEC | HISTORY, CMNED, 0, HISTORY, DMNEC | CMNED, RESERVED | DMNEC]
)
account_flags_valid = st.sampled_from([DMNEC] * 5 + [DMNEC | HISTORY, CMNED, 0, HISTORY])


@st.composite
def accounts(draw) -> Account:
    """An account to open: mostly of the pool, sometimes wrong in one way or another."""
    return Account(
        draw(st.sampled_from(POOL * 4 + BAD_ACCOUNT_IDS + list(TREASURY.values()) + [UNKNOWN])),
        draw(st.sampled_from(["LQD"] * 6 + ["ABC"] * 2 + ["NOPE"])),
        draw(st.sampled_from(["wallet"] * 3 + ["escrow", "revenue", "fees", "treasury", "Bad"])),
        draw(account_flags) | draw(linked),
    )


def transfer_id(n: int) -> str:
    return f"01900000-0000-7000-8000-{n:012x}"


# -- the machine ------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    fresh_url = staticmethod(lambda: "")  # set per database by the test

    def __init__(self) -> None:
        super().__init__()
        self.now_s = START_S
        self.database = Database.open(self.fresh_url())
        self.ledger = Ledger(self.database, clock=lambda: float(self.now_s))
        self.model = Model()
        for name in TREASURY:
            info = self.ledger.define_ledger(name, 6, NODE)
            assert info.treasury == TREASURY[name]
            self.model.define_ledger(name, info.treasury)
        self.ids = itertools.count(1)
        self.sent: list[Transfer] = []  # every transfer sent, to retry
        self.pendings: list[Transfer] = []  # every transfer sent flagged pending
        self.applied: dict[str, Transfer] = {}  # what was sent for each id that applied
        self.last_batch: list[Transfer] = []
        self.last_ts = 0

    @property
    def now_ns(self) -> int:
        return self.now_s * 1_000_000_000

    # -- steps --------------------------------------------------------------------------

    @initialize(
        flags=st.lists(account_flags_valid, min_size=len(POOL), max_size=len(POOL)),
        ledgers=st.lists(
            st.sampled_from(["LQD"] * 4 + ["ABC"]), min_size=len(POOL), max_size=len(POOL)
        ),
        funds=st.lists(st.integers(0, 2000), min_size=len(POOL), max_size=len(POOL)),
    )
    def open_and_fund_accounts(self, flags: list[int], ledgers: list[str], funds: list[int]):
        """Every account of the pool, and a first transfer to each from its treasury."""
        self._send_accounts(
            [
                Account(aid, led, "wallet", f)
                for aid, led, f in zip(POOL, ledgers, flags, strict=True)
            ]
        )
        self._send_transfers(
            [
                Transfer(self._new_id(), TREASURY[led], aid, amount, led, "mint")
                for aid, led, amount in zip(POOL, ledgers, funds, strict=True)
            ]
        )

    @rule(batch=st.lists(accounts(), min_size=1, max_size=4))
    def create_accounts(self, batch: list[Account]) -> None:
        self._send_accounts(batch)

    @rule(data=st.data())
    def create_transfers(self, data: st.DataObject) -> None:
        self._send_transfers(self._draw_batch(data, linked))

    @rule(data=st.data())
    def create_linked_transfers(self, data: st.DataObject) -> None:
        self._send_transfers(self._draw_batch(data, st.sampled_from([0, L, L])))

    @rule()
    def retry_last_batch(self) -> None:
        self._send_transfers(self.last_batch)

    @rule(seconds=st.sampled_from([0, 1, 1, 2, 3, 6]))
    def advance_clock(self, seconds: int) -> None:
        self.now_s += seconds

    # -- drawing transfers --------------------------------------------------------------

    def _new_id(self) -> str:
        return transfer_id(next(self.ids))

    def _draw_batch(self, data: st.DataObject, linked: st.SearchStrategy[int]) -> list[Transfer]:
        batch = []
        for _ in range(data.draw(st.integers(1, 8), label="batch size")):
            t = self._draw_transfer(data, linked)
            batch.append(t)
            self.sent.append(t)
            if t.flags & PENDING:
                self.pendings.append(t)
        return batch

    def _account(self, data: st.DataObject, label: str) -> str:
        known = st.sampled_from(sorted(self.model.accounts))
        return data.draw(
            st.one_of(known, known, known, known, st.sampled_from([*POOL, UNKNOWN])), label=label
        )

    def _ledger_of(self, account_id: str) -> str:
        a = self.model.accounts.get(account_id)
        return a.ledger if a else "LQD"

    def _pick(self, data: st.DataObject, preferred: list[Transfer], others: list[Transfer], label):
        """One of ``preferred`` mostly, else one of ``others``."""
        choices = [st.sampled_from(x) for x in (preferred, preferred, preferred, others) if x]
        return data.draw(st.one_of(choices), label=label)

    def _draw_transfer(self, data: st.DataObject, linked: st.SearchStrategy[int]) -> Transfer:
        kinds = ["plain"] * 5 + ["pending"] * 3 + ["odd"] * 3
        if self.sent:
            kinds += ["retry"] * 3
        if self.pendings:
            kinds += ["post"] * 3 + ["void"] * 2
        kind = data.draw(st.sampled_from(kinds), label="kind")
        if kind == "retry":
            return self._draw_retry(data)
        if kind in ("post", "void"):
            t = self._draw_close(data, POST if kind == "post" else VOID)
            t.flags |= data.draw(linked, label="linked")
            return t
        if data.draw(st.sampled_from([True, False, False]), label="from a treasury"):
            credit = self._account(data, "credit")
            ledger = self._ledger_of(credit)
            if data.draw(st.sampled_from([True] * 9 + [False]), label="same ledger"):
                debit = TREASURY[ledger]
            else:
                debit = TREASURY["ABC" if ledger == "LQD" else "LQD"]
        else:
            debit = self._account(data, "debit")
            credit = self._account(data, "credit")
        source, message = data.draw(user_data, label="user data")
        t = Transfer(
            self._new_id(),
            debit,
            credit,
            data.draw(amounts, label="amount"),
            self._ledger_of(debit),
            data.draw(codes, label="code"),
            data.draw(linked, label="linked"),
            message_source=source,
            message_id=message,
        )
        if kind == "pending":
            t.flags |= PENDING
            t.timeout = data.draw(timeouts, label="timeout")
        if kind == "odd":
            t = self._spoil(data, t)
        return t

    def _draw_close(self, data: st.DataObject, flag: int) -> Transfer:
        applied = [self.applied[pid] for pid in self.model.status]
        p = self._pick(data, applied, self.pendings, "pending")
        amount = p.amount if isinstance(p.amount, int) and 0 <= p.amount <= AMOUNT_MAX else 0
        if flag == POST:
            choices = st.one_of(
                st.none(), st.just(amount), st.integers(0, amount), st.just(amount + 1)
            )
        else:
            choices = st.sampled_from([None, None, amount, max(amount - 1, 0), amount + 1])
        same_or = lambda value, other: st.sampled_from([value] + [""] * 4 + [other])  # noqa: E731
        return Transfer(
            self._new_id(),
            data.draw(same_or(p.debit_account_id, POOL[0]), label="debit"),
            data.draw(same_or(p.credit_account_id, POOL[1]), label="credit"),
            data.draw(choices, label="amount"),
            data.draw(same_or(p.ledger, "ABC"), label="ledger"),
            data.draw(same_or(p.code, "fee"), label="code"),
            flag,
            pending_id=p.id,
        )

    def _draw_retry(self, data: st.DataObject) -> Transfer:
        t = replace(self._pick(data, list(self.applied.values()), self.sent, "retry of"))
        change = data.draw(
            st.sampled_from(
                ["none"] * 6
                + ["flags", "pending_id", "timeout", "debit", "credit", "amount"]
                + ["user_data", "ledger", "code"]
            ),
            label="changing",
        )
        if change == "flags":
            t.flags ^= data.draw(st.sampled_from([L, PENDING]), label="flag")
        elif change == "pending_id":
            other = transfer_id(10**6)
            t.pending_id = None if t.pending_id == other else other
        elif change == "timeout":
            t.timeout += 1
        elif change == "debit":
            t.debit_account_id = "" if t.debit_account_id == POOL[2] else POOL[2]
        elif change == "credit":
            t.credit_account_id = POOL[3] if t.credit_account_id != POOL[3] else POOL[4]
        elif change == "amount":
            t.amount = None if t.amount == 7 else 7
        elif change == "user_data":
            t.message_source, t.message_id = NODE, "m-other"
        elif change == "ledger":
            t.ledger = "ABC" if t.ledger != "ABC" else "LQD"
        elif change == "code":
            t.code = "other"
        return t

    def _spoil(self, data: st.DataObject, t: Transfer) -> Transfer:
        """One thing wrong with an otherwise plain transfer."""
        what = data.draw(
            st.sampled_from(
                [
                    "reserved_flag",
                    "pending_and_post",
                    "post_and_void",
                    "id_uppercase",
                    "id_v4",
                    "id_garbage",
                    "pending_id_on_plain",
                    "same_accounts",
                    "no_amount",
                    "negative_amount",
                    "amount_too_big",
                    "timeout_not_pending",
                    "bad_code",
                    "unknown_debit",
                    "unknown_credit",
                    "malformed_account",
                    "other_ledger",
                    "cross_ledger",
                    "close_without_pending_id",
                    "close_itself",
                    "close_with_timeout",
                    "close_a_posted_transfer",
                    "close_unknown",
                ]
            ),
            label="spoiled by",
        )
        if what == "reserved_flag":
            t.flags |= RESERVED
        elif what == "pending_and_post":
            t.flags |= PENDING | POST
            t.pending_id = transfer_id(10**6)
        elif what == "post_and_void":
            t.flags |= POST | VOID
            t.pending_id = transfer_id(10**6)
        elif what == "id_uppercase":
            t.id = t.id[:-1] + "A"
        elif what == "id_v4":
            t.id = t.id[:14] + "4" + t.id[15:]
        elif what == "id_garbage":
            t.id = "not-a-uuid"
        elif what == "pending_id_on_plain":
            t.pending_id = transfer_id(10**6)
        elif what == "same_accounts":
            t.credit_account_id = t.debit_account_id
        elif what == "no_amount":
            t.amount = None
        elif what == "negative_amount":
            t.amount = -1
        elif what == "amount_too_big":
            t.amount = AMOUNT_MAX + 1
        elif what == "timeout_not_pending":
            t.timeout = 3
        elif what == "bad_code":
            t.code = "Not A Code"
        elif what == "unknown_debit":
            t.debit_account_id = UNKNOWN
        elif what == "unknown_credit":
            t.credit_account_id = UNKNOWN
        elif what == "malformed_account":
            t.credit_account_id = data.draw(st.sampled_from(BAD_ACCOUNT_IDS), label="account")
        elif what == "other_ledger":
            t.ledger = data.draw(st.sampled_from(["ABC", "LQD", "NOPE"]), label="ledger")
        elif what == "cross_ledger":
            t.debit_account_id, t.credit_account_id = TREASURY["ABC"], t.credit_account_id
            t.ledger = "ABC"
        elif what.startswith("close"):
            t.flags |= data.draw(st.sampled_from([POST, VOID]), label="close flag")
            t.debit_account_id = t.credit_account_id = t.ledger = t.code = ""
            t.amount = None
            if what == "close_itself":
                t.pending_id = t.id
            elif what == "close_with_timeout":
                t.pending_id = self.pendings[0].id if self.pendings else transfer_id(10**6)
                t.timeout = 1
            elif what == "close_a_posted_transfer":
                plain = [s.id for s in self.applied.values() if not s.flags & PENDING]
                t.pending_id = data.draw(st.sampled_from(plain), label="posted transfer")
            elif what == "close_unknown":
                t.pending_id = transfer_id(10**6 + 1)
        return t

    # -- sending and checking -----------------------------------------------------------

    def _send_accounts(self, batch: list[Account]) -> None:
        got = self.ledger.create_accounts([replace(a) for a in batch])
        want = self.model.create_accounts(batch)
        self._compare(batch, got, want)

    def _send_transfers(self, batch: list[Transfer]) -> None:
        self.last_batch = batch
        got = self.ledger.create_transfers([replace(t) for t in batch])
        want = self.model.create_transfers(batch, self.now_ns)
        self._compare(batch, got, want)
        for t, r in zip(batch, got, strict=True):
            if r.result == "ok":
                self.applied[t.id] = t

    def _compare(self, batch: list, got: list, want: list[str]) -> None:
        codes = [r.result for r in got]
        if codes != [str(w) for w in want]:
            lines = [
                f"  [{i}] {item!r}\n      ledger: {r.result}   model: {w}"
                + ("   <-- differs" if r.result != w else "")
                for i, (item, r, w) in enumerate(zip(batch, got, want, strict=True))
            ]
            raise AssertionError("result codes differ from the model:\n" + "\n".join(lines))
        for i, (item, r) in enumerate(zip(batch, got, strict=True)):
            assert r.index == i
            assert r.id == item.id
            if r.result == "ok":
                assert r.timestamp > self.last_ts, "timestamps of applied events must increase"
                self.last_ts = r.timestamp
            else:
                assert r.timestamp == 0

    @invariant()
    def balances_match_the_model(self) -> None:
        rows = self.database.read(
            lambda c: fetch(
                c,
                "SELECT id, ledger, code, flags, debits_pending, debits_posted, "
                "credits_pending, credits_posted FROM accounts",
            )
        )
        stored = {r[0]: tuple(r[1:]) for r in rows}
        expected = {
            a.id: (
                a.ledger,
                a.code,
                a.flags,
                a.debits_pending,
                a.debits_posted,
                a.credits_pending,
                a.credits_posted,
            )
            for a in self.model.accounts.values()
        }
        assert stored == expected
        totals = [sum(v[i] for v in stored.values()) for i in range(3, 7)]
        dp, dpo, cp, cpo = totals
        assert dp == cp, f"pending debits {dp} != pending credits {cp}"
        assert dpo == cpo, f"posted debits {dpo} != posted credits {cpo}"
        for aid, (_, _, flags, dp, dpo, cp, cpo) in stored.items():
            if flags & DMNEC:
                assert dp + dpo <= cpo, f"{aid} is overdrawn"
            if flags & CMNED:
                assert cp + cpo <= dpo, f"{aid} has more credits than debits"
        # Every account here is one the ledger can look up, with the same balances.
        found = self.ledger.lookup_accounts(sorted(stored))
        assert {a.id: a.credits_posted - a.debits_posted for a in found} == {
            k: v[6] - v[4] for k, v in stored.items()
        }

    def teardown(self) -> None:
        try:
            self._check_transfers()
            report = self.ledger.verify()
            assert report.ok, report.problems
        finally:
            self.ledger.close()
            self.database.close()

    def _check_transfers(self) -> None:
        ids = sorted(self.model.transfers)
        stored = {t.id: t for t in self.ledger.lookup_transfers(ids)}
        assert set(stored) == set(ids)
        for tid, m in self.model.transfers.items():
            t = stored[tid]
            got = (
                t.debit_account_id,
                t.credit_account_id,
                t.amount,
                t.ledger,
                t.code,
                t.flags,
                t.pending_id,
                t.timeout,
                t.message_source,
                t.message_id,
            )
            want = (
                m.debit_account_id,
                m.credit_account_id,
                m.amount,
                m.ledger,
                m.code,
                m.flags,
                m.pending_id,
                m.timeout,
                m.message_source,
                m.message_id,
            )
            assert got == want, f"transfer {tid}: stored {got}, model {want}"
        pending = self.database.read(
            lambda c: fetch(c, "SELECT id, status, closed_by FROM pending_transfers")
        )
        assert {r[0]: (r[1], r[2]) for r in pending} == {
            pid: (status, self.model.closed_by[pid]) for pid, status in self.model.status.items()
        }


def test_ledger_matches_the_reference_model(database_url, request, tmp_path) -> None:
    if database_url.startswith("sqlite"):
        numbers = itertools.count()

        def fresh_url() -> str:
            return f"sqlite:///{tmp_path / f'example-{next(numbers)}.db'}"
    else:
        fresh_url = request.getfixturevalue("postgres").fresh

    name = "OnSqlite" if database_url.startswith("sqlite") else "OnPostgresql"
    machine = type(f"LedgerMachine{name}", (LedgerMachine,), {})
    machine.fresh_url = staticmethod(fresh_url)
    run_state_machine_as_test(machine, settings=SETTINGS)
