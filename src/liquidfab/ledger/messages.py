"""The ledger's message types: open-account, transfer, mandate and mint.

Transfers travel in the envelope's ``settlement`` attribute, so ``ledger.transfer``
is a message that is nothing but its settlement (and a memo); every other message
type may carry legs the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from liquidfab.errors import Refused
from liquidfab.ledger import mandates, reads
from liquidfab.ledger.settlement import apply_settlement, raise_for_results
from liquidfab.ledger.store import apply_accounts, apply_transfers, load_accounts
from liquidfab.ledger.types import (
    LEDGER_PATTERN,
    Account,
    AccountFlags,
    Transfer,
    owner_of,
)
from liquidfab.protocol.envelope import DID_PATTERN
from liquidfab.protocol.registry import Context, MessageType, Registry

__all__ = [
    "MANDATE",
    "MINT",
    "OPEN_ACCOUNT",
    "TRANSFER",
    "MandateGrant",
    "MandateRevoke",
    "Mint",
    "OpenAccount",
    "TransferNote",
    "add_ledger_types",
    "apply_settlement",
]

OPEN_ACCOUNT = "org.liquidfab.ledger.open-account"
TRANSFER = "org.liquidfab.ledger.transfer"
MANDATE = "org.liquidfab.ledger.mandate"
MINT = "org.liquidfab.ledger.mint"

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID7 = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
Amount = Annotated[
    str,
    Field(
        pattern=r"^(0|[1-9][0-9]{0,18})$",
        description="Integer base units as a decimal string (at most 2^63-1).",
    ),
]
AccountId = Annotated[
    str,
    Field(
        min_length=3,
        max_length=260,
        pattern=r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,190}/[a-z0-9][a-z0-9._-]{0,63}$",
        description="<owner did>/<name>",
    ),
]
_MAX = 2**63 - 1


class OpenAccount(BaseModel):
    """Payload of ledger.open-account: an account of the signer's, which cannot overdraw."""

    model_config = ConfigDict(extra="forbid")

    account: AccountId
    ledger: str = Field(pattern=LEDGER_PATTERN)
    code: Literal["wallet", "revenue", "escrow", "fees"] = "wallet"
    history: bool = Field(False, description="Keep the balances after every change.")


class TransferNote(BaseModel):
    """Payload of ledger.transfer: the transfers are the message's settlement legs."""

    model_config = ConfigDict(extra="forbid")

    memo: str | None = Field(None, max_length=500)


class MandateGrant(BaseModel):
    """Let ``grantee`` debit ``account`` up to ``cap`` per period, until ``expires``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["grant"]
    mandate: str = Field(pattern=_UUID, description="The mandate's id, chosen by the owner.")
    account: AccountId
    grantee: str = Field(pattern=DID_PATTERN)
    cap: Amount
    period_seconds: int = Field(ge=60, le=366 * 24 * 3600)
    expires: datetime | None = Field(None, description="RFC 3339 time; none: until revoked.")


class MandateRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["revoke"]
    mandate: str = Field(pattern=_UUID)


class Mandate(RootModel[Annotated[MandateGrant | MandateRevoke, Field(discriminator="action")]]):
    """Payload of ledger.mandate: a grant or a revocation."""


class Mint(BaseModel):
    """Payload of ledger.mint: new tokens from the ledger's treasury into ``account``."""

    model_config = ConfigDict(extra="forbid")

    transfer: str = Field(pattern=_UUID7, description="The mint transfer's id (UUIDv7).")
    account: AccountId
    ledger: str = Field(pattern=LEDGER_PATTERN)
    amount: Amount


def _open_account(ctx: Context) -> dict[str, Any]:
    p: OpenAccount = ctx.payload
    if owner_of(p.account) != ctx.signer:
        raise Refused(
            "unauthorized",
            f"an account id starts with its owner's did; open {ctx.signer}/<name> instead.",
            403,
        )
    flags = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    if p.history:
        flags |= AccountFlags.HISTORY
    (result,) = apply_accounts(
        ctx.conn, [Account(p.account, p.ledger, p.code, flags)], ctx.now_us * 1000
    )
    if result.result == "ledger_not_found":
        raise Refused("not-found", f"this node keeps no ledger {p.ledger!r}.", 404)
    if result.result not in ("ok", "exists"):
        raise Refused(
            "conflict",
            f"account {p.account} exists with other settings ({result.result}).",
            409,
            extra={"result": result.result},
        )
    account = load_accounts(ctx.conn, [p.account])[p.account]
    return {"account": account.to_dict(), "result": result.result}


def _transfer(ctx: Context) -> dict[str, Any]:
    return {"memo": ctx.payload.memo} if ctx.payload.memo else {}


def _mandate(ctx: Context) -> dict[str, Any]:
    change = ctx.payload.root
    if isinstance(change, MandateRevoke):
        found = mandates.get_mandate(ctx.conn, change.mandate)
        if found is None:
            raise Refused("not-found", f"no mandate {change.mandate}.", 404)
        if owner_of(found["account_id"]) != ctx.signer:
            raise Refused("unauthorized", "only the account's owner revokes its mandates.", 403)
        mandates.revoke(ctx.conn, change.mandate)
        return {"mandate": {**found, "revoked": True}}
    if owner_of(change.account) != ctx.signer:
        raise Refused("unauthorized", "only an account's owner grants mandates on it.", 403)
    if change.grantee == ctx.signer:
        raise Refused("schema-invalid", "a mandate is granted to another key.", 422)
    if not load_accounts(ctx.conn, [change.account]):
        raise Refused("not-found", f"no account {change.account}.", 404)
    if mandates.get_mandate(ctx.conn, change.mandate) is not None:
        raise Refused("conflict", f"mandate id {change.mandate} is taken; choose another.", 409)
    expires = int(change.expires.timestamp() * 1_000_000) if change.expires else None
    if expires is not None and expires <= ctx.now_us:
        raise Refused("schema-invalid", "the mandate's expiry is in the past.", 422)
    row = {
        "id": change.mandate,
        "account_id": change.account,
        "grantee": change.grantee,
        "cap": int(change.cap),
        "period_seconds": change.period_seconds,
        "starts_us": ctx.now_us,
        "expires_us": expires,
        "revoked": False,
        "granted_by": f"{ctx.envelope.source} {ctx.envelope.id}",
    }
    mandates.grant(ctx.conn, row)
    return {"mandate": row}


def _mint(ctx: Context) -> dict[str, Any]:
    p: Mint = ctx.payload
    node = ctx.node
    if node is None or ctx.signer not in {node.node_did, *node.operators}:
        raise Refused("unauthorized", "only the node's operators mint.", 403)
    ledger = next((i for i in reads.list_ledgers(ctx.conn) if i.name == p.ledger), None)
    if ledger is None:
        raise Refused("not-found", f"this node keeps no ledger {p.ledger!r}.", 404)
    env = ctx.envelope
    transfer = Transfer(
        p.transfer,
        ledger.treasury,
        p.account,
        int(p.amount),
        p.ledger,
        "mint",
        message_source=env.source,
        message_id=env.id,
    )
    results = apply_transfers(ctx.conn, [transfer], ctx.now_us * 1000)
    raise_for_results(results, "the mint transfer")
    return {"transfer": {"id": p.transfer, "timestamp": results[0].timestamp}}


def add_ledger_types(registry: Registry) -> None:
    """Register the ledger's message types in ``registry``."""
    registry.add(
        MessageType(
            OPEN_ACCOUNT,
            OpenAccount,
            _open_account,
            "Open an account of the signer's (it can never be overdrawn).",
            settlement="forbidden",
        )
    )
    registry.add(
        MessageType(
            TRANSFER,
            TransferNote,
            _transfer,
            "Move tokens: the transfers are the message's settlement legs.",
            settlement="required",
        )
    )
    registry.add(
        MessageType(
            MANDATE,
            Mandate,
            _mandate,
            "Grant or revoke another key's capped, expiring permission to debit an account.",
            settlement="forbidden",
        )
    )
    registry.add(
        MessageType(
            MINT,
            Mint,
            _mint,
            "Issue new tokens from a ledger's treasury (operators only).",
            settlement="forbidden",
        )
    )
