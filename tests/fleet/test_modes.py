"""How an update is installed: download-only, soft (the owner consents), maintenance
windows, named groups, and the poll answer that tells a device something moved."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from liquidfab.fleet.rollout_messages import CONSENT, GROUP
from liquidfab.fleet.windows import in_window, window_problem
from liquidfab.protocol import sign_message


def _image(folder, slot: str) -> bytes:
    return (folder / "slots" / slot / "image").read_bytes()


def _window_opening_in(hours: int) -> dict:
    opens = datetime.now(UTC) + timedelta(hours=hours)
    return {"start": opens.strftime("%H:%M"), "minutes": 60, "timezone": "UTC"}


def test_download_only_holds_the_verified_download_and_counts_as_done(fleet):
    folder, key = fleet.device()
    agent = fleet.agent(folder)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    started = fleet.start_rollout(info, waves=[100], mode="download-only")["result"]
    assert started["population"] == 1
    assert agent.poll() == "VERIFIED" and agent.state.waiting == "download-only"
    assert agent.state.active == "a" and _image(folder, "a") == b"factory image"
    reported = fleet.twin(key)["reported"]
    assert reported["downloaded"] == info.name and reported["firmware"] == "1.0.0"
    rollout = fleet.rollout()
    assert rollout["succeeded"] == 1 and rollout["progress"] == {"0": {"succeeded": 1}}
    assert agent.poll() == "VERIFIED"  # it stays held
    # a forced assignment of the same target installs the download held
    fleet.assign(key, info)
    downloads = []
    real = agent.fetch
    agent.fetch = lambda path: downloads.append(path) or real(path)
    assert agent.poll() == "COMMITTED" and _image(folder, "b") == b"firmware 1.1.0"
    assert not any("/tuf/targets/" in p for p in downloads)


def test_a_soft_update_waits_for_the_owner_and_only_the_owner(fleet):
    folder, key = fleet.device()
    agent = fleet.agent(folder)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    counter = fleet.assign(key, info, mode="soft")["result"]["counter"]
    assert agent.poll() == "VERIFIED" and agent.state.waiting == "consent"
    assert fleet.twin(key)["reported"]["waiting"] == "consent"
    before = fleet.node.database.snapshot()
    maker = fleet.send(sign_message(fleet.maker, CONSENT, {"device": key.did, "counter": counter}))
    assert maker["code"] == "unauthorized"
    stale = fleet.send(
        sign_message(fleet.owner, CONSENT, {"device": key.did, "counter": counter + 1})
    )
    assert stale["code"] == "stale-version" and stale["current"] == counter
    assert fleet.node.database.snapshot()["assignments"] == before["assignments"]
    yes = fleet.send(sign_message(fleet.owner, CONSENT, {"device": key.did, "counter": counter}))
    assert yes["result"]["counter"] == counter + 1
    again = fleet.send(
        sign_message(fleet.owner, CONSENT, {"device": key.did, "counter": counter + 1})
    )
    assert again["code"] == "transition-invalid"  # consent is given once
    assert agent.poll() == "COMMITTED" and agent.state.waiting is None
    assert fleet.twin(key)["reported"]["firmware"] == "1.1.0"


def test_consent_to_a_forced_assignment_is_refused(fleet):
    _, key = fleet.device()
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    counter = fleet.assign(key, info)["result"]["counter"]
    refused = fleet.send(
        sign_message(fleet.owner, CONSENT, {"device": key.did, "counter": counter})
    )
    assert refused["code"] == "transition-invalid"


def test_an_install_waits_for_its_maintenance_window(fleet):
    folder, key = fleet.device()
    agent = fleet.agent(folder)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    window = _window_opening_in(6)
    assert "result" in fleet.assign(key, info, window=window)
    assert agent.poll() == "VERIFIED" and agent.state.waiting == "window"
    assert agent.state.active == "a"
    inside = time.time_ns() // 1000 + 6 * 3600 * 1_000_000 + 60_000_000
    assert agent.poll(now_us=inside) == "COMMITTED" and agent.state.active == "b"


def test_a_new_target_replaces_the_download_held(fleet):
    folder, key = fleet.device()
    agent = fleet.agent(folder)
    first = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    fleet.assign(key, first, mode="soft")
    assert agent.poll() == "VERIFIED"
    second = fleet.publish("trail/fw-1.2.0.bin", b"firmware 1.2.0", "1.2.0")
    fleet.assign(key, second)
    assert agent.poll() == "COMMITTED" and _image(folder, "b") == b"firmware 1.2.0"


@pytest.mark.parametrize(
    "window",
    [
        {"start": "24:00", "minutes": 60},
        {"start": "02:00", "minutes": 0},
        {"start": "02:00", "minutes": 60, "days": ["someday"]},
        {"start": "02:00", "minutes": 60, "timezone": "Mars/Olympus"},
        {"start": "02:00", "minutes": 60, "colour": "red"},
    ],
)
def test_a_bad_window_is_refused_and_changes_nothing(fleet, window):
    _, key = fleet.device()
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    before = fleet.node.database.snapshot()
    refused = fleet.assign(key, info, window=window)
    assert refused["code"] == "schema-invalid", refused
    assert fleet.node.database.snapshot()["assignments"] == before["assignments"]


def test_windows_cross_midnight_and_keep_to_their_days():
    window = {"start": "23:00", "minutes": 120, "days": ["sat"], "timezone": "Europe/Berlin"}
    assert window_problem(window) is None

    def at(text: str) -> int:  # Berlin local time, winter (UTC+1)
        local = datetime.fromisoformat(text).replace(tzinfo=UTC) - timedelta(hours=1)
        return int(local.timestamp() * 1_000_000)

    assert in_window(window, at("2026-11-28T23:30"))  # a Saturday
    assert in_window(window, at("2026-11-29T00:30"))  # still open past midnight
    assert not in_window(window, at("2026-11-29T01:00"))  # closed at 01:00
    assert not in_window(window, at("2026-11-27T23:30"))  # a Friday
    assert in_window(None, at("2026-11-27T23:30"))


def test_a_rollout_to_a_named_group_reaches_its_members_only(fleet):
    for i in range(4):
        fleet.device(f"bike-{i}")
    made = fleet.send(
        sign_message(fleet.maker, GROUP, {"group": "all-trail", "product": "com.voltwerk.trail",
                                          "version": fleet.version})
    )  # fmt: skip
    assert made["result"] == {"group": "all-trail", "created": True, "members": 4}
    narrow = fleet.send(
        sign_message(fleet.maker, GROUP, {"group": "none", "product": "com.voltwerk.trail",
                                          "attributes": {"region": "eu"}})
    )  # fmt: skip
    assert narrow["result"]["members"] == 0
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    started = fleet.start_rollout(
        info, filter={"product": "com.voltwerk.trail", "group": "none"}, waves=[100]
    )["result"]
    assert started["population"] == 0
    grouped = fleet.start_rollout(
        info, "r-2", filter={"product": "com.voltwerk.trail", "group": "all-trail"}, waves=[100]
    )["result"]
    assert grouped["population"] == 4 and grouped["progress"] == {"0": {"assigned": 4}}
    listed = fleet.client.get("/v1/groups").json()
    assert [g["name"] for g in listed] == ["all-trail", "none"]
    assert fleet.client.get("/v1/groups/all-trail").json()["members"] == 4


def test_bad_groups_are_refused(fleet):
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    unknown = fleet.start_rollout(info, filter={"product": "com.voltwerk.trail", "group": "x"})
    assert unknown["code"] == "not-found"
    fleet.send(
        sign_message(fleet.maker, GROUP, {"group": "eu", "product": "com.voltwerk.trail",
                                          "attributes": {"region": "eu"}})
    )  # fmt: skip
    clash = fleet.start_rollout(
        info,
        filter={"product": "com.voltwerk.trail", "group": "eu", "attributes": {"region": "us"}},
    )
    assert clash["code"] == "conflicting"
    stranger = fleet.send(
        sign_message(fleet.owner, GROUP, {"group": "mine", "product": "com.voltwerk.trail"})
    )
    assert stranger["code"] == "unauthorized"
    assert fleet.client.get("/v1/groups/mine").status_code == 404


def test_the_poll_answer_moves_when_the_assignment_does(fleet):
    _, key = fleet.device()
    first = fleet.client.get(f"/v1/devices/{key.did}/poll").json()
    assert first["assignment"] == 0 and first["licenses"] == 0 and first["sleep_seconds"] > 0
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    counter = fleet.assign(key, info)["result"]["counter"]
    assert fleet.client.get(f"/v1/devices/{key.did}/poll").json()["assignment"] == counter
    stranger = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    unknown = fleet.client.get(f"/v1/devices/{stranger}/poll")
    assert unknown.status_code == 404


def test_the_rollout_counters_agree_with_its_devices(fleet):
    agents = []
    for i in range(6):
        folder, _ = fleet.device(f"bike-{i}")
        healthy = i % 3 != 0
        agents.append(fleet.agent(folder, health=lambda slot, target, ok=healthy: ok))
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    # wave 1 is 3 of the 6 in did order, at most 2 failing: 1 in 3 succeeds at least
    fleet.start_rollout(info, waves=[50, 100], success_threshold=0.3, error_threshold=1.0)
    for _ in range(2):
        for agent in agents:
            agent.poll()
    rollout = fleet.rollout()
    census: dict[str, int] = {}
    for statuses in rollout["progress"].values():
        for status, n in statuses.items():
            census[status] = census.get(status, 0) + n
    assert (rollout["succeeded"], rollout["failed"]) == (4, 2), rollout["reason"]
    assert census == {"succeeded": 4, "failed": 2}
    assert rollout["assigned"] == rollout["population"] == 6 and rollout["wave"] == 1
    assert rollout["complete"] and rollout["state"] == "running"  # late devices still join
    assert "complete: every device it selects" in fleet.client.get("/rollouts/r-1").text
    folder, _ = fleet.device("late")
    assert not fleet.rollout()["complete"]  # a device registered later is assigned


def test_a_poll_answer_that_hides_new_work_is_seen_through_within_the_hour(fleet):
    folder, key = fleet.device()
    agent = fleet.agent(folder)
    assert agent.poll() == "IDLE"
    stale = fleet.fetch(f"/v1/devices/{key.did}/poll")
    fleet.assign(key, fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0"))
    real = agent.fetch
    forged = json.dumps({**json.loads(stale), "sleep_seconds": 10**9}).encode()
    agent.fetch = lambda path: forged if path.endswith("/poll") else real(path)
    now = time.time_ns() // 1000
    assert agent.poll(now_us=now) == "IDLE"  # the unsigned answer hides the work for now
    assert agent.sleep_seconds == 3600  # and cannot put the device to sleep for long
    assert agent.poll(now_us=now + 3601 * 1_000_000) == "COMMITTED"  # the hourly check
