"""Market: territories creators own (``names``, ``territories``, ``messages``) and the fee
schedule (``fees``). Listings, purchases with split settlement, subscriptions and usage
are still to come (issue 8)."""

from liquidfab.market.fees import DEFAULT, NOTICE_DAYS, FeeSchedule, in_force, split
from liquidfab.market.messages import (
    ACCEPT,
    CLAIM,
    FEE_SCHEDULE,
    PUBLISHERS,
    TRANSFER,
    add_market_types,
)
from liquidfab.market.names import name_problem, skeleton
from liquidfab.market.territories import may_publish

__all__ = [
    "ACCEPT",
    "CLAIM",
    "DEFAULT",
    "FEE_SCHEDULE",
    "NOTICE_DAYS",
    "PUBLISHERS",
    "TRANSFER",
    "FeeSchedule",
    "add_market_types",
    "in_force",
    "may_publish",
    "name_problem",
    "skeleton",
    "split",
]
