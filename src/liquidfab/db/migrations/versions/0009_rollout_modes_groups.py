"""rollout modes, maintenance windows and counters; device groups; consent

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ROLLOUT_COUNTERS = ("population", "assigned", "succeeded", "failed")


def upgrade() -> None:
    op.create_table(
        "device_groups",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("product_id", sa.String(200), nullable=False),
        sa.Column("query", sa.JSON, nullable=False),
        sa.Column("creator", sa.String(200), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="forced"))
        batch.add_column(sa.Column("window", sa.JSON, nullable=True))
        for name in _ROLLOUT_COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("accepted_wave", sa.Integer, nullable=False, server_default="-1")
        )
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="forced"))
        batch.add_column(sa.Column("window", sa.JSON, nullable=True))
        batch.add_column(sa.Column("consent_by", sa.String(500), nullable=True))
    op.create_index("ix_rollout_devices_status", "rollout_devices", ["rollout_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_rollout_devices_status", table_name="rollout_devices")
    with op.batch_alter_table("assignments") as batch:
        for name in ("consent_by", "window", "mode"):
            batch.drop_column(name)
    with op.batch_alter_table("rollouts") as batch:
        for name in ("accepted_wave", *_ROLLOUT_COUNTERS, "window", "mode"):
            batch.drop_column(name)
    op.drop_table("device_groups")
