"""The MQTT device API against the machine's Mosquitto: a device's messages go through the
broker, the node tells it when it has work, and the bridge refuses what HTTP would refuse
plus a device speaking on another device's topic."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from liquidfab.fleet.messages import TWIN_REPORTED
from liquidfab.fleet.mqtt_bridge import MqttBridge, messages_topic, receipts_topic
from liquidfab.fleet.mqtt_link import MqttLink
from liquidfab.protocol import sign_message
from support import service_missing

BROKER = "mqtt://127.0.0.1:1883"


@pytest.fixture
def broker() -> str:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=2).close()
    except OSError as e:
        service_missing("Mosquitto at 127.0.0.1:1883", e)
    return BROKER


@pytest.fixture
def bridge(fleet, broker):
    running = MqttBridge(fleet.node, broker).start()
    yield running
    running.stop()


def test_a_device_is_told_of_work_and_reports_through_the_broker(fleet, bridge, broker):
    folder, key = fleet.device()
    link = MqttLink(broker, [key.did], timeout=10)
    try:
        agent = fleet.agent(folder)
        agent.send = link.send
        woken = link.notified(key.did)
        woken.clear()
        info = fleet.publish("trail/fw-1.1.0.bin", b"firmware 1.1.0", "1.1.0")
        assert "result" in fleet.assign(key, info)
        assert woken.wait(10), "the node did not notify the device"
        assert agent.poll() == "COMMITTED"
        twin = fleet.twin(key)
        assert twin["reported"]["firmware"] == "1.1.0"  # the report went through MQTT
        assert bridge.received >= 1 and bridge.notified >= 1
    finally:
        link.close()


def _raw_exchange(broker: str, topic_did: str, payload: bytes) -> dict:
    """Publish ``payload`` on ``topic_did``'s message topic; the receipt the node sends."""
    link = MqttLink(broker, [topic_did], timeout=10)
    got: list[dict] = []
    done = threading.Event()
    original = link.client.on_message

    def on_message(client, userdata, msg):
        if msg.topic == receipts_topic(topic_did):
            got.append(json.loads(msg.payload))
            done.set()
        original(client, userdata, msg)

    link.client.on_message = on_message
    try:
        link.client.publish(messages_topic(topic_did), payload, qos=1)
        assert done.wait(10), "no answer from the node"
        return got[0]
    finally:
        link.close()


def test_a_device_cannot_speak_on_another_devices_topic(fleet, bridge, broker):
    _, mine = fleet.device("mine")
    _, theirs = fleet.device("theirs")
    before = fleet.node.database.snapshot()
    forged = sign_message(mine, TWIN_REPORTED, {"device": mine.did, "version": 0,
                                                "state": {"firmware": "9.9.9"}})  # fmt: skip
    answer = _raw_exchange(broker, theirs.did, forged.to_json())
    assert answer["code"] == "unauthorized"
    assert fleet.node.database.snapshot() == before


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"{not json", "malformed"), (b"[1, 2]", "malformed"), (None, "too-large")],
)
def test_garbage_through_the_broker_is_refused_and_changes_nothing(
    fleet, bridge, broker, payload, code
):
    _, key = fleet.device()
    payload = payload or b" " * (fleet.node.limits.max_message_bytes + 1)
    before = fleet.node.database.snapshot()
    assert _raw_exchange(broker, key.did, payload)["code"] == code
    assert fleet.node.database.snapshot() == before


def test_a_message_replayed_through_the_broker_is_not_applied_twice(fleet, bridge, broker):
    _, key = fleet.device()
    report = sign_message(key, TWIN_REPORTED, {"device": key.did, "version": 0,
                                               "state": {"firmware": "1.0.0"}})  # fmt: skip
    link = MqttLink(broker, [key.did], timeout=10)
    try:
        first = link.send(report)
        again = link.send(report)
    finally:
        link.close()
    assert first["seq"] == again["seq"]  # the stored receipt, not a second write
    assert fleet.twin(key)["twin_version"] == 1


def test_the_device_command_reports_through_the_broker(tmp_path, broker):
    from typer.testing import CliRunner

    from browser_support import EXAMPLE_WORLD, serve_world
    from liquidfab.cli import app
    from liquidfab.fleet.agent import provision
    from liquidfab.fleet.messages import REGISTER_DEVICE
    from liquidfab.identity import SigningKey
    from liquidfab.protocol import CONTENT_TYPE

    with serve_world(EXAMPLE_WORLD, tmp_path) as world:
        running = MqttBridge(world.node, broker).start()
        try:
            maker, owner = world.keystore.get("voltwerk"), world.keystore.get("ada")
            version = httpx.get(f"{world.url}/v1/products/com.voltwerk.trail").json()["latest"]
            key = SigningKey.generate()
            data = {"did": key.did, "product": "com.voltwerk.trail", "version": version,
                    "owner": owner.did}  # fmt: skip
            registration = sign_message(maker, REGISTER_DEVICE, data).to_json()
            posted = httpx.post(f"{world.url}/v1/messages", content=registration,
                                headers={"content-type": CONTENT_TYPE})  # fmt: skip
            assert posted.status_code == 201, posted.text
            state = tmp_path / "device"
            provision(state, device_seed=key.seed, director=world.node.did,
                      product="com.voltwerk.trail", hardware="mcu-a",
                      root=httpx.get(f"{world.url}/tuf/metadata/1.root.json").content,
                      factory_image=b"factory", factory_version="1.0.0")  # fmt: skip
            run = CliRunner().invoke(app, ["device", "run", "--state", str(state), "--node",
                                           world.url, "--mqtt", broker, "--once"])  # fmt: skip
            assert run.exit_code == 0 and "IDLE: running 1.0.0" in run.output, run.output
            twin = httpx.get(f"{world.url}/v1/devices/{key.did}/twin").json()
            assert twin["reported"]["firmware"] == "1.0.0"
            assert running.received >= 1  # the report came through the broker
        finally:
            running.stop()
