"""The device agent against a real node: assignment, TUF, A/B slots, health checks, power
loss at every step, and refusals that leave the device running what it ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from liquidfab.fleet.agent import PHASES, Agent, PowerLoss


def _image(folder: Path, slot: str) -> bytes:
    return (folder / "slots" / slot / "image").read_bytes()


def test_a_device_installs_its_assignment_into_the_other_slot_and_commits(fleet):
    folder, key = fleet.device()
    agent = fleet.agent(folder)
    assert agent.poll() == "IDLE"  # nothing assigned yet
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    assert "result" in fleet.assign(key, info)
    assert agent.poll() == "COMMITTED"
    assert agent.state.active == "b" and _image(folder, "b") == b"firmware 1.1.0"
    assert _image(folder, "a") == b"factory image"  # the old slot stays as it was
    reported = fleet.twin(key)["reported"]
    assert reported["firmware"] == "1.1.0" and reported["phase"] == "COMMITTED"
    assert agent.poll() == "COMMITTED"  # nothing new: it stays
    # the next release goes into slot a
    newer = fleet.publish("trail/fw-1.2.0.bin", b"firmware 1.2.0", "1.2.0")
    fleet.assign(key, newer)
    assert agent.poll() == "COMMITTED" and agent.state.active == "a"


def test_a_failed_health_check_rolls_back_to_the_running_slot(fleet):
    folder, key = fleet.device()
    info = fleet.publish("trail/fw-bad.bin", b"firmware that does not boot", "1.1.0")
    fleet.assign(key, info)
    agent = fleet.agent(folder, health=lambda slot, target: False)
    assert agent.poll() == "ROLLED_BACK"
    assert agent.state.active == "a" and agent.state.running["version"] == "1.0.0"
    assert not (folder / "slots" / "b").exists()
    twin = fleet.twin(key)["reported"]
    assert twin["phase"] == "ROLLED_BACK" and "health check" in twin["error"]


@pytest.mark.parametrize("phase", [p for p in PHASES[1:6]])
def test_power_loss_at_any_step_resumes_to_a_working_slot(fleet, phase):
    folder, key = fleet.device()
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    fleet.assign(key, info)
    lost = []

    def power_cut(entered: str) -> None:
        if entered == phase and not lost:
            lost.append(entered)
            raise PowerLoss(entered)

    with pytest.raises(PowerLoss):
        fleet.agent(folder, hook=power_cut).poll()
    # after the reboot the active slot still runs the factory image
    rebooted = fleet.agent(folder)
    assert rebooted.state.phase == phase and rebooted.state.active == "a"
    assert _image(folder, "a") == b"factory image"
    assert rebooted.poll() == "COMMITTED"
    assert rebooted.state.active == "b" and _image(folder, "b") == b"firmware 1.1.0"


def test_refusals_keep_the_current_version_and_say_why(fleet):
    folder, key = fleet.device()
    agent = fleet.agent(folder)
    # a target for other hardware, assigned although the device has no hardware attribute
    other = fleet.publish("trail/fw-mcu-b.bin", b"for mcu-b", "1.1.0", hardware="mcu-b")
    fleet.assign(key, other)
    assert agent.poll() == "FAILED"
    assert agent.state.active == "a" and "incompatible" in fleet.twin(key)["reported"]["error"]
    # arbitrary software: the stored target's bytes are swapped
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    stored = fleet.node.fleet_repository.repository.targets_dir / info.stored_as
    stored.write_bytes(b"evil  1.1.0!!")
    fleet.assign(key, info)
    assert agent.poll() == "FAILED"
    assert agent.state.active == "a" and _image(folder, "a") == b"factory image"
    assert fleet.twin(key)["reported"]["firmware"] == "1.0.0"
    # an older assignment replayed is refused too (the node's counter moved on)
    stored.write_bytes(b"firmware 1.1.0")
    fleet.assign(key, info)
    assert agent.poll() == "COMMITTED"
    last = agent.state.last_counter
    agent.state.last_counter = last + 5  # as if it had accepted later ones
    assert agent.poll() == "FAILED" and "replayed" in agent.state.last_error


def test_garbage_from_the_node_is_a_refusal_not_a_crash(fleet):
    folder, key = fleet.device()
    fleet.assign(key, fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0"))
    real = fleet.fetch

    def fetch(path: str) -> bytes | None:
        return b"{not json" if path.endswith("/assignment") else real(path)

    agent = Agent(folder, fetch=fetch, send=fleet.send)
    assert agent.poll() == "FAILED" and agent.state.active == "a"
    assert "malformed" in fleet.twin(key)["reported"]["error"]
