"""participants and the message log

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("did", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("endpoints", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("registered_by", sa.String(500), nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("msg_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("time", sa.String(64), nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("envelope", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.UniqueConstraint("source", "msg_id", name="uq_messages_source_msg_id"),
    )
    op.create_index("ix_messages_type", "messages", ["type"])
    op.create_index("ix_messages_received_us", "messages", ["received_us"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("participants")
