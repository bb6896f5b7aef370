"""The fleet simulation, small: real agents against a real node process over HTTP and
through the machine's Mosquitto, with injected faults; every device keeps a working
slot, and too many failures pause the rollout at its error threshold."""

from __future__ import annotations

import json
import socket

import pytest
from fleet_support import EXAMPLE
from typer.testing import CliRunner

from liquidfab.cli import app
from liquidfab.fleet.simulate import Faults, SimulationSettings, simulate
from support import service_missing


def test_the_command_rolls_out_with_failures_and_power_losses(tmp_path):
    work = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "fleet", "simulate", "--devices", "40", "--world", str(EXAMPLE), "--work", str(work),
        "--failures", "0.1", "--power-loss", "0.2", "--poll-seconds", "1", "--waves", "50,100",
        "--success-threshold", "0.5", "--error-threshold", "0.5", "--timeout", "240",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((work / "report.json").read_text())
    assert report["outcome"] == "completed"
    assert report["without_working_slot"] == 0 and report["failed_not_on_old_image"] == 0
    injected = report["injected"]
    assert injected["install_failure"] > 0 and injected["power_loss"] > 0
    rollout = report["rollout"]
    assert rollout["assigned"] == rollout["population"] == 40
    # every device with a failing health check rolled back; every other one updated
    assert report["final"].get("rolled back", 0) == injected["install_failure"]
    assert report["final"]["updated"] == 40 - injected["install_failure"]
    assert rollout["failed"] == injected["install_failure"]
    assert (work / "states.png").stat().st_size > 10_000
    assert "without a working slot: 0" in result.output


def test_too_many_failures_pause_the_rollout_at_its_error_threshold(tmp_path):
    settings = SimulationSettings(
        devices=60, poll_seconds=1, waves=(50, 100), error_threshold=0.1, min_sample=20,
        timeout_seconds=240,
    )  # fmt: skip
    report = simulate(EXAMPLE, tmp_path / "run", settings, Faults(install_failure=0.5))
    assert report.outcome == "paused"
    assert "above the error threshold 10%" in report.rollout["reason"]
    assert report.rollout["wave"] == 0 and report.rollout["assigned"] == 30  # wave 2 never began
    assert report.final.get("factory", 0) == 30
    assert report.without_working_slot == 0 and report.failed_not_on_old_image == 0


def test_the_simulation_runs_through_mosquitto(tmp_path):
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=2).close()
    except OSError as e:
        service_missing("Mosquitto at 127.0.0.1:1883", e)
    settings = SimulationSettings(
        devices=30, transport="mqtt", poll_seconds=2, waves=(50, 100), success_threshold=0.5,
        error_threshold=0.5, timeout_seconds=240,
    )  # fmt: skip
    faults = Faults(install_failure=0.1, power_loss=0.1, corrupt_download=0.1, offline=0.1,
                    offline_seconds=3)  # fmt: skip
    report = simulate(EXAMPLE, tmp_path / "run", settings, faults)
    assert report.outcome == "completed", report.rollout
    assert report.without_working_slot == 0 and report.failed_not_on_old_image == 0
    assert report.requests["message"] > 0  # the reports went through the broker
    refused = report.final.get("refused", 0)
    assert refused == report.injected["corrupt_download"]  # TUF refused each corrupted image


@pytest.mark.parametrize("bad", [["--transport", "carrier-pigeon"], ["--waves", "10,x"]])
def test_bad_settings_are_refused_before_anything_starts(tmp_path, bad):
    work = tmp_path / "run"
    result = CliRunner().invoke(app, ["fleet", "simulate", "--devices", "5", "--world",
                                      str(EXAMPLE), "--work", str(work), *bad])  # fmt: skip
    assert result.exit_code == 1
    assert not (work / "world").exists()
