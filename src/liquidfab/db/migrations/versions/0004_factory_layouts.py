"""factory layouts and their published versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "factory_layouts",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("latest", sa.String(100), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "factory_layout_versions",
        sa.Column("layout_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("product", sa.String(400), nullable=True),
        sa.Column("published_us", sa.BigInteger, nullable=False),
        sa.Column("published_by", sa.String(500), nullable=False),
    )
    op.create_index("ix_factory_layout_versions_product", "factory_layout_versions", ["product"])


def downgrade() -> None:
    op.drop_index("ix_factory_layout_versions_product", table_name="factory_layout_versions")
    op.drop_table("factory_layout_versions")
    op.drop_table("factory_layouts")
