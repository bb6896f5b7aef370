"""Read-only ledger API: ledgers and supply, accounts, transfers, histories, the chain."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from liquidfab.errors import ProtocolError
from liquidfab.ledger import reads
from liquidfab.node.models import Problem
from liquidfab.node.params import Whole
from liquidfab.node.problems import PROBLEM_JSON

__all__ = ["router"]

router = APIRouter(tags=["ledger"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
_INVALID = {422: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
Limit = Annotated[int, Query(ge=1, le=500), Whole]
Before = Annotated[int | None, Query(ge=0, le=2**63 - 1), Whole]


class LedgerOut(BaseModel):
    name: str
    decimals: int
    treasury: str
    supply: str


class HeadOut(BaseModel):
    seq: int
    head: str
    last_ts: int


class LedgerSummary(BaseModel):
    ledgers: list[LedgerOut]
    head: HeadOut
    checkpoint: dict[str, Any] | None


class AccountOut(BaseModel):
    id: str
    owner: str
    ledger: str
    code: str
    flags: list[str]
    debits_pending: str
    debits_posted: str
    credits_pending: str
    credits_posted: str
    balance: str
    timestamp: int


class TransferOut(BaseModel):
    id: str
    debit_account_id: str
    credit_account_id: str
    amount: str
    ledger: str
    code: str
    flags: list[str]
    pending_id: str | None
    timeout: int
    message_source: str | None
    message_id: str | None
    timestamp: int


class BalanceOut(BaseModel):
    timestamp: int
    debits_pending: str
    debits_posted: str
    credits_pending: str
    credits_posted: str


class AuditOut(BaseModel):
    ok: bool
    batches: int
    events: int
    accounts: int
    transfers: int
    checkpoints: int
    head: str
    supply: dict[str, str]
    problems: list[str]


def _strings(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Amounts as decimal strings: JSON numbers lose integers above 2^53 in many parsers."""
    return {k: (str(v) if k in keys and v is not None else v) for k, v in d.items()}


_AMOUNTS = (
    "amount",
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
    "balance",
    "supply",
)


def _read(request: Request, fn: Any) -> Any:
    return request.app.state.node.database.read(fn)


@router.get("/v1/ledger", response_model=LedgerSummary, summary="Ledgers, supply, chain head")
def ledger_summary(request: Request) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any]:
        ledgers = [
            {
                "name": i.name,
                "decimals": i.decimals,
                "treasury": i.treasury,
                "supply": str(reads.supply(conn, i.name) or 0),
            }
            for i in reads.list_ledgers(conn)
        ]
        head = reads.get_head(conn)
        return {
            "ledgers": ledgers,
            "head": {"seq": head.seq, "head": head.head, "last_ts": head.last_ts},
            "checkpoint": reads.latest_checkpoint(conn),
        }

    return _read(request, load)


@router.get(
    "/v1/ledger/accounts",
    response_model=list[AccountOut],
    responses=_INVALID,
    summary="Accounts, by id; or one owner's accounts",
)
def list_accounts(
    request: Request,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[str | None, Query(max_length=300)] = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    if owner is not None:
        found = _read(request, lambda c: reads.accounts_of(c, owner))[:limit]
    else:
        found = _read(request, lambda c: reads.list_accounts(c, limit, after))
    return [_strings(a.to_dict(), _AMOUNTS) for a in found]


@router.get(
    "/v1/ledger/accounts/{id:path}",
    response_model=AccountOut,
    responses={**_NOT_FOUND, **_INVALID},
    summary="One account and its balances",
)
def get_account(id: str, request: Request) -> dict[str, Any]:
    found = _read(request, lambda c: reads.lookup_accounts(c, [id]))
    if not found:
        raise ProtocolError("not-found", f"no account {id!r} on this node.", 404)
    return _strings(found[0].to_dict(), _AMOUNTS)


@router.get(
    "/v1/ledger/transfers",
    response_model=list[TransferOut],
    responses=_INVALID,
    summary="Transfers of an account, or carried by a message, or the latest; newest first",
)
def list_transfers(
    request: Request,
    account: Annotated[str | None, Query(max_length=300)] = None,
    message_source: Annotated[str | None, Query(max_length=200)] = None,
    message_id: Annotated[str | None, Query(max_length=200)] = None,
    before: Before = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    if (message_source is None) != (message_id is None):
        raise ProtocolError("schema-invalid", "give message_source and message_id together.", 422)
    if message_source is not None and message_id is not None:
        found = _read(request, lambda c: reads.transfers_by_message(c, message_source, message_id))
    elif account is not None:
        found = _read(request, lambda c: reads.account_transfers(c, account, limit, before))
    else:
        found = _read(request, lambda c: reads.latest_transfers(c, limit))
    return [_strings(t.to_dict(), _AMOUNTS) for t in found[:limit]]


@router.get(
    "/v1/ledger/transfers/{id}",
    response_model=TransferOut,
    responses={**_NOT_FOUND, **_INVALID},
    summary="One transfer",
)
def get_transfer(id: Annotated[str, Path(max_length=36)], request: Request) -> dict[str, Any]:
    found = _read(request, lambda c: reads.lookup_transfers(c, [id]))
    if not found:
        raise ProtocolError("not-found", f"no transfer {id!r} on this node.", 404)
    return _strings(found[0].to_dict(), _AMOUNTS)


@router.get(
    "/v1/ledger/history",
    response_model=list[BalanceOut],
    responses=_INVALID,
    summary="An account's balances after each change, newest first (accounts with history)",
)
def account_history(
    request: Request,
    account: Annotated[str, Query(max_length=300)],
    before: Before = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    rows = _read(request, lambda c: reads.account_history(c, account, limit, before))
    return [_strings(r, _AMOUNTS) for r in rows]


@router.get("/v1/ledger/verify", response_model=AuditOut, summary="Audit the chain and balances")
def verify(request: Request) -> dict[str, Any]:
    return request.app.state.node.ledger.verify().to_dict()
