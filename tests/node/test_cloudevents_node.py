"""Every message the node accepts, and every message it returns, parses with the CloudEvents SDK.

The SDK check itself (both SDK APIs, attribute by attribute) lives in
tests/protocol/test_cloudevents_sdk.py; here it is fed what crosses the node's HTTP face.
"""

from __future__ import annotations

import json

from cloudevents_check import assert_parses_as_cloudevent
from liquidfab.identity import SigningKey
from liquidfab.protocol import BATCH_CONTENT_TYPE, CONTENT_TYPE, sign_message
from liquidfab.protocol.participants import UPDATE
from support import post, register_message


def _accepted_messages(client, registered: SigningKey) -> list[tuple[bytes, dict[str, str]]]:
    """Send messages in all three modes; return each accepted request as (body, headers)."""
    sent: list[tuple[bytes, dict[str, str]]] = []

    newcomer = SigningKey.generate()
    structured = register_message(newcomer, role="supplier", name="Kraftmotor Drives")
    assert post(client, structured).status_code == 201
    sent.append((structured.to_json(), {"content-type": CONTENT_TYPE}))

    binary = sign_message(
        registered,
        UPDATE,
        {"did": registered.did, "display_name": "Ada Rider", "endpoints": ["https://ada.io/"]},
        subject=registered.did,
        extensions={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    headers, body = binary.to_binary()
    assert client.post("/v1/messages", content=body, headers=headers).status_code == 201
    sent.append((body, headers))

    batch = [register_message(SigningKey.generate(), name=f"Owner {i}") for i in range(3)]
    response = client.post(
        "/v1/messages",
        content=b"[" + b",".join(m.to_json() for m in batch) + b"]",
        headers={"content-type": BATCH_CONTENT_TYPE},
    )
    assert [r["status"] for r in response.json()] == ["accepted"] * 3
    sent.extend((m.to_json(), {"content-type": CONTENT_TYPE}) for m in batch)
    return sent


def test_accepted_and_returned_messages_parse_with_the_sdk(client, registered):
    accepted = _accepted_messages(client, registered)
    for body, headers in accepted:
        assert_parses_as_cloudevent(body, headers)

    latest = client.get("/v1/messages", params={"limit": 500})
    assert latest.status_code == 200
    returned = [record["message"] for record in latest.json()]
    # the registered fixture's own registration is returned too
    assert len(returned) == len(accepted) + 1
    for message in returned:
        assert_parses_as_cloudevent(json.dumps(message).encode())
        one = client.get(f"/v1/messages/{message['source']}/{message['id']}")
        assert one.status_code == 200
        assert_parses_as_cloudevent(json.dumps(one.json()["message"]).encode())
