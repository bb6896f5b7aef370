"""supply contracts, stock lots, runs of the virtual line; passports derived when read;
retired product versions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # a unit's passport is derived from its as-built record when read, not stored
    with op.batch_alter_table("units") as units:
        units.drop_column("passport")
    op.create_table(
        "supply_contracts",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column("part", sa.String(200), nullable=False),
        sa.Column("quantity_milli", sa.BigInteger, nullable=False),
        sa.Column("unit_price", sa.String(40), nullable=True),
        sa.Column("ledger", sa.String(12), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=True),
        sa.Column("pending_transfer", sa.String(36), nullable=True, unique=True),
        sa.Column("lot", sa.String(100), nullable=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_supply_contracts_consumer", "supply_contracts", ["consumer", "state"])
    op.create_index("ix_supply_contracts_supplier", "supply_contracts", ["supplier", "state"])
    op.create_table(
        "supply_events",
        sa.Column("contract_id", sa.String(100), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("transfer", sa.String(36), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "stock_lots",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("part", sa.String(200), nullable=False),
        sa.Column("lot", sa.String(100), nullable=False),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column("contract_id", sa.String(100), nullable=False, unique=True),
        sa.Column("received_milli", sa.BigInteger, nullable=False),
        sa.Column("left_milli", sa.BigInteger, nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_stock_lots_owner_part", "stock_lots", ["owner", "part", "id"])
    op.create_table(
        "production_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("manufacturer", sa.String(200), nullable=False),
        sa.Column("layout_id", sa.String(200), nullable=False),
        sa.Column("layout_version", sa.String(100), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("trace", sa.JSON, nullable=False),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("finished_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_production_runs_finished", "production_runs", ["finished_us"])
    # product.retire marks a version that takes no new orders
    op.add_column("product_versions", sa.Column("retired_us", sa.BigInteger, nullable=True))
    op.add_column("product_versions", sa.Column("retired_by", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_versions") as versions:
        versions.drop_column("retired_by")
        versions.drop_column("retired_us")
    with op.batch_alter_table("units") as units:
        units.add_column(sa.Column("passport", sa.JSON, nullable=False, server_default="{}"))
    op.drop_index("ix_production_runs_finished", table_name="production_runs")
    op.drop_table("production_runs")
    op.drop_index("ix_stock_lots_owner_part", table_name="stock_lots")
    op.drop_table("stock_lots")
    op.drop_table("supply_events")
    op.drop_index("ix_supply_contracts_supplier", table_name="supply_contracts")
    op.drop_index("ix_supply_contracts_consumer", table_name="supply_contracts")
    op.drop_table("supply_contracts")
