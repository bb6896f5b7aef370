"""fleet devices, their twins, director assignments, rollouts and entitlements

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("did", sa.String(200), primary_key=True),
        sa.Column("product_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("manufacturer", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("serial", sa.String(64), nullable=True, unique=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("desired", sa.JSON, nullable=False),
        sa.Column("reported", sa.JSON, nullable=False),
        sa.Column("twin_version", sa.BigInteger, nullable=False),
        sa.Column("registered_by", sa.String(500), nullable=False),
        sa.Column("registered_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_devices_product", "devices", ["product_id", "version"])
    op.create_index("ix_devices_owner", "devices", ["owner"])
    op.create_table(
        "assignments",
        sa.Column("device", sa.String(200), primary_key=True),
        sa.Column("counter", sa.BigInteger, nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("custom", sa.JSON, nullable=False),
        sa.Column("assigned_by", sa.String(500), nullable=False),
        sa.Column("assigned_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("creator", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("target", sa.JSON, nullable=False),
        sa.Column("filter", sa.JSON, nullable=False),
        sa.Column("waves", sa.JSON, nullable=False),
        sa.Column("success_threshold", sa.Float, nullable=False),
        sa.Column("error_threshold", sa.Float, nullable=False),
        sa.Column("min_sample", sa.Integer, nullable=False),
        sa.Column("rate_per_minute", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", sa.String(100), primary_key=True),
        sa.Column("device", sa.String(200), primary_key=True),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assigned_us", sa.BigInteger, nullable=False),
        sa.Column("done_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_rollout_devices_device", "rollout_devices", ["device"])
    op.create_table(
        "entitlements",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("feature", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("model", sa.String(24), nullable=False),
        sa.Column("transfer", sa.String(36), nullable=True),
        sa.Column("issued_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=True),
        sa.Column("revoked_us", sa.BigInteger, nullable=True),
        sa.Column("revoked_by", sa.String(500), nullable=True),
    )
    op.create_index("ix_entitlements_device", "entitlements", ["device", "feature"])


def downgrade() -> None:
    op.drop_index("ix_entitlements_device", table_name="entitlements")
    op.drop_table("entitlements")
    op.drop_index("ix_rollout_devices_device", table_name="rollout_devices")
    op.drop_table("rollout_devices")
    op.drop_table("rollouts")
    op.drop_table("assignments")
    op.drop_index("ix_devices_owner", table_name="devices")
    op.drop_index("ix_devices_product", table_name="devices")
    op.drop_table("devices")
