"""`liquidfab market simulate` lives months of a subscription on the world's node: the
failed charge's grace and lapse, the device disabling the app, the re-subscription, the
exact split, and a ledger that `liquidfab ledger verify` passes afterwards."""

from __future__ import annotations

from market_support import copy_world
from typer.testing import CliRunner

from liquidfab.cli import app

runner = CliRunner()


def test_months_of_a_subscription_with_a_failed_charge(tmp_path):
    world = copy_world(tmp_path, market=True)
    result = runner.invoke(
        app, ["market", "simulate", "--world", str(world), "--months", "4", "--fail-month", "3"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "charges: 4," in out  # months 1, 2 and, after the lapse, 2 more
    assert "day 60: a charge failed, grace began" in out
    assert "day 67: lapsed, the device disabled the app" in out
    assert "day 70: subscribed again, the app back on the device" in out
    assert "the app ran on 118 of 121 days" in out
    assert "split: exact; ledger verify: ok" in out
    verified = runner.invoke(app, ["ledger", "verify", "--world", str(world)])
    assert verified.exit_code == 0 and "ok" in verified.output, verified.output


def test_an_app_not_sold_by_subscription_is_refused_clearly(tmp_path):
    world = copy_world(tmp_path, market=True)
    result = runner.invoke(
        app, ["market", "simulate", "--world", str(world), "--app", "@trailcraft/range-boost"]
    )
    assert result.exit_code == 1 and "not sold by subscription (one-time)" in result.output
