"""an entitlement's last change; market listings and their releases, the creators'
TUF role metadata, sales and earnings, subscriptions, usage records and their settlement batches

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # when an entitlement's license last changed (a renewal, a new release of its app), so
    # the device's poll answer moves and the device fetches its licenses again
    op.add_column("entitlements", sa.Column("changed_us", sa.BigInteger, nullable=True))
    op.create_table(
        "market_listings",
        sa.Column("app", sa.String(100), primary_key=True),
        sa.Column("territory", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.String(2000), nullable=False),
        sa.Column("product", sa.String(200), nullable=False),
        sa.Column("versions", sa.String(200), nullable=False),
        sa.Column("requires", sa.String(2000), nullable=True),
        sa.Column("pricing", sa.JSON, nullable=False),
        sa.Column("listed_by", sa.String(200), nullable=False),
        sa.Column("listed_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_market_listings_territory", "market_listings", ["territory"])
    op.create_index("ix_market_listings_product", "market_listings", ["product"])
    op.create_table(
        "market_releases",
        sa.Column("app", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(200), nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.Column("published_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "market_roles",
        sa.Column("role", sa.String(60), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "market_earnings",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("app", sa.String(100), nullable=False),
        sa.Column("creator", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("buyer", sa.String(200), nullable=False),
        sa.Column("gross", sa.BigInteger, nullable=False),
        sa.Column("creator_amount", sa.BigInteger, nullable=False),
        sa.Column("manufacturer_amount", sa.BigInteger, nullable=False),
        sa.Column("platform_amount", sa.BigInteger, nullable=False),
        sa.Column("fee_version", sa.Integer, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_market_earnings_creator", "market_earnings", ["creator", "at_us"])
    op.create_index("ix_market_earnings_app", "market_earnings", ["app", "at_us"])
    op.create_table(
        "market_subscriptions",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("app", sa.String(100), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("buyer", sa.String(200), nullable=False),
        sa.Column("account", sa.String(260), nullable=False),
        sa.Column("mandate", sa.String(36), nullable=False),
        sa.Column("model", sa.String(24), nullable=False),
        sa.Column("meter", sa.String(8), nullable=True),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("period_seconds", sa.BigInteger, nullable=False),
        sa.Column("fee_version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("periods_paid", sa.Integer, nullable=False),
        sa.Column("period_end_us", sa.BigInteger, nullable=False),
        sa.Column("grace_until_us", sa.BigInteger, nullable=True),
        sa.Column("cancel_at_end", sa.Boolean, nullable=False),
        sa.Column("entitlement", sa.String(100), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_market_subscriptions_due", "market_subscriptions", ["status", "period_end_us"]
    )
    op.create_index("ix_market_subscriptions_device", "market_subscriptions", ["device", "app"])
    op.create_table(
        "market_usage",
        sa.Column("app", sa.String(100), primary_key=True),
        sa.Column("record", sa.String(100), primary_key=True),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("batch", sa.String(100), nullable=True),
    )
    op.create_index("ix_market_usage_open", "market_usage", ["app", "device", "batch"])
    op.create_table(
        "market_usage_batches",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("app", sa.String(100), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("market_usage_batches")
    op.drop_index("ix_market_usage_open", table_name="market_usage")
    op.drop_table("market_usage")
    op.drop_index("ix_market_subscriptions_device", table_name="market_subscriptions")
    op.drop_index("ix_market_subscriptions_due", table_name="market_subscriptions")
    op.drop_table("market_subscriptions")
    op.drop_index("ix_market_earnings_app", table_name="market_earnings")
    op.drop_index("ix_market_earnings_creator", table_name="market_earnings")
    op.drop_table("market_earnings")
    op.drop_table("market_roles")
    op.drop_table("market_releases")
    op.drop_index("ix_market_listings_product", table_name="market_listings")
    op.drop_index("ix_market_listings_territory", table_name="market_listings")
    op.drop_table("market_listings")
    op.drop_column("entitlements", "changed_us")
