"""A device's side of the MQTT device API (see ``mqtt_bridge``): send signed messages
and get their receipts through the broker, and hear when the node has work for it.

One link may carry one device (its own two topics) or, in the fleet simulation, many
devices at once (the wildcard topics): a simulator cannot open ten thousand broker
connections from one process, and the node sees the same messages either way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from liquidfab.fleet.mqtt_bridge import (
    connect,
    messages_topic,
    new_client,
    notify_topic,
    receipts_topic,
)
from liquidfab.protocol import Envelope

__all__ = ["MqttLink"]


class MqttLink:
    """Signed messages out, receipts and notifications in, for ``devices`` (None: all)."""

    def __init__(
        self,
        url: str,
        devices: list[str] | None = None,
        timeout: float = 30,
        on_notify: Callable[[str], None] | None = None,
    ) -> None:
        """``on_notify(did)`` is called (on the network thread) for each notice too."""
        self.timeout = timeout
        self.on_notify = on_notify
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._notified: dict[str, threading.Event] = {}
        self.client = new_client("liquidfab-device")
        self.client.on_message = self._on_message
        topics = (
            [t for did in devices for t in (receipts_topic(did), notify_topic(did))]
            if devices is not None
            else [receipts_topic("+"), notify_topic("+")]
        )
        connect(self.client, url, topics)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        did = msg.topic.split("/")[3]
        if msg.topic.endswith("/notify"):
            self.notified(did).set()
            if self.on_notify is not None:
                self.on_notify(did)
            return
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        key = (str(body.get("source", did)), str(body.get("id", "")))
        with self._lock:
            waiter = self._waiting.pop(key, None)
        if waiter is not None:
            waiter[1].append(body)
            waiter[0].set()

    def notified(self, did: str) -> threading.Event:
        """The event set when the node notifies ``did`` (clear it before waiting)."""
        with self._lock:
            return self._notified.setdefault(did, threading.Event())

    def send(self, envelope: Envelope) -> dict[str, Any]:
        """Publish a signed message on its device's topic; the node's receipt or problem."""
        done, box = threading.Event(), []
        key = (envelope.source, envelope.id)
        with self._lock:
            self._waiting[key] = (done, box)
        self.client.publish(messages_topic(envelope.source), envelope.to_json(), qos=1)
        if not done.wait(self.timeout):
            with self._lock:
                self._waiting.pop(key, None)
            return {"code": "timeout", "detail": "no receipt from the node over MQTT"}
        return box[0]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
