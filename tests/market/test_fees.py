"""The fee schedule: one signed, versioned split, 85/10/5 until an operator publishes
another, which takes effect only after the notice period and splits every amount
exactly. Every refusal changes nothing."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liquidfab.market.fees import DEFAULT, NOTICE_DAYS, FeeSchedule, in_force, split
from liquidfab.market.messages import FEE_SCHEDULE
from liquidfab.protocol import CONTENT_TYPE, sign_message

DAY_US = 86_400_000_000


def _publish(client, key, **change) -> dict:
    effective = time.time_ns() // 1000 + (NOTICE_DAYS + 1) * DAY_US
    data = {"version": 1, "creator_bp": 8_000, "manufacturer_bp": 1_200, "platform_bp": 800,
            "effective_us": effective, **change}  # fmt: skip
    message = sign_message(key, FEE_SCHEDULE, data)
    return client.post(
        "/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
    ).json()


def test_the_default_split_is_85_10_5_until_another_takes_effect(world):
    node, client, keys = world
    fees = client.get("/v1/market/fees").json()
    assert fees["in_force"]["version"] == 0 and fees["notice_days"] == NOTICE_DAYS
    assert (fees["in_force"]["creator_bp"], fees["in_force"]["manufacturer_bp"],
            fees["in_force"]["platform_bp"]) == (8_500, 1_000, 500)  # fmt: skip
    published = _publish(client, keys.get("operator"))["result"]
    assert published["version"] == 1 and published["in_force_now"] == 0  # announced only
    fees = client.get("/v1/market/fees").json()
    assert fees["in_force"]["version"] == 0 and [a["version"] for a in fees["announced"]] == [1]
    later = published["effective_us"]
    assert node.database.read(lambda c: in_force(c, later - 1)).version == 0
    assert node.database.read(lambda c: in_force(c, later)).creator_bp == 8_000


@pytest.mark.parametrize(
    ("key", "change", "code"),
    [
        ("voltwerk", {}, "unauthorized"),  # a manufacturer does not set the split
        ("operator", {"effective_us": 0}, "notice-too-short"),
        ("operator", {"version": 2}, "stale-version"),
        ("operator", {"platform_bp": 900}, "malformed"),  # 100.01%
    ],
)
def test_bad_fee_changes_are_refused_and_change_nothing(world, key, change, code):
    node, client, keys = world
    before = node.database.snapshot()["fee_schedules"]
    refused = _publish(client, keys.get(key), **change)
    assert refused["code"] == code, refused
    assert node.database.snapshot()["fee_schedules"] == before


def test_a_change_before_its_notice_period_is_refused_naming_the_earliest(world):
    _, client, keys = world
    soon = time.time_ns() // 1000 + (NOTICE_DAYS - 1) * DAY_US
    refused = _publish(client, keys.get("operator"), effective_us=soon)
    assert refused["code"] == "notice-too-short" and refused["earliest_us"] > soon


def test_versions_follow_one_another_and_never_go_back_in_time(world):
    _, client, keys = world
    first = _publish(client, keys.get("operator"))["result"]
    earlier = _publish(client, keys.get("operator"), version=2,
                       effective_us=first["effective_us"] - 1)  # fmt: skip
    assert earlier["code"] == "notice-too-short"
    second = _publish(client, keys.get("operator"), version=2,
                      effective_us=first["effective_us"] + DAY_US)  # fmt: skip
    assert second["result"]["version"] == 2


@given(st.integers(min_value=0, max_value=10**15))
def test_a_split_is_exact(amount):
    creator, manufacturer, platform = split(DEFAULT, amount)
    assert creator + manufacturer + platform == amount
    assert manufacturer == amount * 1_000 // 10_000 and platform == amount * 500 // 10_000
    odd = FeeSchedule(1, 7_001, 2_333, 666, 0)
    assert sum(split(odd, amount)) == amount
