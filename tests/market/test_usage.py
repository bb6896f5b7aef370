"""Per-use apps: devices sign usage records, the node settles them in batches through
the owner's mandate, and 100,000 records settle to the exact total. Replayed, forged,
late and unentitled records change nothing."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import pytest
from market_support import COACH, Market
from sqlalchemy import func, select

from liquidfab.db.tables import market_usage
from liquidfab.market import fees
from liquidfab.market.billing import run_billing
from liquidfab.market.messages import USAGE
from liquidfab.protocol import sign_message

UNIT = 123  # base units per call: 0.000123 LQD
VOICE = {**COACH, "app": "@acme-ai/voice", "kind": "ai-skill", "title": "Voice assistant",
         "pricing": {"model": "per-use", "amount": "0.000123",
                     "meter": {"unit": "calls", "aggregate": "sum"}}}  # fmt: skip


@pytest.fixture
def metered(market: Market):
    assert "result" in market.list_app(market.acme, VOICE)
    assert "result" in market.release(market.acme, VOICE, "1.0.0", b"voice")
    folder, device = market.device()
    mandate = market.mandate(market.owner, 10**12)
    sub = market.subscribe(VOICE["app"], device, mandate, "s-voice")
    assert sub["result"]["model"] == "per-use", sub
    return market, device, folder


def _records(n: int, start: int, rng: random.Random, now_us: int) -> list[dict]:
    return [{"id": f"r-{start + i}", "quantity": rng.randint(1, 5),
             "at_us": now_us - rng.randint(0, 10**9)} for i in range(n)]  # fmt: skip


def _usage(market: Market, device, records: list[dict], key=None) -> dict:
    message = sign_message(key or device, USAGE, {"app": VOICE["app"], "records": records})
    outcome = market.node.submit(message)
    return outcome.body


def _open(market: Market) -> int:
    u = market_usage.c
    return market.node.database.read(
        lambda c: c.execute(select(func.count()).where(u.batch.is_(None))).scalar_one()
    )


def test_a_hundred_thousand_records_settle_to_the_exact_total(metered):
    market, device, _ = metered
    rng = random.Random(8)
    now = time.time_ns() // 1000
    before = (market.wallet(market.owner), market.wallet(market.acme),
              market.wallet(market.maker), market.platform())  # fmt: skip
    quantities = 0
    batches = []
    for half in range(2):  # two settlement batches of 50,000 records
        for m in range(50):
            records = _records(1000, half * 50_000 + m * 1000, rng, now)
            quantities += sum(r["quantity"] for r in records)
            assert _usage(market, device, records)["result"]["recorded"] == 1000
        assert run_billing(market.node) == {"settled": 1}
        batches.append(quantities)
    assert _open(market) == 0
    total = quantities * UNIT
    spent = before[0] - market.wallet(market.owner)
    assert spent == total
    shares = [fees.split(fees.DEFAULT, q * UNIT) for q in (batches[0], batches[1] - batches[0])]
    assert market.wallet(market.acme) - before[1] == shares[0][0] + shares[1][0]
    assert market.wallet(market.maker) - before[2] == shares[0][1] + shares[1][1]
    assert market.platform() - before[3] == shares[0][2] + shares[1][2]
    assert sum(map(sum, shares)) == total
    earned = market.client.get(f"/v1/market/creators/{market.acme.did}/earnings").json()
    assert earned["apps"][VOICE["app"]] == {"gross": total, "earned": shares[0][0] + shares[1][0],
                                            "charges": 2}  # fmt: skip
    assert run_billing(market.node) == {}  # nothing open: no empty batch
    assert market.node.ledger.verify().ok


def test_replayed_forged_late_and_unentitled_records_change_nothing(metered):
    market, device, _ = metered
    now = time.time_ns() // 1000
    rng = random.Random(1)
    first = _records(10, 0, rng, now)
    assert _usage(market, device, first)["result"]["recorded"] == 10
    _, other = market.device("other")  # a bike without the subscription
    cases = [
        (_usage(market, device, first[:3] + _records(2, 100, rng, now)), "duplicate-record"),
        (_usage(market, device, [first[0] | {"id": "dup"}, first[1] | {"id": "dup"}]),
         "duplicate-record"),
        (_usage(market, device, [{"id": "late", "quantity": 1,
                                  "at_us": now - 36 * 86_400_000_000}]), "out-of-window"),
        (_usage(market, device, [{"id": "ahead", "quantity": 1,
                                  "at_us": now + 600_000_000}]), "out-of-window"),
        (_usage(market, device, _records(2, 200, rng, now), key=market.owner), "not-entitled"),
        (_usage(market, device, _records(2, 300, rng, now), key=other), "not-entitled"),
    ]  # fmt: skip
    assert [b.get("code") for b, _ in cases] == [c for _, c in cases]
    assert _open(market) == 10
    # a replay of the very message is answered with its first receipt, not counted twice
    message = sign_message(
        device, USAGE, {"app": VOICE["app"], "records": _records(5, 400, rng, now)}
    )
    assert market.node.submit(message).body["result"]["recorded"] == 5
    market.node.submit(message)
    assert _open(market) == 15


def test_a_failed_settlement_keeps_the_records_and_then_lapses(metered, monkeypatch):
    market, device, folder = metered
    now = time.time_ns() // 1000
    assert "result" in _usage(market, device, _records(100, 0, random.Random(2), now))
    # the owner revokes the mandate: the settlement fails, the records stay open
    mandate = market.client.get("/v1/market/subscriptions").json()[0]["mandate"]
    from liquidfab.ledger.messages import MANDATE

    revoke = sign_message(market.owner, MANDATE, {"action": "revoke", "mandate": mandate})
    assert "result" in market.send(revoke)
    assert run_billing(market.node) == {"grace": 1}
    assert _open(market) == 100
    sub = market.client.get("/v1/market/subscriptions").json()[0]
    assert sub["status"] == "grace" and "no live mandate" in sub["last_error"]
    later = now + 8 * 86_400_000_000
    market.node.dispatcher.clock = lambda: later / 1_000_000
    assert run_billing(market.node, later) == {"lapsed": 1}
    moment = datetime.fromtimestamp(later / 1_000_000, UTC)
    data = {"app": VOICE["app"], "records": [{"id": "after", "quantity": 1, "at_us": later}]}
    body = market.node.submit(sign_message(device, USAGE, data, time=moment)).body
    assert body["code"] == "not-entitled"  # the subscription lapsed

    monkeypatch.setattr(market.node, "license_clock", lambda: later)
    agent = market.agent(folder)
    agent.poll(later)
    assert not agent.app_enabled(VOICE["app"])
