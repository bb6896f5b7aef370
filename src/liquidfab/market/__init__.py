"""Market: territories creators own (``names``, ``territories``, ``messages``). Listings,
purchases with split settlement, subscriptions and usage are still to come (issue 8)."""

from liquidfab.market.messages import ACCEPT, CLAIM, PUBLISHERS, TRANSFER, add_market_types
from liquidfab.market.names import name_problem, skeleton
from liquidfab.market.territories import may_publish

__all__ = [
    "ACCEPT",
    "CLAIM",
    "PUBLISHERS",
    "TRANSFER",
    "add_market_types",
    "may_publish",
    "name_problem",
    "skeleton",
]
