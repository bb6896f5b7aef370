"""the ledger: ledgers, accounts, transfers, pending states, audit chain, mandates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.BigInteger().with_variant(sa.Integer, "sqlite")
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "ledgers",
        sa.Column("name", sa.String(12), primary_key=True),
        sa.Column("decimals", sa.Integer, nullable=False),
        sa.Column("treasury", sa.String(300), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("ledger", sa.String(12), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("debits_pending", sa.BigInteger, nullable=False),
        sa.Column("debits_posted", sa.BigInteger, nullable=False),
        sa.Column("credits_pending", sa.BigInteger, nullable=False),
        sa.Column("credits_posted", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False, unique=True),
    )
    op.create_table(
        "transfers",
        sa.Column("timestamp", TS, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("debit_account_id", sa.String(300), nullable=False),
        sa.Column("credit_account_id", sa.String(300), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("pending_id", sa.String(36), nullable=True),
        sa.Column("ledger", sa.String(12), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("timeout", sa.Integer, nullable=False),
        sa.Column("message_source", sa.String(200), nullable=True),
        sa.Column("message_id", sa.String(200), nullable=True),
    )
    op.create_index("ix_transfers_debit", "transfers", ["debit_account_id", "timestamp"])
    op.create_index("ix_transfers_credit", "transfers", ["credit_account_id", "timestamp"])
    op.create_index("ix_transfers_message", "transfers", ["message_source", "message_id"])
    op.create_table(
        "pending_transfers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("expires_ns", sa.BigInteger, nullable=True),
        sa.Column("closed_ts", sa.BigInteger, nullable=True),
        sa.Column("closed_by", sa.String(36), nullable=True),
    )
    op.create_index("ix_pending_expiry", "pending_transfers", ["status", "expires_ns"])
    op.create_table(
        "ledger_failed",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "account_history",
        sa.Column("account_id", sa.String(300), primary_key=True),
        sa.Column("timestamp", sa.BigInteger, primary_key=True),
        sa.Column("debits_pending", sa.BigInteger, nullable=False),
        sa.Column("debits_posted", sa.BigInteger, nullable=False),
        sa.Column("credits_pending", sa.BigInteger, nullable=False),
        sa.Column("credits_posted", sa.BigInteger, nullable=False),
    )
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "head": GENESIS, "last_ts": 0}])
    op.create_table(
        "ledger_chain",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("first_ts", sa.BigInteger, nullable=False),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("signer", sa.String(200), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "mandates",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(300), nullable=False),
        sa.Column("grantee", sa.String(200), nullable=False),
        sa.Column("cap", sa.BigInteger, nullable=False),
        sa.Column("period_seconds", sa.Integer, nullable=False),
        sa.Column("starts_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("granted_by", sa.String(500), nullable=False),
    )
    op.create_index("ix_mandates_account_grantee", "mandates", ["account_id", "grantee"])
    op.create_table(
        "mandate_usage",
        sa.Column("mandate_id", sa.String(36), primary_key=True),
        sa.Column("period", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("used", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "mandate_usage",
        "mandates",
        "ledger_checkpoints",
        "ledger_chain",
        "ledger_head",
        "account_history",
        "ledger_failed",
        "pending_transfers",
        "transfers",
        "accounts",
        "ledgers",
    ):
        op.drop_table(table)
