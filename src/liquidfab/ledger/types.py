"""Accounts, transfers and their result codes, in TigerBeetle's terms.

Amounts are Python ints in integer base units; every balance fits a signed 64-bit
column (both databases store it exactly), so a transfer that would push a balance
past ``AMOUNT_MAX`` is refused with an ``overflows_*`` code instead of wrapping.
Account ids are ``<owner did>/<name>``: whoever holds an account is visible in its
address, and anyone can compute where to pay a participant (``<did>/wallet``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum

__all__ = [
    "AMOUNT_MAX",
    "Account",
    "AccountCode",
    "AccountFlags",
    "AccountResult",
    "CreateResult",
    "Transfer",
    "TransferFlags",
    "TransferResult",
    "account_id_for",
    "format_amount",
    "is_account_id",
    "is_transfer_id",
]

AMOUNT_MAX = 2**63 - 1
_TRANSFER_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_ACCOUNT_ID = re.compile(r"^(did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,190})/([a-z0-9][a-z0-9._-]{0,63})$")
LEDGER_PATTERN = r"^[A-Z][A-Z0-9]{1,11}$"
_LEDGER = re.compile(LEDGER_PATTERN)
_CODE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def is_transfer_id(value: str) -> bool:
    """A lowercase UUIDv7: time-ordered, so the transfer log is written at its end."""
    return bool(_TRANSFER_ID.match(value))


def format_amount(value: int, decimals: int) -> str:
    """Base units as tokens, exactly (no floats): 1234500 with 6 decimals is 1.2345."""
    sign, digits = ("-" if value < 0 else ""), str(abs(value)).rjust(decimals + 1, "0")
    whole, frac = digits[: len(digits) - decimals], digits[len(digits) - decimals :]
    whole = f"{int(whole):,}"
    frac = frac.rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def is_account_id(value: str) -> bool:
    return bool(_ACCOUNT_ID.match(value))


def account_id_for(owner: str, name: str = "wallet") -> str:
    """The id of ``owner``'s account called ``name``."""
    return f"{owner}/{name}"


def owner_of(account_id: str) -> str:
    return account_id.rsplit("/", 1)[0]


def valid_ledger(name: str) -> bool:
    return bool(_LEDGER.match(name))


def valid_code(code: str) -> bool:
    return bool(_CODE.match(code))


class AccountCode(StrEnum):
    """What an account is for; the treasury of a ledger issues its tokens."""

    WALLET = "wallet"
    REVENUE = "revenue"
    ESCROW = "escrow"
    FEES = "fees"
    TREASURY = "treasury"


class AccountFlags(IntFlag):
    """Account behaviour, as TigerBeetle's flags: overdraft rules and history."""

    NONE = 0
    LINKED = 1
    DEBITS_MUST_NOT_EXCEED_CREDITS = 2
    CREDITS_MUST_NOT_EXCEED_DEBITS = 4
    HISTORY = 8


class TransferFlags(IntFlag):
    """Transfer behaviour: linked chains, two-phase (pending, post, void), balancing."""

    NONE = 0
    LINKED = 1
    PENDING = 2
    POST_PENDING = 4
    VOID_PENDING = 8


@dataclass(slots=True)
class Account:
    """An account as asked for (balances zero) or as stored."""

    id: str
    ledger: str
    code: str
    flags: int = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    timestamp: int = 0

    @property
    def owner(self) -> str:
        return owner_of(self.id)

    @property
    def balance(self) -> int:
        """Posted credits minus posted debits: what a wallet holds."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What a debit may still take: the balance less pending debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "owner": self.owner,
            "ledger": self.ledger,
            "code": self.code,
            "flags": [f.name.lower() for f in AccountFlags if f and self.flags & f],
            "debits_pending": self.debits_pending,
            "debits_posted": self.debits_posted,
            "credits_pending": self.credits_pending,
            "credits_posted": self.credits_posted,
            "balance": self.balance,
            "timestamp": self.timestamp,
        }


@dataclass(slots=True)
class Transfer:
    """A transfer as asked for; ``timestamp`` is set by the ledger when it applies.

    ``amount`` None on a post or void means the pending transfer's whole amount.
    ``message_source`` and ``message_id`` name the signed message that carried it.
    """

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int | None
    ledger: str
    code: str
    flags: int = 0
    pending_id: str | None = None
    timeout: int = 0  # seconds, for pending transfers; 0 never expires
    message_source: str | None = None
    message_id: str | None = None
    timestamp: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "debit_account_id": self.debit_account_id,
            "credit_account_id": self.credit_account_id,
            "amount": self.amount,
            "ledger": self.ledger,
            "code": self.code,
            "flags": [f.name.lower() for f in TransferFlags if f and self.flags & f],
            "pending_id": self.pending_id,
            "timeout": self.timeout,
            "message_source": self.message_source,
            "message_id": self.message_id,
            "timestamp": self.timestamp,
        }


class AccountResult(StrEnum):
    """The outcome of creating one account; stable codes, listed in docs/ledger.md."""

    OK = "ok"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    ID_MALFORMED = "id_malformed"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    RESERVED_FLAG = "reserved_flag"
    CODE_INVALID = "code_invalid"
    LEDGER_NOT_FOUND = "ledger_not_found"
    TREASURY_RESERVED = "treasury_reserved"
    EXISTS_WITH_DIFFERENT_FLAGS = "exists_with_different_flags"
    EXISTS_WITH_DIFFERENT_LEDGER = "exists_with_different_ledger"
    EXISTS_WITH_DIFFERENT_CODE = "exists_with_different_code"
    EXISTS = "exists"


class TransferResult(StrEnum):
    """The outcome of creating one transfer; stable codes, listed in docs/ledger.md."""

    OK = "ok"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    ID_MALFORMED = "id_malformed"
    RESERVED_FLAG = "reserved_flag"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    PENDING_ID_MUST_BE_NONE = "pending_id_must_be_none"
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    AMOUNT_REQUIRED = "amount_required"
    AMOUNT_INVALID = "amount_invalid"
    CODE_INVALID = "code_invalid"
    EXISTS_WITH_DIFFERENT_FLAGS = "exists_with_different_flags"
    EXISTS_WITH_DIFFERENT_PENDING_ID = "exists_with_different_pending_id"
    EXISTS_WITH_DIFFERENT_TIMEOUT = "exists_with_different_timeout"
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = "exists_with_different_debit_account_id"
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = "exists_with_different_credit_account_id"
    EXISTS_WITH_DIFFERENT_AMOUNT = "exists_with_different_amount"
    EXISTS_WITH_DIFFERENT_USER_DATA = "exists_with_different_user_data"
    EXISTS_WITH_DIFFERENT_LEDGER = "exists_with_different_ledger"
    EXISTS_WITH_DIFFERENT_CODE = "exists_with_different_code"
    EXISTS = "exists"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = "accounts_must_have_the_same_ledger"
    LEDGER_MUST_MATCH = "ledger_must_match"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = (
        "pending_transfer_has_different_debit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = (
        "pending_transfer_has_different_credit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = "pending_transfer_has_different_ledger"
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = "pending_transfer_has_different_code"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    OVERFLOWS_DEBITS_PENDING = "overflows_debits_pending"
    OVERFLOWS_CREDITS_PENDING = "overflows_credits_pending"
    OVERFLOWS_DEBITS_POSTED = "overflows_debits_posted"
    OVERFLOWS_CREDITS_POSTED = "overflows_credits_posted"
    OVERFLOWS_DEBITS = "overflows_debits"
    OVERFLOWS_CREDITS = "overflows_credits"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"


# Results that depend on the ledger's state at the time, not on the transfer alone.
# The first such failure is kept with the id, so a retry gets the same answer instead
# of succeeding later: an id either applied at its first try or never does.
TRANSIENT = frozenset(
    {
        TransferResult.DEBIT_ACCOUNT_NOT_FOUND,
        TransferResult.CREDIT_ACCOUNT_NOT_FOUND,
        TransferResult.PENDING_TRANSFER_NOT_FOUND,
        TransferResult.PENDING_TRANSFER_EXPIRED,
        TransferResult.EXCEEDS_CREDITS,
        TransferResult.EXCEEDS_DEBITS,
        TransferResult.OVERFLOWS_DEBITS_PENDING,
        TransferResult.OVERFLOWS_CREDITS_PENDING,
        TransferResult.OVERFLOWS_DEBITS_POSTED,
        TransferResult.OVERFLOWS_CREDITS_POSTED,
        TransferResult.OVERFLOWS_DEBITS,
        TransferResult.OVERFLOWS_CREDITS,
    }
)


@dataclass(frozen=True, slots=True)
class CreateResult:
    """One item's result: its place in the batch, its id, the code and when it applied."""

    index: int
    id: str
    result: str
    timestamp: int = 0

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "id": self.id,
            "result": self.result,
            "timestamp": self.timestamp,
        }


@dataclass
class LedgerInfo:
    """A ledger (a token): its name, decimals and the treasury that issues it."""

    name: str
    decimals: int
    treasury: str
    timestamp: int = 0
    extra: dict[str, object] = field(default_factory=dict)
