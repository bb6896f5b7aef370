"""The market's dashboard over HTTP: the store, an app's page and a creator's page.

A copy of the e-bike world is served in process; two creators (``Market``) claim
@acme-ai and @trailworks and list an app each, trailworks releases two versions, and Ada
buys the range boost for a bike, which pays trailworks at once.
"""

from __future__ import annotations

import html
import itertools
import re
import shutil
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from liquidfab.market import fees
from liquidfab.node import create_app, open_world_node, pages_market
from liquidfab.node.pages_market import PERIOD_US, earnings_chart, lqd, price_text
from market.market_support import BOOST, COACH, Market

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ebike"
CREATOR_SHARE = fees.split(fees.DEFAULT, 19_990_000)[0]  # 16_991_500: BOOST's creator share


def copy_world(into: Path, *, market: bool = False) -> Path:
    """A copy of the e-bike world; without its market section unless ``market``, so the
    test claims and lists what it checks itself (as tests/market/conftest.py does)."""
    folder = into / "ebike"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("keys", "state"))
    if not market:
        path = folder / "world.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.pop("market", None)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def market(tmp_path) -> Market:
    folder = copy_world(tmp_path)
    node = open_world_node(folder)
    with TestClient(create_app(node)) as client:
        market = Market(folder, node, client, tmp_path)
        assert market.list_app(market.acme, COACH)["result"]["created"] is True
        assert market.list_app(market.trail, BOOST)["result"]["created"] is True
        assert "result" in market.release(market.trail, BOOST, "1.0.0", b"range boost 1.0.0")
        assert "result" in market.release(market.trail, BOOST, "1.1.0", b"range boost 1.1.0")
        yield market
    node.close()


def _text(page: str) -> str:
    """The page's text as a reader sees it: tags gone, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _row(page: str, app: str) -> str:
    found = re.search(rf'<tr data-app="{re.escape(app)}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {app}"
    return _text(found.group(1))


@pytest.mark.parametrize(
    ("pricing", "text"),
    [
        ({"model": "free"}, "free"),
        ({"model": "one-time", "amount": "19.99"}, "19.99 LQD once"),
        ({"model": "one-time", "amount": "5"}, "5.00 LQD once"),
        ({"model": "subscription", "amount": "4.99", "period": "month"}, "4.99 LQD / month"),
        ({"model": "subscription", "amount": "40", "period": "year"}, "40.00 LQD / year"),
        (
            {"model": "trial-then-paid", "amount": "9.99", "period": "month", "trial_days": 30},
            "trial 30 days then 9.99 LQD / month",
        ),
        (
            {"model": "trial-then-paid", "amount": "9.99", "period": "month", "trial_days": 1},
            "trial 1 day then 9.99 LQD / month",
        ),
        (
            {"model": "per-use", "amount": "0.01", "meter": {"unit": "minutes"}},
            "0.01 LQD per minute",
        ),
        (
            {
                "model": "per-use",
                "amount": "0.000125",
                "meter": {"unit": "call", "aggregate": "count"},
            },
            "0.000125 LQD per call",
        ),
    ],
)
def test_a_price_reads_as_a_buyer_says_it(pricing, text):
    assert price_text(pricing) == text


def test_amounts_keep_two_to_six_decimals_exactly():
    assert [lqd(n) for n in (0, 5_000_000, 19_990_000, 16_991_500, 1, 1_234_567_000_000)] == [
        "0.00", "5.00", "19.99", "16.9915", "0.000001", "1,234,567.00",
    ]  # fmt: skip


def test_the_store_lists_every_app_with_its_price_release_and_territory(market):
    page = market.client.get("/store")
    assert page.status_code == 200
    assert 'href="/rollouts">Rollouts</a><a href="/store">Store</a>' in page.text  # the nav
    assert re.search(r'data-testid="count-listed">2<', page.text)
    coach, boost = _row(page.text, COACH["app"]), _row(page.text, BOOST["app"])
    assert "AI riding coach" in coach and "ai-skill" in coach
    assert "4.99 LQD / month" in coach and "not released" in coach
    assert "Range boost" in boost and "feature" in boost
    assert "19.99 LQD once" in boost and "1.1.0" in boost and "1.0.0" not in boost
    assert 'href="/store/@trailworks/range-boost"' in page.text
    assert 'href="/creators/@acme-ai">@acme-ai</a>' in page.text
    assert page.text.index(COACH["app"]) < page.text.index(BOOST["app"])  # by app name


def test_search_and_the_product_filter_narrow_the_store(market):
    found = market.client.get("/store", params={"q": "Assist MAP"})  # BOOST's summary
    assert found.status_code == 200
    assert BOOST["app"] in found.text and COACH["app"] not in found.text
    assert 'value="Assist MAP"' in found.text and 'id="clear"' in found.text
    by_name = market.client.get("/store", params={"q": "riding-coach"}).text
    assert COACH["app"] in by_name and BOOST["app"] not in by_name
    none = market.client.get("/store", params={"q": "espresso"}).text
    assert "No app matches the search." in none and "data-app=" not in none

    product = COACH["product"]
    same = market.client.get("/store", params={"product": product, "q": ""}).text
    assert COACH["app"] in same and BOOST["app"] in same
    assert f"<option selected>{product}</option>" in same
    other = market.client.get("/store", params={"product": "org.example.lamp"}).text
    assert "data-app=" not in other


def test_the_store_pages_by_app_name(market, monkeypatch):
    monkeypatch.setattr(pages_market, "PAGE", 1)
    first = market.client.get("/store").text
    assert COACH["app"] in first and BOOST["app"] not in first
    later = re.search(r'id="later" href="/store([^"]*)"', first)
    assert later, "no next page"
    second = market.client.get("/store" + html.unescape(later.group(1))).text
    assert BOOST["app"] in second and 'id="later"' not in second
    assert '<a href="/store">First</a>' in second


def test_an_apps_page_shows_what_it_runs_on_its_releases_and_how_to_buy_it(market):
    page = market.client.get("/store/@trailworks/range-boost")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Range boost" in text and BOOST["summary"] in text
    assert "19.99 LQD once" in text
    assert f"Product {BOOST['product']}" in text and "Versions * any version" in text
    assert "Requires nothing more" in text
    versions = re.findall(r'<tr data-version="([^"]+)">', page.text)
    assert versions == ["1.1.0", "1.0.0"]  # newest first
    assert "@trailworks/range-boost/1.1.0" in page.text
    url = str(market.client.base_url).rstrip("/")
    command = (
        f"liquidfab market buy --app @trailworks/range-boost --device DID --key KEY --node {url}"
    )
    assert f'<pre id="buy-command"><code>{command}</code></pre>' in page.text
    assert "linked settlement legs" in text
    assert 'href="/v1/market/apps/@trailworks/range-boost/quote?device=DID"' in page.text

    coach = market.client.get("/store/@acme-ai/riding-coach").text
    assert "liquidfab market subscribe --app @acme-ai/riding-coach --device DID" in coach
    assert "org.liquidfab.market.subscribe" in coach and "Not released yet" in coach


def test_a_creators_page_shows_its_territory_apps_and_earnings(market):
    before = market.client.get("/creators/@trailworks")
    assert before.status_code == 200
    assert 'id="no-earnings"' in before.text and "<svg" not in before.text
    assert re.search(r'data-testid="earned">0.00 LQD<', before.text)

    _, device = market.device()
    assert "result" in market.buy(BOOST["app"], device)
    page = market.client.get("/creators/@trailworks")
    assert page.status_code == 200
    text = _text(page.text)
    assert "@trailworks" in text and "trailworks" in _text(
        re.search(r'data-testid="owner">(.*?)</span>', page.text).group(1)
    )
    assert market.trail.did in page.text
    assert "none: the owner publishes alone" in text
    assert re.search(r'data-testid="earned">16.9915 LQD<', page.text)
    assert re.search(r'data-testid="charges">1<', page.text)
    boost = _row(page.text, BOOST["app"])
    assert "19.99 LQD once" in boost and "1.1.0" in boost
    assert boost.endswith("1 19.99 16.9915")  # charges, paid by buyers, earned
    assert COACH["app"] not in page.text  # another creator's territory

    bars = re.findall(r'<rect class="bar"[^>]*>', page.text)
    assert len(bars) == 1
    assert f'data-earned="{CREATOR_SHARE}"' in bars[0]
    height = float(re.search(r'height="([\d.]+)"', bars[0]).group(1))
    assert height == 170  # the tallest bar fills the plot
    assert "16.9915 LQD in the 30 days from" in page.text

    acme = market.client.get("/creators/@acme-ai").text
    assert re.search(r'data-testid="earned">0.00 LQD<', acme) and 'id="no-earnings"' in acme
    assert "AI riding coach" in acme


def test_the_chart_spaces_periods_evenly_and_shows_the_last_twelve():
    now = 40 * PERIOD_US + 5
    chart = earnings_chart({10 * PERIOD_US: 3_000_000, 38 * PERIOD_US: 1_500_000}, now)
    bars = chart["bars"]
    assert [b["start_us"] for b in bars] == [s * PERIOD_US for s in range(29, 41)]
    heights = {b["start_us"] // PERIOD_US: b["height"] for b in bars}
    assert heights[38] == 170 and all(h == 0 for s, h in heights.items() if s != 38)
    assert chart["top"] == "1.50"
    xs = [b["x"] for b in bars]
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    assert max(gaps) - min(gaps) < 0.02 and xs[-1] + bars[-1]["width"] <= chart["right"]
    assert earnings_chart({}, now) is None
    quiet = earnings_chart({10 * PERIOD_US: 3_000_000}, now)  # earned long ago only
    assert quiet["top"] == "0.00" and {b["height"] for b in quiet["bars"]} == {0}
    two = earnings_chart({39 * PERIOD_US: 1_000_000, 40 * PERIOD_US: 500_000}, now)["bars"]
    assert [b["height"] for b in two] == [170, 85]


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/store/@trailworks/no-such-app", "No app @trailworks/no-such-app"),
        ("/store/@nobody/range-boost", "No app @nobody/range-boost"),
        ("/creators/@nobody", "No territory @nobody"),
        ("/creators/trailworks", "No territory trailworks"),
    ],
)
def test_an_unknown_app_or_territory_is_a_404_page(market, path, heading):
    page = market.client.get(path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert '<h1 class="page"' in page.text and heading in _text(page.text)
    assert 'href="/store"' in page.text


def test_the_example_worlds_own_apps_are_in_its_store(tmp_path):
    """What ``liquidfab up --world examples/ebike`` lists, the store shows, priced."""
    node = open_world_node(copy_world(tmp_path, market=True))
    with TestClient(create_app(node)) as client:
        apps = client.get("/v1/market/apps").json()
        page = client.get("/store").text
        for app in apps:
            row = _row(page, app["app"])
            assert app["title"] in row and price_text(app["pricing"]) in row
            assert (app["latest"] or "not released") in row
            creator = client.get(f"/creators/{app['territory']}")
            assert creator.status_code == 200 and app["title"] in creator.text
        assert re.search(rf'data-testid="count-listed">{len(apps)}<', page)
    node.close()
