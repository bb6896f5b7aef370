"""The MQTT device API next to HTTP: devices send their signed messages through an MQTT
broker (Mosquitto or any MQTT 3.1.1 broker) and are told there when they have work, so
they need not poll often.

Topics, per device did:

- ``liquidfab/v1/devices/<did>/messages``: the device publishes a signed envelope (the
  same bytes it would POST to ``/v1/messages``);
- ``liquidfab/v1/devices/<did>/receipts``: the node answers each with the receipt or the
  problem the HTTP API would give;
- ``liquidfab/v1/devices/<did>/notify``: the node says ``{"device": did}`` after a commit
  touched the device (a new assignment, a consent, a license); the device then polls.

The broker is not trusted: every message is checked as over HTTP (signature, schema,
replay), and one published on another device's topic is refused, so a device cannot
speak for another even where the broker lets it publish anywhere. The bridge hands
messages to the dispatcher in batches from one worker thread, which keeps the broker's
network thread free and lets a burst of reports share one write transaction.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from liquidfab.errors import LiquidfabError, ProtocolError
from liquidfab.protocol import parse_json

if TYPE_CHECKING:
    from liquidfab.node.core import Node

__all__ = [
    "MqttBridge",
    "connect",
    "messages_topic",
    "mqtt_address",
    "new_client",
    "notify_topic",
    "receipts_topic",
]

_log = logging.getLogger(__name__)
PREFIX = "liquidfab/v1/devices"
_BATCH = 500  # messages handed to the dispatcher at once, at most


def messages_topic(did: str) -> str:
    return f"{PREFIX}/{did}/messages"


def receipts_topic(did: str) -> str:
    return f"{PREFIX}/{did}/receipts"


def notify_topic(did: str) -> str:
    return f"{PREFIX}/{did}/notify"


def mqtt_address(url: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` as (host, port)."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise LiquidfabError(f"an MQTT broker is named mqtt://host[:port], not {url!r}")
    return parsed.hostname, parsed.port or 1883


def new_client(prefix: str) -> mqtt.Client:
    return mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"{prefix}-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv311,
    )


def connect(client: mqtt.Client, url: str, subscriptions: list[str], timeout: float = 10) -> None:
    """Connect, subscribe (again after every reconnect) and start the network thread."""
    host, port = mqtt_address(url)
    ready = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, code: Any, props: Any) -> None:
        if not code.is_failure:
            client.subscribe([(topic, 1) for topic in subscriptions])
            ready.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        raise LiquidfabError(f"cannot reach the MQTT broker at {url}: {e}") from e
    client.loop_start()
    if not ready.wait(timeout):
        client.loop_stop()
        raise LiquidfabError(f"the MQTT broker at {url} did not accept the connection")


class MqttBridge:
    """Carries devices' messages from the broker to the node and notices back."""

    def __init__(self, node: Node, url: str) -> None:
        self.node = node
        self.url = url
        self.client = new_client("liquidfab-node")
        self.client.on_message = lambda client, userdata, msg: self._inbox.put(msg)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="liquidfab-mqtt", daemon=True)
        self._stopping = threading.Event()
        self.received = 0
        self.notified = 0

    def start(self) -> MqttBridge:
        connect(self.client, self.url, [messages_topic("+")])
        self._worker.start()
        self.node.dispatcher.listeners.append(self._notify)
        return self

    def stop(self) -> None:
        if self._notify in self.node.dispatcher.listeners:
            self.node.dispatcher.listeners.remove(self._notify)
        self._stopping.set()
        self._inbox.put(None)
        self._worker.join(timeout=10)
        self.client.loop_stop()
        self.client.disconnect()

    def _notify(self, notices: list[tuple[str, str]]) -> None:
        for kind, subject in dict.fromkeys(notices):
            if kind == "device":
                payload = json.dumps({"device": subject})
                self.client.publish(notify_topic(subject), payload, qos=1)
                self.notified += 1

    def _work(self) -> None:
        while not self._stopping.is_set():
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._stopping.set()
                    break
                batch.append(item)
            try:
                self._handle(batch)
            except Exception:  # the bridge must outlive one bad batch
                _log.exception("the MQTT bridge failed on a batch")

    def _handle(self, batch: list[Any]) -> None:
        dids: list[str] = []
        items: list[Any] = []
        limit = self.node.limits.max_message_bytes
        for msg in batch:
            parts = msg.topic.split("/")
            did = parts[3] if len(parts) == 5 else ""
            dids.append(did)
            items.append(_decode(msg.payload, did, limit))
        self.received += len(items)
        outcomes = self.node.dispatcher.submit_many(items)
        for did, outcome in zip(dids, outcomes, strict=True):
            if did:
                self.client.publish(receipts_topic(did), json.dumps(outcome.body), qos=1)


def _decode(payload: bytes, did: str, limit: int) -> Any:
    """The envelope a device published on its topic, or the ProtocolError refusing it."""
    if len(payload) > limit:
        return ProtocolError("too-large", f"a message is at most {limit} bytes.", 413)
    try:
        message = parse_json(payload)
    except ProtocolError as e:
        return e
    if not isinstance(message, dict):
        return ProtocolError("malformed", "a message is a JSON object.", 400)
    if message.get("source") != did:
        return ProtocolError(
            "unauthorized", "a device publishes its own messages on its own topic only.", 403
        )
    return message
