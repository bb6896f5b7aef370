"""built units: serial, device did, as-built record and passport

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(100), nullable=False, unique=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("product_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("manufacturer", sa.String(200), nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("device_did", sa.String(200), nullable=False, unique=True),
        sa.Column("program_digest", sa.String(100), nullable=False),
        sa.Column("as_built", sa.JSON, nullable=False),
        sa.Column("passport", sa.JSON, nullable=False),
        sa.Column("built_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("code", "sequence", name="uq_units_code_sequence"),
    )
    op.create_index("ix_units_customer", "units", ["customer", "built_us"])
    op.create_index("ix_units_product", "units", ["product_id", "built_us"])


def downgrade() -> None:
    op.drop_index("ix_units_product", table_name="units")
    op.drop_index("ix_units_customer", table_name="units")
    op.drop_table("units")
