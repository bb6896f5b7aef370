"""market territories: namespaces creators claim, with their owner and co-publishers;
the market's fee schedules

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "territories",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("skeleton", sa.String(40), nullable=False, unique=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("publishers", sa.JSON, nullable=False),
        sa.Column("offered_to", sa.String(200), nullable=True),
        sa.Column("claimed_by", sa.String(500), nullable=False),
        sa.Column("claimed_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_territories_owner", "territories", ["owner"])
    op.create_table(
        "fee_schedules",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("creator_bp", sa.Integer, nullable=False),
        sa.Column("manufacturer_bp", sa.Integer, nullable=False),
        sa.Column("platform_bp", sa.Integer, nullable=False),
        sa.Column("effective_us", sa.BigInteger, nullable=False),
        sa.Column("published_by", sa.String(500), nullable=False),
        sa.Column("published_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fee_schedules")
    op.drop_index("ix_territories_owner", table_name="territories")
    op.drop_table("territories")
