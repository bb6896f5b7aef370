"""The node's tables, in SQLAlchemy Core: one definition for SQLite and PostgreSQL.

Times are integer microseconds since the Unix epoch (UTC), the one time type both
databases store exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "account_history",
    "accounts",
    "assignments",
    "device_groups",
    "devices",
    "entitlements",
    "factory_layout_versions",
    "factory_layouts",
    "fee_schedules",
    "ledger_chain",
    "ledger_checkpoints",
    "ledger_failed",
    "ledger_head",
    "ledgers",
    "mandate_usage",
    "mandates",
    "market_earnings",
    "market_listings",
    "market_releases",
    "market_roles",
    "market_subscriptions",
    "market_usage",
    "market_usage_batches",
    "messages",
    "metadata",
    "order_events",
    "orders",
    "participants",
    "pending_transfers",
    "product_versions",
    "production_runs",
    "products",
    "rollout_devices",
    "rollouts",
    "stock_lots",
    "supply_contracts",
    "supply_events",
    "territories",
    "transfers",
    "units",
]

metadata = MetaData()

_SEQ = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid

participants = Table(
    "participants",
    metadata,
    Column("did", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("endpoints", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("registered_by", String(500), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("msg_id", String(200), nullable=False),
    Column("type", String(200), nullable=False),
    Column("subject", String(500), nullable=True),
    Column("time", String(64), nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("envelope", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    UniqueConstraint("source", "msg_id", name="uq_messages_source_msg_id"),
    Index("ix_messages_type", "type"),
    Index("ix_messages_received_us", "received_us"),
)

# The ledger. Every event (account created, transfer applied, pending transfer expired)
# has a unique, increasing timestamp in nanoseconds; a chain row covers a range of them.
_TS = BigInteger().with_variant(Integer, "sqlite")  # transfers are stored in time order

ledgers = Table(
    "ledgers",
    metadata,
    Column("name", String(12), primary_key=True),
    Column("decimals", Integer, nullable=False),
    Column("treasury", String(300), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("ledger", String(12), nullable=False),
    Column("code", String(16), nullable=False),
    Column("flags", Integer, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False, unique=True),
)

transfers = Table(
    "transfers",
    metadata,
    Column("timestamp", _TS, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("debit_account_id", String(300), nullable=False),
    Column("credit_account_id", String(300), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("pending_id", String(36), nullable=True),
    Column("ledger", String(12), nullable=False),
    Column("code", String(64), nullable=False),
    Column("flags", Integer, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("message_source", String(200), nullable=True),
    Column("message_id", String(200), nullable=True),
    Index("ix_transfers_debit", "debit_account_id", "timestamp"),
    Index("ix_transfers_credit", "credit_account_id", "timestamp"),
    Index("ix_transfers_message", "message_source", "message_id"),
)

pending_transfers = Table(
    "pending_transfers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(8), nullable=False),
    Column("expires_ns", BigInteger, nullable=True),
    Column("closed_ts", BigInteger, nullable=True),
    Column("closed_by", String(36), nullable=True),
    Index("ix_pending_expiry", "status", "expires_ns"),
)

ledger_failed = Table(
    "ledger_failed",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("result", String(64), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

account_history = Table(
    "account_history",
    metadata,
    Column("account_id", String(300), primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
)

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("head", String(64), nullable=False),
    Column("last_ts", BigInteger, nullable=False),
)

ledger_chain = Table(
    "ledger_chain",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("first_ts", BigInteger, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("events", Integer, nullable=False),
    Column("head", String(64), nullable=False),
)

ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("head", String(64), nullable=False),
    Column("signer", String(200), nullable=False),
    Column("signature", String(200), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

mandates = Table(
    "mandates",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(300), nullable=False),
    Column("grantee", String(200), nullable=False),
    Column("cap", BigInteger, nullable=False),
    Column("period_seconds", Integer, nullable=False),
    Column("starts_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=True),
    Column("revoked", Boolean, nullable=False),
    Column("granted_by", String(500), nullable=False),
    Index("ix_mandates_account_grantee", "account_id", "grantee"),
)

mandate_usage = Table(
    "mandate_usage",
    metadata,
    Column("mandate_id", String(36), primary_key=True),
    Column("period", BigInteger, primary_key=True, autoincrement=False),
    Column("used", BigInteger, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("manufacturer", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("latest", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

product_versions = Table(
    "product_versions",
    metadata,
    Column("product_id", String(200), primary_key=True),
    Column("version", String(100), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("published_us", BigInteger, nullable=False),
    Column("published_by", String(500), nullable=False),
    # set once by product.retire: the version takes no new orders, its definition stays
    Column("retired_us", BigInteger, nullable=True),
    Column("retired_by", String(500), nullable=True),
)

factory_layouts = Table(
    "factory_layouts",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("latest", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

factory_layout_versions = Table(
    "factory_layout_versions",
    metadata,
    Column("layout_id", String(200), primary_key=True),
    Column("version", String(100), primary_key=True),
    Column("digest", String(100), nullable=False),
    Column("document", JSON, nullable=False),
    Column("product", String(400), nullable=True),
    Column("published_us", BigInteger, nullable=False),
    Column("published_by", String(500), nullable=False),
    Index("ix_factory_layout_versions_product", "product"),
)

# Customer orders (production): one row per order, its history in order_events.
orders = Table(
    "orders",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("customer", String(200), nullable=False),
    Column("manufacturer", String(200), nullable=False),
    Column("product_id", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    Column("choices", JSON, nullable=False),
    Column("features", JSON, nullable=False),
    Column("price", String(40), nullable=False),
    Column("ledger", String(12), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("pending_transfer", String(36), nullable=False, unique=True),
    Column("state", String(24), nullable=False),
    Column("program_digest", String(100), nullable=False),
    Column("program", JSON, nullable=False),
    Column("placed_by", String(500), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_orders_state", "state", "created_us"),
    Index("ix_orders_customer", "customer", "created_us"),
    Index("ix_orders_manufacturer", "manufacturer", "created_us"),
)

order_events = Table(
    "order_events",
    metadata,
    Column("order_id", String(100), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("state", String(24), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("message", String(500), nullable=False),
    Column("transfer", String(36), nullable=True),
    Column("note", String(500), nullable=True),
    Column("at_us", BigInteger, nullable=False),
)

# Built units (production): serial, device did and as-built record; the AAS passport is
# derived from them when read. The device's private key is never stored.
units = Table(
    "units",
    metadata,
    Column("serial", String(64), primary_key=True),
    Column("order_id", String(100), nullable=False, unique=True),
    Column("code", String(16), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("product_id", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    Column("manufacturer", String(200), nullable=False),
    Column("customer", String(200), nullable=False),
    Column("device_did", String(200), nullable=False, unique=True),
    Column("program_digest", String(100), nullable=False),
    Column("as_built", JSON, nullable=False),
    Column("built_us", BigInteger, nullable=False),
    UniqueConstraint("code", "sequence", name="uq_units_code_sequence"),
    Index("ix_units_customer", "customer", "built_us"),
    Index("ix_units_product", "product_id", "built_us"),
)

# Supply contracts (production): a manufacturer's request for parts from a supplier,
# negotiated and delivered in the Dataspace Protocol's states; history in supply_events.
# Quantities are thousandths of the part's unit (a BOM may say 0.25 l of paint).
supply_contracts = Table(
    "supply_contracts",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("consumer", String(200), nullable=False),
    Column("supplier", String(200), nullable=False),
    Column("part", String(200), nullable=False),
    Column("quantity_milli", BigInteger, nullable=False),
    Column("unit_price", String(40), nullable=True),
    Column("ledger", String(12), nullable=False),
    Column("amount", BigInteger, nullable=True),
    Column("pending_transfer", String(36), nullable=True, unique=True),
    Column("lot", String(100), nullable=True),
    Column("state", String(24), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_supply_contracts_consumer", "consumer", "state"),
    Index("ix_supply_contracts_supplier", "supplier", "state"),
)

supply_events = Table(
    "supply_events",
    metadata,
    Column("contract_id", String(100), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("state", String(24), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("message", String(500), nullable=False),
    Column("transfer", String(36), nullable=True),
    Column("note", String(500), nullable=True),
    Column("at_us", BigInteger, nullable=False),
)

# A manufacturer's stock: one row per lot received by a completed supply contract,
# drawn down first in, first out as units are built.
stock_lots = Table(
    "stock_lots",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("owner", String(200), nullable=False),
    Column("part", String(200), nullable=False),
    Column("lot", String(100), nullable=False),
    Column("supplier", String(200), nullable=False),
    Column("contract_id", String(100), nullable=False, unique=True),
    Column("received_milli", BigInteger, nullable=False),
    Column("left_milli", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Index("ix_stock_lots_owner_part", "owner", "part", "id"),
)

# Runs of the virtual line (production): what ``liquidfab produce`` measured, and the
# unit-by-station trace the line page replays.
production_runs = Table(
    "production_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("manufacturer", String(200), nullable=False),
    Column("layout_id", String(200), nullable=False),
    Column("layout_version", String(100), nullable=False),
    Column("summary", JSON, nullable=False),
    Column("trace", JSON, nullable=False),
    Column("started_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger, nullable=False),
    Index("ix_production_runs_finished", "finished_us"),
)

# Fleet: registered devices (from built units or directly) and their twins. A twin has
# one version that every write moves on (a write names the version it was based on).
devices = Table(
    "devices",
    metadata,
    Column("did", String(200), primary_key=True),
    Column("product_id", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    Column("manufacturer", String(200), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("serial", String(64), nullable=True, unique=True),
    Column("attributes", JSON, nullable=False),
    Column("desired", JSON, nullable=False),
    Column("reported", JSON, nullable=False),
    Column("twin_version", BigInteger, nullable=False),
    Column("registered_by", String(500), nullable=False),
    Column("registered_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_devices_product", "product_id", "version"),
    Index("ix_devices_owner", "owner"),
)

# Director assignments (fleet, Uptane's director): which target each device should run.
# The counter only grows per device, so a device never accepts an older assignment.
assignments = Table(
    "assignments",
    metadata,
    Column("device", String(200), primary_key=True),
    Column("counter", BigInteger, nullable=False),
    Column("target", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("custom", JSON, nullable=False),
    Column("assigned_by", String(500), nullable=False),
    Column("assigned_us", BigInteger, nullable=False),
    # forced | soft (installs once the owner consents) | download-only
    Column("mode", String(16), nullable=False, server_default="forced"),
    Column("window", JSON, nullable=True),  # the maintenance window installs wait for
    Column("consent_by", String(500), nullable=True),  # the owner's consent message
)

# Rollouts (fleet): a target delivered to the devices a filter selects, wave by wave.
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("creator", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("target", JSON, nullable=False),
    Column("filter", JSON, nullable=False),
    Column("waves", JSON, nullable=False),
    Column("success_threshold", Float, nullable=False),
    Column("error_threshold", Float, nullable=False),
    Column("min_sample", Integer, nullable=False),
    Column("rate_per_minute", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("reason", String(500), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("mode", String(16), nullable=False, server_default="forced"),
    Column("window", JSON, nullable=True),
    # kept as devices report, so a report costs a few statements, not a census
    Column("population", Integer, nullable=False, server_default="0"),
    Column("assigned", Integer, nullable=False, server_default="0"),
    Column("succeeded", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    # the last wave an operator let pass below the success threshold (by resuming)
    Column("accepted_wave", Integer, nullable=False, server_default="-1"),
)

# Named device groups (fleet): a saved query (product, version, attributes) that
# rollouts and searches name instead of repeating it.
device_groups = Table(
    "device_groups",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("product_id", String(200), nullable=False),
    Column("query", JSON, nullable=False),
    Column("creator", String(200), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

rollout_devices = Table(
    "rollout_devices",
    metadata,
    Column("rollout_id", String(100), primary_key=True),
    Column("device", String(200), primary_key=True),
    Column("wave", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("assigned_us", BigInteger, nullable=False),
    Column("done_us", BigInteger, nullable=True),
    Index("ix_rollout_devices_device", "device"),
    Index("ix_rollout_devices_status", "rollout_id", "status"),
)

# Entitlements (fleet): optional features bought for a device; the node signs a license
# bound to the device's did that the device checks offline.
entitlements = Table(
    "entitlements",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("device", String(200), nullable=False),
    Column("feature", String(100), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("model", String(24), nullable=False),
    Column("transfer", String(36), nullable=True),
    Column("issued_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=True),
    Column("revoked_us", BigInteger, nullable=True),
    Column("revoked_by", String(500), nullable=True),
    Column("changed_us", BigInteger, nullable=True),  # a renewal, a new release of the app
    Index("ix_entitlements_device", "device", "feature"),
)

# Market territories: a namespace (@name) a creator claims; its skeleton (what it looks
# like) is unique, so no two confusable names are both claimed.
territories = Table(
    "territories",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("skeleton", String(40), nullable=False, unique=True),
    Column("owner", String(200), nullable=False),
    Column("publishers", JSON, nullable=False),  # co-publishers' dids, besides the owner
    Column("offered_to", String(200), nullable=True),  # a transfer the owner offered
    Column("claimed_by", String(500), nullable=False),
    Column("claimed_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_territories_owner", "owner"),
)

# The market's fee schedule: how a sale splits between creator, manufacturer and
# platform, in basis points. Versions only grow; each takes effect after a notice period.
fee_schedules = Table(
    "fee_schedules",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("creator_bp", Integer, nullable=False),
    Column("manufacturer_bp", Integer, nullable=False),
    Column("platform_bp", Integer, nullable=False),
    Column("effective_us", BigInteger, nullable=False),
    Column("published_by", String(500), nullable=False),
    Column("published_us", BigInteger, nullable=False),
)

# Market listings: an app (feature, AI skill, model, widget) in a territory, the product
# versions it targets, what the unit must have (an expression), and its pricing.
market_listings = Table(
    "market_listings",
    metadata,
    Column("app", String(100), primary_key=True),  # @territory/slug
    Column("territory", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("summary", String(2000), nullable=False),
    Column("product", String(200), nullable=False),
    Column("versions", String(200), nullable=False),  # a version specifier: >=1.0,<2
    Column("requires", String(2000), nullable=True),  # an expression over the configuration
    Column("pricing", JSON, nullable=False),
    Column("listed_by", String(200), nullable=False),
    Column("listed_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_market_listings_territory", "territory"),
    Index("ix_market_listings_product", "product"),
)

# An app's released versions: each a TUF target inside its territory's delegated role.
market_releases = Table(
    "market_releases",
    metadata,
    Column("app", String(100), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("target", String(200), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("published_by", String(200), nullable=False),
    Column("published_us", BigInteger, nullable=False),
)

# The latest signed metadata of each delegated TUF role of the market (the market role
# the node signs, and each territory's role its creator signs): the store is the truth,
# the repository's files are written from it after each commit.
market_roles = Table(
    "market_roles",
    metadata,
    Column("role", String(60), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

# Each charge a creator earned from: a sale, a subscription period, a usage batch; the
# split as settled, under the fee schedule version that governed it.
market_earnings = Table(
    "market_earnings",
    metadata,
    Column("id", String(120), primary_key=True),
    Column("app", String(100), nullable=False),
    Column("creator", String(200), nullable=False),
    Column("source", String(16), nullable=False),  # sale, subscription, usage
    Column("device", String(200), nullable=False),
    Column("buyer", String(200), nullable=False),
    Column("gross", BigInteger, nullable=False),
    Column("creator_amount", BigInteger, nullable=False),
    Column("manufacturer_amount", BigInteger, nullable=False),
    Column("platform_amount", BigInteger, nullable=False),
    Column("fee_version", Integer, nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Index("ix_market_earnings_creator", "creator", "at_us"),
    Index("ix_market_earnings_app", "app", "at_us"),
)

# Subscriptions: charged each period through the buyer's mandate; a failed charge starts
# a grace period, after which the entitlement lapses.
market_subscriptions = Table(
    "market_subscriptions",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("app", String(100), nullable=False),
    Column("device", String(200), nullable=False),
    Column("buyer", String(200), nullable=False),
    Column("account", String(260), nullable=False),
    Column("mandate", String(36), nullable=False),
    # the terms it started under, whatever the listing says later
    Column("model", String(24), nullable=False),  # subscription, trial-then-paid, per-use
    Column("meter", String(8), nullable=True),  # per use: sum or count
    Column("price", BigInteger, nullable=False),
    Column("period_seconds", BigInteger, nullable=False),
    Column("fee_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # active, grace, lapsed, cancelled
    Column("periods_paid", Integer, nullable=False),
    Column("period_end_us", BigInteger, nullable=False),
    Column("grace_until_us", BigInteger, nullable=True),
    Column("cancel_at_end", Boolean, nullable=False),
    Column("entitlement", String(100), nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_market_subscriptions_due", "status", "period_end_us"),
    Index("ix_market_subscriptions_device", "device", "app"),
)

# Per-use records a device signed; the record id is unique per app, and each record
# settles in exactly one batch.
market_usage = Table(
    "market_usage",
    metadata,
    Column("app", String(100), primary_key=True),
    Column("record", String(100), primary_key=True),
    Column("device", String(200), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("batch", String(100), nullable=True),
    Index("ix_market_usage_open", "app", "device", "batch"),
)

market_usage_batches = Table(
    "market_usage_batches",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("app", String(100), nullable=False),
    Column("device", String(200), nullable=False),
    Column("records", Integer, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # settled, failed
    Column("error", String(500), nullable=True),
    Column("at_us", BigInteger, nullable=False),
)
