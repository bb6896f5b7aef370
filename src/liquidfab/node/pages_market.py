"""The market's rooms of the dashboard: the store (apps listed, searched, and how to buy
one) and a creator's page (their territory, apps and earnings).

Read-only and unauthenticated, like the fleet pages. The browser holds no keys, so an
app's page shows the command that signs and sends the purchase rather than a button.
Prices and earnings are exact: base units of LQD (6 decimals) are formatted as text,
never through floats. The store pages in app-name order (``after`` = the last app seen),
as ``GET /v1/market/apps`` does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, func, select

from liquidfab.db.tables import market_earnings, market_listings
from liquidfab.ledger import format_amount
from liquidfab.market import listings, territories
from liquidfab.market.listings import Pricing
from liquidfab.market.purchases import LEDGER
from liquidfab.node.pages_production import display_names, render_page

__all__ = ["PERIOD_US", "earnings_chart", "lqd", "price_text", "router"]

router = APIRouter(include_in_schema=False)
PAGE = 50
APPS_SHOWN = 200
PERIOD_US = 30 * 86_400_000_000  # the earnings buckets of purchases.earnings
PERIODS_SHOWN = 12
Text = Annotated[str | None, Query(max_length=100)]


def lqd(units: int) -> str:
    """Base units as LQD with 2 to 6 decimals: 19990000 is 19.99, 5000000 is 5.00."""
    text = format_amount(units, 6)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _singular(unit: str) -> str:
    return unit[:-1] if len(unit) > 3 and unit.endswith("s") and not unit.endswith("ss") else unit


def price_text(pricing: Mapping[str, Any]) -> str:
    """A listing's price as a buyer reads it: ``4.99 LQD / month``, ``free``."""
    p = Pricing.model_validate(pricing)
    amount = f"{lqd(p.units())} {LEDGER}"
    if p.model == "free":
        return "free"
    if p.model == "one-time":
        return f"{amount} once"
    if p.model == "subscription":
        return f"{amount} / {p.period}"
    if p.model == "trial-then-paid":
        days = "1 day" if p.trial_days == 1 else f"{p.trial_days} days"
        return f"trial {days} then {amount} / {p.period}"
    return f"{amount} per {_singular(p.meter.unit) if p.meter else 'use'}"  # per-use


def _entry(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    found = listings.latest_release(conn, row["app"])
    return {
        **row,
        "latest": found["version"] if found else None,
        "price": price_text(row["pricing"]),
    }


def _query(**params: str | None) -> str:
    pairs = [(k, v) for k, v in params.items() if v]
    return "?" + urlencode(pairs) if pairs else ""


@router.get("/store", response_class=HTMLResponse)
def store_page(
    request: Request,
    q: Text = None,
    product: Annotated[str | None, Query(max_length=200)] = None,
    after: Text = None,
) -> HTMLResponse:
    q, product = (q or "").strip() or None, product or None  # an empty form field: no filter

    def load(conn: Connection) -> tuple[Any, ...]:
        rows = listings.list_listings(conn, product=product, q=q, after=after, limit=PAGE + 1)
        products = conn.execute(
            select(market_listings.c.product).distinct().order_by(market_listings.c.product)
        ).scalars()
        total = conn.execute(select(func.count()).select_from(market_listings)).scalar_one()
        return [_entry(conn, r) for r in rows], list(products), int(total)

    rows, products, total = request.app.state.node.database.read(load)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render_page(
        request,
        "store.html",
        apps=rows,
        products=products,
        total=total,
        q=q,
        product=product,
        filtered=bool(q or product),
        later=_query(q=q, product=product, after=rows[-1]["app"]) if more else None,
        first=_query(q=q, product=product) if after else None,
    )


def _buy_command(app: str, model: str, node_url: str) -> str:
    """What the device's owner runs: a free or one-time app is bought, the rest subscribed
    (as the quote's ``message`` says); a per-use app names the most it may charge."""
    verb = "buy" if model in ("free", "one-time") else "subscribe"
    cap = " --cap LQD" if model == "per-use" else ""
    return f"liquidfab market {verb} --app {app} --device DID --key KEY{cap} --node {node_url}"


@router.get("/store/{territory}/{slug}", response_class=HTMLResponse)
def app_page(request: Request, territory: str, slug: str) -> HTMLResponse:
    app = f"{territory}/{slug}"

    def load(conn: Connection) -> tuple[Any, ...] | None:
        row = listings.get_listing(conn, app) if len(app) <= 100 else None
        if row is None:
            return None
        return _entry(conn, row), listings.releases_of(conn, app), display_names(conn)

    found = request.app.state.node.database.read(load)
    if found is None:
        return render_page(request, "store_app.html", 404, listing=None, app=app)
    row, releases, names = found
    model = row["pricing"]["model"]
    node_url = str(request.base_url).rstrip("/")
    return render_page(
        request,
        "store_app.html",
        listing=row,
        releases=releases,
        names=names,
        model=model,
        subscribes=model not in ("free", "one-time"),
        command=_buy_command(app, model, node_url),
        api=f"/v1/market/apps/{app}",
    )


# --- a creator's page -----------------------------------------------------------------------


def _earnings(conn: Connection, territory: str, creator: str) -> dict[str, Any]:
    """What ``creator`` earned from the territory's apps: in all, per app and per period
    (as ``purchases.earnings`` counts them, but only this territory's apps)."""
    e = market_earnings.c
    rows = conn.execute(
        select(e.app, e.at_us, e.gross, e.creator_amount).where(
            e.creator == creator, e.app.startswith(f"{territory}/", autoescape=True)
        )
    ).all()
    apps: dict[str, dict[str, int]] = {}
    periods: dict[int, int] = {}
    for app, at_us, gross, amount in rows:
        a = apps.setdefault(app, {"gross": 0, "earned": 0, "charges": 0})
        a["gross"] += gross
        a["earned"] += amount
        a["charges"] += 1
        start = at_us // PERIOD_US * PERIOD_US
        periods[start] = periods.get(start, 0) + amount
    earned = sum(a["earned"] for a in apps.values())
    return {"earned": earned, "charges": len(rows), "apps": apps, "periods": periods}


def _day(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def earnings_chart(periods: Mapping[int, int], now_us: int) -> dict[str, Any] | None:
    """Bars of the last periods up to now, empty ones included so the time axis is even;
    None before the first earning. Geometry in the SVG's own units (640 by 220)."""
    if not periods:
        return None
    last = max(max(periods), now_us // PERIOD_US * PERIOD_US)
    first = max(min(periods), last - (PERIODS_SHOWN - 1) * PERIOD_US)
    starts = range(first, last + 1, PERIOD_US)
    peak = max(periods.get(s, 0) for s in starts)  # 0: nothing earned in these periods
    top = peak or 1
    left, width, base, height = 64, 566, 190, 170
    slot = width / len(starts)
    bar_width = min(slot * 0.7, 60)
    bars = []
    for i, start in enumerate(starts):
        earned = periods.get(start, 0)
        h = round(height * earned / top, 2)
        day = _day(start)
        bars.append(
            {
                "start_us": start,
                "earned": earned,
                "x": round(left + i * slot + (slot - bar_width) / 2, 2),
                "y": round(base - h, 2),
                "width": round(bar_width, 2),
                "height": h,
                "centre": round(left + (i + 0.5) * slot, 2),
                "label": day.strftime("%b %d") if len(starts) <= 8 or i % 2 == 0 else "",
                "title": f"{lqd(earned)} LQD in the 30 days from {day:%Y-%m-%d}",
            }
        )
    return {"bars": bars, "top": lqd(peak), "left": left, "right": left + width, "base": base,
            "ceiling": base - height}  # fmt: skip


@router.get("/creators/{territory}", response_class=HTMLResponse)
def creator_page(request: Request, territory: str) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...] | None:
        row = territories.get_territory(conn, territory) if len(territory) <= 40 else None
        if row is None:
            return None
        apps = listings.list_listings(conn, territory=territory, limit=APPS_SHOWN)
        return (
            row,
            [_entry(conn, a) for a in apps],
            _earnings(conn, territory, row["owner"]),
            display_names(conn),
        )

    found = request.app.state.node.database.read(load)
    if found is None:
        return render_page(request, "creator.html", 404, territory=None, name=territory)
    row, apps, earned, names = found
    return render_page(
        request,
        "creator.html",
        territory=row,
        apps=apps,
        earned=earned,
        chart=earnings_chart(earned["periods"], time.time_ns() // 1000),
        names=names,
        lqd=lqd,
        limit=APPS_SHOWN,
    )
