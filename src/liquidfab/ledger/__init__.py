"""The ledger: double-entry accounts and transfers, two-phase, linked, hash-chained.

Modelled on TigerBeetle: batches of accounts and transfers with one result code per
item, client-chosen ids that make retries safe, pending transfers that are posted,
voided or expire, and balance flags that forbid overdrafts. Each committed batch
extends a SHA-256 chain that ``audit`` recomputes with every balance.
"""

from liquidfab.ledger import reads
from liquidfab.ledger.audit import AuditReport, audit
from liquidfab.ledger.service import Ledger, define_ledger, treasury_id
from liquidfab.ledger.store import apply_accounts, apply_transfers
from liquidfab.ledger.types import (
    AMOUNT_MAX,
    Account,
    AccountCode,
    AccountFlags,
    AccountResult,
    CreateResult,
    LedgerInfo,
    Transfer,
    TransferFlags,
    TransferResult,
    account_id_for,
    format_amount,
)

__all__ = [
    "AMOUNT_MAX",
    "Account",
    "AccountCode",
    "AccountFlags",
    "AccountResult",
    "AuditReport",
    "CreateResult",
    "Ledger",
    "LedgerInfo",
    "Transfer",
    "TransferFlags",
    "TransferResult",
    "account_id_for",
    "apply_accounts",
    "apply_transfers",
    "audit",
    "define_ledger",
    "format_amount",
    "reads",
    "treasury_id",
]
