"""Rollouts on a served world with real device agents: waves, late joiners, the error
threshold with its minimum sample, the rate cap, and pause, resume and abort."""

from __future__ import annotations

from fleet_support import PRODUCT, Fleet

from liquidfab.fleet.messages import ROLLOUT, ROLLOUT_CONTROL
from liquidfab.protocol import sign_message


def _start(fleet: Fleet, info, rollout: str = "r-1", **over) -> dict:
    return fleet.start_rollout(info, rollout, **over)


def _control(fleet: Fleet, action: str, key=None, rollout: str = "r-1") -> dict:
    data = {"rollout": rollout, "action": action}
    return fleet.send(sign_message(key or fleet.maker, ROLLOUT_CONTROL, data))


def _rollout(fleet: Fleet, rollout: str = "r-1") -> dict:
    return fleet.rollout(rollout)


def _devices(fleet: Fleet, n: int, **agent) -> list:
    out = []
    for i in range(n):
        folder, key = fleet.device(f"bike-{i}")
        out.append((fleet.agent(folder, **agent), key))
    return out


def _assigned(fleet: Fleet, devices) -> int:
    return sum(
        fleet.client.get(f"/v1/devices/{key.did}/assignment").status_code == 200
        for _, key in devices
    )


def test_waves_follow_success_and_late_devices_join(fleet):
    devices = _devices(fleet, 10)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    started = _start(fleet, info)["result"]
    assert started["state"] == "running" and started["progress"] == {"0": {"assigned": 2}}
    assert _assigned(fleet, devices) == 2
    for agent, _ in devices:
        agent.poll()  # the two of wave 0 install and report; that opens wave 1
    rollout = _rollout(fleet)
    assert rollout["wave"] == 1 and _assigned(fleet, devices) == 10
    for agent, _ in devices:
        agent.poll()
    rollout = _rollout(fleet)
    assert rollout["progress"] == {"0": {"succeeded": 2}, "1": {"succeeded": 8}}
    assert all(agent.state.running["version"] == "1.1.0" for agent, _ in devices)
    # a device registered now joins the running rollout
    (late, late_key) = _devices(fleet, 1)[0]
    assert _assigned(fleet, [(late, late_key)]) == 1
    assert late.poll() == "COMMITTED"
    assert _rollout(fleet)["progress"]["1"] == {"succeeded": 9}


def test_too_many_failures_pause_the_rollout_after_the_minimum_sample(fleet):
    devices = _devices(fleet, 10, health=lambda slot, target: False)
    info = fleet.publish("trail/fw-bad.bin", b"does not boot", "1.1.0")
    _start(fleet, info, waves=[50, 100], success_threshold=0.5)
    for agent, _ in devices:
        agent.poll()
    rollout = _rollout(fleet)
    assert rollout["state"] == "paused" and "error threshold" in rollout["reason"]
    assert rollout["wave"] == 0 and _assigned(fleet, devices) == 5  # wave 1 never started
    assert all(agent.state.active == "a" for agent, _ in devices)  # every one rolled back
    # resuming re-checks the thresholds: still too many failures
    assert _control(fleet, "resume")["result"]["state"] == "paused"
    assert _control(fleet, "abort")["result"]["state"] == "aborted"
    refused = _control(fleet, "resume")
    assert refused["code"] == "transition-invalid" and refused["state"] == "aborted"


def test_the_rate_cap_limits_assignments_per_minute(fleet):
    devices = _devices(fleet, 6)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    _start(fleet, info, waves=[100], rate_per_minute=4)
    assert _assigned(fleet, devices) == 4
    for agent, _ in devices:
        agent.poll()  # reports within the same minute assign no more
    assert _assigned(fleet, devices) == 4
    assert _rollout(fleet)["progress"] == {"0": {"succeeded": 4}}


def test_pause_stops_new_assignments_and_only_the_maker_controls(fleet):
    devices = _devices(fleet, 5)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    _start(fleet, info)
    assert _control(fleet, "pause")["result"]["state"] == "paused"
    for agent, _ in devices:
        agent.poll()
    assert _assigned(fleet, devices) == 1  # 20% of 5, nothing more while paused
    assert _control(fleet, "pause")["code"] == "transition-invalid"
    assert _control(fleet, "resume", key=fleet.owner)["code"] == "unauthorized"
    assert _control(fleet, "resume")["result"]["state"] == "running"
    assert _assigned(fleet, devices) == 5
    assert _control(fleet, "abort", rollout="nope")["code"] == "not-found"


def test_bad_rollouts_are_refused(fleet):
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    assert _start(fleet, info, waves=[50, 40])["code"] == "schema-invalid"
    assert _start(fleet, info, waves=[50])["code"] == "schema-invalid"
    other = {"product": "com.other", "hardware": "x", "version": "1", "kind": "firmware"}
    bad = _start(
        fleet,
        info,
        filter={"product": PRODUCT},
        target={"name": info.name, "sha256": info.sha256, "length": info.length, "custom": other},
    )
    assert bad["code"] == "incompatible"
    owner = sign_message(fleet.owner, ROLLOUT, {
        "rollout": "r-x", "name": "x", "target": {"name": info.name, "sha256": info.sha256,
        "length": info.length, "custom": dict(info.custom)}, "filter": {"product": PRODUCT},
        "waves": [100]})  # fmt: skip
    assert fleet.send(owner)["code"] == "unauthorized"
    assert "result" in _start(fleet, info)
    assert _start(fleet, info)["code"] == "conflict"
    assert fleet.client.get("/v1/rollouts/none").status_code == 404
    assert [r["id"] for r in fleet.client.get("/v1/rollouts").json()] == ["r-1"]


def test_a_wave_finished_below_the_success_threshold_pauses_until_resumed(fleet):
    devices = _devices(fleet, 4, health=lambda slot, target: False)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    _start(fleet, info, waves=[50, 100], success_threshold=0.5, error_threshold=1.0)
    for agent, _ in devices:
        agent.poll()  # the two of wave 1 roll back
    rollout = _rollout(fleet)
    assert rollout["state"] == "paused" and rollout["wave"] == 0
    assert "below the success threshold" in rollout["reason"]
    assert _assigned(fleet, devices) == 2  # wave 2 waits
    assert "result" in _control(fleet, "resume")
    rollout = _rollout(fleet)
    assert rollout["state"] == "running" and rollout["wave"] == 1
    assert _assigned(fleet, devices) == 4
