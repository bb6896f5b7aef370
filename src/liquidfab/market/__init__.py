"""Market: territories creators own, apps listed and published into them through TUF
delegation, purchases split three ways at the moment of sale, subscriptions and per-use
metering billed through mandates, and creators' earnings (docs/market.md)."""

from liquidfab.market.billing import BillingLoop, run_billing
from liquidfab.market.delegation import check_role, role_name, target_name
from liquidfab.market.fees import DEFAULT, NOTICE_DAYS, FeeSchedule, in_force, split
from liquidfab.market.listings import Meter, Pricing, spec_matches
from liquidfab.market.messages import (
    ACCEPT,
    BILL,
    BUY,
    CANCEL,
    CLAIM,
    FEE_SCHEDULE,
    LISTING,
    PUBLISH,
    PUBLISHERS,
    SETTLE_USAGE,
    SUBSCRIBE,
    TRANSFER,
    USAGE,
    add_market_types,
)
from liquidfab.market.names import name_problem, skeleton
from liquidfab.market.publishing import next_role, publish_message
from liquidfab.market.purchases import Share, earnings, platform_account, shares
from liquidfab.market.sync import MarketSync
from liquidfab.market.territories import may_publish

__all__ = [
    "ACCEPT",
    "BILL",
    "BUY",
    "CANCEL",
    "CLAIM",
    "DEFAULT",
    "FEE_SCHEDULE",
    "LISTING",
    "NOTICE_DAYS",
    "PUBLISH",
    "PUBLISHERS",
    "SETTLE_USAGE",
    "SUBSCRIBE",
    "TRANSFER",
    "USAGE",
    "BillingLoop",
    "FeeSchedule",
    "MarketSync",
    "Meter",
    "Pricing",
    "Share",
    "add_market_types",
    "check_role",
    "earnings",
    "in_force",
    "may_publish",
    "name_problem",
    "next_role",
    "platform_account",
    "publish_message",
    "role_name",
    "run_billing",
    "shares",
    "skeleton",
    "spec_matches",
    "split",
    "target_name",
]
