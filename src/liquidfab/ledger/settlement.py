"""A message's settlement legs as transfers, authorized and applied in its transaction.

Who may move what:
- a leg debits an account its signer owns, or one whose owner granted the signer a
  standing mandate (capped per period, expiring, revocable);
- a leg touching a treasury (minting or burning) needs an operator's or the node's key;
- ``post_pending`` releases an escrow to the payee: the payer (owner of the pending
  transfer's debit account) signs it; ``void_pending`` gives it back: the payee signs it.
  Unclaimed escrow returns to the payer when its timeout passes.
If any leg fails, the message is refused and nothing of it is applied.
"""

from __future__ import annotations

from typing import Any

from liquidfab.errors import Refused
from liquidfab.ledger import mandates
from liquidfab.ledger.store import apply_transfers, load_accounts, load_transfers
from liquidfab.ledger.types import (
    AccountCode,
    CreateResult,
    Transfer,
    TransferFlags,
    owner_of,
)
from liquidfab.protocol.registry import Context
from liquidfab.protocol.settlement import SettlementLeg

__all__ = ["apply_settlement", "leg_transfer", "raise_for_results"]

_FLAG = {
    "linked": TransferFlags.LINKED,
    "pending": TransferFlags.PENDING,
    "post_pending": TransferFlags.POST_PENDING,
    "void_pending": TransferFlags.VOID_PENDING,
}


def leg_transfer(leg: SettlementLeg, source: str, msg_id: str) -> Transfer:
    flags = 0
    for name in leg.flags:
        flags |= _FLAG[name]
    return Transfer(
        leg.id,
        leg.debit_account,
        leg.credit_account,
        None if leg.amount is None else int(leg.amount),
        leg.ledger,
        leg.code,
        flags,
        leg.pending_id,
        leg.timeout_seconds or 0,
        source,
        msg_id,
    )


def _authorities(ctx: Context) -> set[str]:
    node = ctx.node
    return {node.node_did, *node.operators} - {None} if node else set()  # type: ignore[return-value]


def _authorize(ctx: Context, transfers: list[Transfer]) -> list[str | None]:
    """Per leg: None when the signer may move it, else why not."""
    conn, signer = ctx.conn, ctx.signer
    pendings = load_transfers(conn, [t.pending_id for t in transfers if t.pending_id])
    ids = [a for t in transfers for a in (t.debit_account_id, t.credit_account_id)]
    accounts = load_accounts(conn, ids)
    operators = _authorities(ctx)
    verdicts: list[str | None] = []
    for t in transfers:
        if t.flags & (TransferFlags.POST_PENDING | TransferFlags.VOID_PENDING):
            p = pendings.get(t.pending_id or "")
            if p is None:
                verdicts.append(None)  # the ledger answers pending_transfer_not_found
                continue
            post = t.flags & TransferFlags.POST_PENDING
            holder = owner_of(p.debit_account_id if post else p.credit_account_id)
            verdicts.append(
                None
                if signer == holder or signer in operators
                else f"only {holder} may {'post' if post else 'void'} this pending transfer"
            )
            continue
        touched = [accounts.get(t.debit_account_id), accounts.get(t.credit_account_id)]
        if any(a is not None and a.code == AccountCode.TREASURY for a in touched):
            verdicts.append(
                None if signer in operators else "only the node's operators mint and burn"
            )
            continue
        if owner_of(t.debit_account_id) == signer or accounts.get(t.debit_account_id) is None:
            verdicts.append(None)
            continue
        verdicts.append(mandates.consume(conn, t, signer, ctx.now_us))
    return verdicts


def raise_for_results(results: list[CreateResult], what: str = "settlement leg") -> None:
    """Refuse the message at the first leg that failed (not one that only shared a chain)."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return
    first = next((r for r in failed if r.result != "linked_event_failed"), failed[0])
    raise Refused(
        "settlement-failed",
        f"{what} {first.index} (transfer {first.id}) failed with {first.result}; nothing of "
        "the message was applied.",
        409,
        extra={"leg": first.index, "transfer": first.id, "result": first.result},
    )


def apply_settlement(ctx: Context) -> list[dict[str, Any]]:
    """Apply the message's legs; Refused (and nothing applied) unless every leg commits."""
    env = ctx.envelope
    transfers = [leg_transfer(leg, env.source, env.id) for leg in ctx.settlement]
    for i, why in enumerate(_authorize(ctx, transfers)):
        if why is not None:
            raise Refused(
                "settlement-failed",
                f"settlement leg {i} (transfer {transfers[i].id}) is not authorized: {why}.",
                403,
                extra={"leg": i, "transfer": transfers[i].id, "result": "not_authorized"},
            )
    results = apply_transfers(ctx.conn, transfers, ctx.now_us * 1000)
    raise_for_results(results)
    return [{"id": r.id, "timestamp": r.timestamp} for r in results]
