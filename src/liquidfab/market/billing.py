"""The node's billing round: charge the subscriptions that are due and settle per-use
records, each as a signed message of the node's, so every charge is in the message log
like any other act.

A period is due when it has ended. A subscription in grace is tried again at most once
a day (``RETRY_US``) and lapses when its grace is over. Per-use subscriptions settle
their open records in one batch per round. ``liquidfab up`` runs a round every minute
(``BillingLoop``); a simulation calls ``run_billing`` with its own clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from liquidfab.db.tables import market_subscriptions as subs
from liquidfab.db.tables import market_usage
from liquidfab.market.messages import BILL, SETTLE_USAGE
from liquidfab.protocol import sign_message, uuid7

__all__ = ["RETRY_US", "BillingLoop", "due", "run_billing"]

RETRY_US = 86_400_000_000
log = logging.getLogger(__name__)


def due(
    conn: Connection, now_us: int, only: str | None = None
) -> tuple[list[tuple[str, int]], list[str]]:
    """(subscription, period) pairs to bill now, and per-use subscriptions with open
    records to settle; ``only`` limits both to one subscription."""
    s = subs.c
    query = (
        select(s.id, s.periods_paid, s.status, s.updated_us, s.grace_until_us, s.model)
        .where(s.status.in_(("active", "grace")), s.period_end_us <= now_us)
        .order_by(s.period_end_us, s.id)
    )
    if only is not None:
        query = query.where(s.id == only)
    bills = [
        (r.id, r.periods_paid + 1)
        for r in conn.execute(query)
        if r.model != "per-use"  # the terms it started under: per use settles its records
        and (
            r.status == "active" or now_us - r.updated_us >= RETRY_US or now_us >= r.grace_until_us
        )
    ]
    u = market_usage.c
    open_pairs = set(conn.execute(select(u.app, u.device).where(u.batch.is_(None)).distinct()))
    metered = select(s.id, s.app, s.device, s.status, s.updated_us).where(
        s.model == "per-use", s.status.in_(("active", "grace", "cancelled"))
    )
    if only is not None:
        metered = metered.where(s.id == only)
    usage = [
        r.id
        for r in conn.execute(metered)
        if (r.app, r.device) in open_pairs
        and (r.status != "grace" or now_us - r.updated_us >= RETRY_US)
    ]
    return bills, usage


def run_billing(node: Any, now_us: int | None = None, only: str | None = None) -> Counter[str]:
    """One billing round on ``node`` at ``now_us`` (``only``: for one subscription); how
    the subscriptions came out (active, grace, lapsed, cancelled, settled, refused,
    failed). One subscription's failure does not stop the others'."""
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    moment = datetime.fromtimestamp(now_us / 1_000_000, UTC)
    bills, usage = node.database.read(lambda c: due(c, now_us, only))
    out: Counter[str] = Counter()
    work = [(BILL, {"subscription": sub, "period": period}) for sub, period in bills]
    work += [(SETTLE_USAGE, {"batch": f"b-{uuid7()}", "subscription": sub}) for sub in usage]
    for kind, data in work:
        try:
            outcome = node.submit(sign_message(node.key, kind, data, time=moment))
        except Exception:  # one subscription's trouble must not stop the round
            log.exception("billing %s failed", data["subscription"])
            out["failed"] += 1
            continue
        result = outcome.body.get("result", {}) if outcome.accepted else {}
        if kind == SETTLE_USAGE and "amount" in result:
            out["settled"] += 1
        else:
            out[result.get("status", "refused")] += 1
    return out


class BillingLoop:
    """Runs ``run_billing`` every ``seconds`` in a daemon thread until stopped."""

    def __init__(self, node: Any, seconds: float = 60.0) -> None:
        self.node = node
        self.sync = getattr(node, "market_sync", None)
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="billing", daemon=True)

    def start(self) -> BillingLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                run_billing(self.node)
                if self.sync is not None:  # the online market role, re-signed before it ages
                    self.sync.sync()
            except Exception:  # a round that fails is tried again next time
                log.exception("the billing round failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
