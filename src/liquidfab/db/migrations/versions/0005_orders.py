"""customer orders and their history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("manufacturer", sa.String(200), nullable=False),
        sa.Column("product_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("choices", sa.JSON, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("price", sa.String(40), nullable=False),
        sa.Column("ledger", sa.String(12), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("pending_transfer", sa.String(36), nullable=False, unique=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("program_digest", sa.String(100), nullable=False),
        sa.Column("program", sa.JSON, nullable=False),
        sa.Column("placed_by", sa.String(500), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_orders_state", "orders", ["state", "created_us"])
    op.create_index("ix_orders_customer", "orders", ["customer", "created_us"])
    op.create_index("ix_orders_manufacturer", "orders", ["manufacturer", "created_us"])
    op.create_table(
        "order_events",
        sa.Column("order_id", sa.String(100), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("transfer", sa.String(36), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("order_events")
    op.drop_index("ix_orders_manufacturer", table_name="orders")
    op.drop_index("ix_orders_customer", table_name="orders")
    op.drop_index("ix_orders_state", table_name="orders")
    op.drop_table("orders")
