"""The device agent under attack, one attack per test (python-tuf's style): rollback,
freeze, mix-and-match, arbitrary software, an unsigned target list, endless data, a
foreign, incompatible, replayed or tampered assignment, and forged, expired and foreign
license lists.

Each test runs the real agent against the served e-bike node. The device has polled once
already (it was assigned the factory image it runs, so it holds verified TUF metadata and
a counter); then an attacker either stands between the agent and its node (a ``fetch``
that changes what the node served) or holds keys it could have stolen and changes the
node's state. Every attack is refused: the agent keeps running the factory image in slot
A, and its twin says why. Each test would fail if the agent took the bait (it would
install into slot B, enable the feature, or refuse for another reason).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from fleet_support import Fleet
from tuf.api.metadata import Metadata, TargetFile

from liquidfab.fleet import KeySigner
from liquidfab.fleet.agent import Agent
from liquidfab.fleet.messages import ENTITLEMENT
from liquidfab.fleet.repository import TargetInfo
from liquidfab.fleet.service import ONLINE_KEYS
from liquidfab.identity import SigningKey
from liquidfab.protocol import sign_message, uuid7

DAY_US = 86_400_000_000
TRIAL = "ai-riding-coach"  # a 30-day trial: licensed without a payment


class Device(NamedTuple):
    folder: Path
    key: SigningKey
    agent: Agent


def _running(fleet: Fleet, name: str = "bike") -> Device:
    """A device that polled once: assigned the factory image it runs (published), it holds
    verified TUF metadata and counter 1, and stays on slot A."""
    folder, key = fleet.device(name)
    fleet.assign(key, fleet.publish("trail/factory.bin", b"factory image", "1.0.0"))
    agent = fleet.agent(folder)
    assert agent.poll() == "IDLE" and agent.state.last_counter == 1
    assert (folder / "metadata" / "timestamp.json").is_file()
    return Device(folder, key, agent)


def _release(fleet: Fleet, device: Device, data: bytes = b"firmware 1.1.0") -> TargetInfo:
    """Release 1.1.0, published and assigned to ``device``: what the attacker interferes with."""
    info = fleet.publish("trail/fw-1.1.0.bin", data, "1.1.0")
    assert "result" in fleet.assign(device.key, info)
    return info


Answer = bytes | None | Callable[[bytes | None], bytes | None]


def _serve(agent: Agent, answers: dict[str, Answer], **poll: int) -> None:
    """Stand between the agent and its node: a path ending in a key of ``answers`` gets its
    answer (or the answer made from what the node served); the poll answer, which is not
    signed, gets ``poll``'s fields (so the agent fetches what moved)."""
    real = agent.fetch

    def fetch(path: str) -> bytes | None:
        served = real(path)
        for suffix, answer in answers.items():
            if path.endswith(suffix):
                return answer(served) if callable(answer) else answer
        if poll and path.endswith("/poll"):
            return json.dumps({**json.loads(served), **poll}).encode()
        return served

    agent.fetch = fetch


def _kept_running(fleet: Fleet, device: Device) -> dict:
    """The device still runs its factory image from slot A, slot B untouched; its twin."""
    agent = device.agent
    assert agent.state.active == "a" and agent.state.running["version"] == "1.0.0"
    assert (device.folder / "slots" / "a" / "image").read_bytes() == b"factory image"
    assert agent.state.slots["b"] is None and not (device.folder / "slots" / "b").exists()
    reported = fleet.twin(device.key)["reported"]
    assert (reported["firmware"], reported["slot"]) == ("1.0.0", "a")
    return reported


def _refused(fleet: Fleet, device: Device, reason: str) -> None:
    """The next poll refuses, naming ``reason``; the device runs on and reports why."""
    agent = device.agent
    assert agent.poll() == "FAILED"
    assert reason in agent.state.last_error, agent.state.last_error
    reported = _kept_running(fleet, device)
    assert reported["phase"] == "FAILED" and reported["error"] == agent.state.last_error


def _resign(raw: bytes, key: SigningKey, change: Callable[[Metadata], None]) -> bytes:
    md = Metadata.from_bytes(raw)
    change(md)
    md.signatures.clear()
    md.sign(KeySigner(key))
    return md.to_bytes()


def _licenses(fleet: Fleet, key: SigningKey) -> dict:
    return fleet.client.get(f"/v1/devices/{key.did}/licenses").json()


def _trial(fleet: Fleet, key: SigningKey) -> None:
    data = {"entitlement": f"e-{uuid7()}", "device": key.did, "feature": TRIAL}
    assert "result" in fleet.send(sign_message(fleet.owner, ENTITLEMENT, data))


# -- the TUF repository: what software exists -------------------------------------------


def test_rollback_to_an_older_timestamp_is_refused(fleet):
    older = fleet.fetch("/tuf/metadata/timestamp.json")  # still unexpired
    version = json.loads(older)["signed"]["version"]
    device = _running(fleet)  # it trusts a newer timestamp now
    _release(fleet, device)
    _serve(device.agent, {"/tuf/metadata/timestamp.json": older})
    _refused(fleet, device, f"New timestamp version {version} must be >= {version + 1}")


def test_a_frozen_repository_is_refused_once_its_timestamp_expired(fleet):
    # python-tuf compares the timestamp's expiry with the device's clock. Without sleeping,
    # a timestamp captured and held back until it expired is the node's own for the new
    # release, signed with the node's timestamp key but with its expiry already past.
    device = _running(fleet)
    _release(fleet, device)
    current = fleet.node.fleet_repository.repository.read("metadata/timestamp.json")

    def expired(md: Metadata) -> None:
        md.signed.expires = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)

    frozen = _resign(current, fleet.keystore.get(ONLINE_KEYS[1]), expired)
    _serve(device.agent, {"/tuf/metadata/timestamp.json": frozen})
    _refused(fleet, device, "timestamp.json is expired")


def test_mix_and_match_of_snapshot_and_targets_is_refused(fleet):
    device = _running(fleet)
    _release(fleet, device)
    repo = fleet.node.fleet_repository.repository
    version = repo._latest("snapshot").signed.meta["targets.json"].version
    older = repo.read(f"metadata/{version - 1}.targets.json")  # genuine, but not this state
    _serve(device.agent, {f"/tuf/metadata/{version}.targets.json": older})
    _refused(fleet, device, f"Expected targets v{version}, got v{version - 1}")


def test_arbitrary_software_with_a_bad_hash_is_refused(fleet):
    device = _running(fleet)
    info = _release(fleet, device)
    _serve(device.agent, {info.stored_as: b"evil  1.1.0!!!"})  # the signed length
    _refused(fleet, device, "Observed hash")


def test_endless_data_is_cut_at_the_signed_length(fleet):
    # The agent's fetch hands over whole answers, so an endless stream is modelled as one
    # far longer than the length the targets metadata signs.
    device = _running(fleet)
    info = _release(fleet, device)
    _serve(device.agent, {info.stored_as: lambda real: real + b"\0" * 1_000_000})
    _refused(fleet, device, f"exceeding the maximum allowed length of {info.length}")


def test_a_target_list_not_signed_by_the_targets_key_is_refused(fleet):
    # A stolen node holds the online snapshot and timestamp keys, not the offline targets
    # key: it lists its own software under a key of its own, and has it assigned.
    device = _running(fleet)
    repo = fleet.node.fleet_repository.repository
    data = b"evil firmware"
    evil = TargetInfo("trail/fw-9.9.9.bin", len(data), hashlib.sha256(data).hexdigest(),
                      {"product": "com.voltwerk.trail", "hardware": "mcu-a",
                       "version": "9.9.9", "kind": "firmware"})  # fmt: skip
    md = repo.targets()
    md.signed.targets[evil.name] = TargetFile(
        evil.length, {"sha256": evil.sha256}, evil.name, {"custom": dict(evil.custom)}
    )
    md.signed.version += 1
    md.signatures.clear()
    md.sign(KeySigner(SigningKey.generate()))
    repo._write(md)
    (repo.targets_dir / evil.stored_as).parent.mkdir(parents=True, exist_ok=True)
    (repo.targets_dir / evil.stored_as).write_bytes(data)
    repo._snapshot_and_timestamp(*(fleet.keystore.get(name) for name in ONLINE_KEYS[:2]))
    assert "result" in fleet.assign(device.key, evil)
    _refused(fleet, device, "targets was signed by 0/1 keys")


# -- the director's assignment: what this device should run ------------------------------


def test_an_assignment_the_repository_does_not_back_is_refused(fleet):
    # Uptane's mix-and-match between its two repositories: the assignment (the node's, or
    # a maker's key) names other bytes than the ones the offline-signed targets list.
    device = _running(fleet)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    other = hashlib.sha256(b"evil  1.1.0!!!").hexdigest()
    assert "result" in fleet.assign(device.key, replace(info, sha256=other))
    _refused(fleet, device, "mix-and-match")


def test_a_target_assigned_to_another_device_is_refused(fleet):
    device = _running(fleet)
    _, other = fleet.device("theirs")
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    fleet.assign(other, info)
    fleet.assign(other, info)  # counter 2: with their counter 1, equal to this device's
    # last, the agent would take it for "nothing new" before checking it (nothing happens)
    theirs = fleet.fetch(f"/v1/devices/{other.did}/assignment")
    _serve(device.agent, {"/assignment": theirs}, assignment=2)
    _refused(fleet, device, "other-device")


def test_a_target_for_incompatible_hardware_is_refused(fleet):
    # The node cannot tell (the device was registered without a hardware attribute), so
    # the maker's assignment of an mcu-b release reaches the device, which refuses it.
    device = _running(fleet)
    info = fleet.publish("trail/fw-mcu-b.bin", b"for mcu-b", "1.1.0", hardware="mcu-b")
    assert "result" in fleet.assign(device.key, info)
    _refused(fleet, device, "incompatible")


def test_an_older_assignment_replayed_is_refused(fleet):
    device = _running(fleet)
    factory = fleet.publish("trail/factory.bin", b"factory image", "1.0.0")
    _release(fleet, device)  # counter 2, captured before the device saw it
    older = fleet.fetch(f"/v1/devices/{device.key.did}/assignment")
    fleet.assign(device.key, factory)  # the maker takes it back: counter 3
    assert device.agent.poll() == "IDLE" and device.agent.state.last_counter == 3
    _serve(device.agent, {"/assignment": older}, assignment=2)
    _refused(fleet, device, "replayed: counter 2 is not above the last accepted, 3")


def test_a_tampered_assignment_is_refused(fleet):
    # A soft install waits for the owner's consent; the attacker grants it in transit.
    device = _running(fleet)
    info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
    fleet.assign(device.key, info, mode="soft")

    def consent(real: bytes | None) -> bytes:
        envelope = json.loads(real)
        envelope["signed"]["consent"] = True
        return json.dumps(envelope).encode()

    _serve(device.agent, {"/assignment": consent})
    _refused(fleet, device, "bad-signature")


def test_an_assignment_that_hides_the_targets_hardware_is_refused(fleet):
    device = _running(fleet)
    info = fleet.publish("trail/fw-mcu-b.bin", b"for mcu-b", "1.1.0", hardware="mcu-b")
    lying = replace(info, custom={**info.custom, "hardware": "mcu-a"})
    assert "result" in fleet.assign(device.key, lying)
    _refused(fleet, device, "incompatible")


# -- licenses: which paid features this device may run -----------------------------------


def _refused_licenses(fleet: Fleet, device: Device, reason: str) -> None:
    """The next poll refuses the license list, naming ``reason``: nothing enabled, the
    device runs on and reports why."""
    agent = device.agent
    agent.poll()
    assert not agent.feature_enabled(TRIAL) and agent.state.features == []
    assert agent.state.license_error.startswith(reason), agent.state.license_error
    reported = _kept_running(fleet, device)
    assert reported["features"] == [] and reported["license_error"] == agent.state.license_error


def test_a_forged_license_list_is_refused(fleet):
    # The node's genuine list, with a license added after it was signed.
    device = _running(fleet)
    genuine = _licenses(fleet, device.key)
    license_ = {"entitlement": "e-x", "feature": TRIAL, "model": "one-time",
                "issued_us": 1, "expires_us": None}  # fmt: skip
    forged = {**genuine, "signed": {**genuine["signed"], "licenses": [license_]}}
    marker = device.agent.state.licenses_marker + 1
    _serve(device.agent, {"/licenses": json.dumps(forged).encode()}, licenses=marker)
    _refused_licenses(fleet, device, "forged")


def test_an_expired_license_is_not_honoured_from_a_list_replayed_after_it(fleet, monkeypatch):
    # The trial ends at day 30. The attacker keeps serving the list of day 29 (genuine,
    # within its offline grace): the device checks each license's expiry itself.
    device = _running(fleet)
    start = fleet.node.license_clock()
    _trial(fleet, device.key)
    day29, day31 = start + 29 * DAY_US, start + 31 * DAY_US
    monkeypatch.setattr(fleet.node, "license_clock", lambda: day29)
    device.agent.poll(day29)
    assert device.agent.feature_enabled(TRIAL)
    replayed = json.dumps(_licenses(fleet, device.key)).encode()
    monkeypatch.setattr(fleet.node, "license_clock", lambda: day31)
    marker = device.agent.state.licenses_marker + 1
    _serve(device.agent, {"/licenses": replayed}, licenses=marker)
    assert device.agent.poll(day31) == "IDLE"
    assert not device.agent.feature_enabled(TRIAL) and device.agent.state.license_error is None
    assert _kept_running(fleet, device)["features"] == []


def test_a_license_list_for_another_device_is_refused(fleet):
    device = _running(fleet)
    _, other = fleet.device("theirs")
    _trial(fleet, other)
    theirs = json.dumps(_licenses(fleet, other)).encode()
    marker = device.agent.state.licenses_marker + 1
    _serve(device.agent, {"/licenses": theirs}, licenses=marker)
    _refused_licenses(fleet, device, "other-device")


def test_a_license_list_that_is_not_an_object_is_refused(fleet):
    device = _running(fleet)
    marker = device.agent.state.licenses_marker + 1
    _serve(device.agent, {"/licenses": b"[]"}, licenses=marker)
    _refused_licenses(fleet, device, "malformed")
