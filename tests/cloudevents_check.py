"""Check a message over HTTP with the official CloudEvents SDK (``cloudevents``).

Two SDK APIs are checked: the current one (``cloudevents.core``: JSONFormat and the
HTTP binding) and the v1 API (``cloudevents.v1.http.from_http``). Use on any body
that crosses a node's HTTP face:

    assert_parses_as_cloudevent(response.content, dict(response.headers))
"""

from typing import Any
from urllib.parse import unquote

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.http import from_http as v1_from_http

from liquidfab.protocol import CONTENT_TYPE, Envelope, parse_json


def is_binary_mode(headers: dict[str, str]) -> bool:
    return any(name.lower().startswith("ce-") for name in headers)


def envelope_from_http(body: bytes, headers: dict[str, str] | None = None) -> Envelope:
    """The message in an HTTP body (+ headers), read the way a liquidfab node reads it."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if is_binary_mode(headers):
        return Envelope.from_binary(headers, parse_json(body) if body else None)
    return Envelope.from_dict(parse_json(body))


def sdk_attributes_core(body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """Attributes and data as ``cloudevents.core`` reads them (mode auto-detected)."""
    event = ce_http.from_http(ce_http.HTTPMessage(headers=headers, body=body), JSONFormat())
    return dict(event.get_attributes()), event.get_data()


def sdk_attributes_v1(body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """Attributes and data as the v1 API reads them.

    The v1 API does not percent-decode binary-mode header values (the current API
    does), so they are decoded here before comparing.
    """
    event = v1_from_http(headers, body)
    attributes = dict(event.get_attributes())
    if is_binary_mode(headers):
        attributes = {
            k: unquote(v) if isinstance(v, str) and k != "datacontenttype" else v
            for k, v in attributes.items()
        }
    return attributes, event.get_data()


def assert_same_event(attributes: dict[str, Any], data: Any, envelope: Envelope) -> None:
    """What an SDK read equals the envelope, attribute by attribute, extensions included."""
    expected = {k: v for k, v in envelope.attributes.items() if k != "data"}
    got = dict(attributes)
    time = got.pop("time")
    assert expected.pop("time") is not None
    if isinstance(time, str):
        assert time == envelope.time
    else:  # the current SDK parses time into a datetime (microsecond precision)
        assert time == envelope.moment
    assert got == expected
    assert data == envelope.data
    for name in ("sigalg", "signature"):
        assert got[name] == envelope.attributes[name]
    for name, value in envelope.extensions.items():
        assert got[name] == value


def assert_parses_as_cloudevent(body: bytes, headers: dict | None = None) -> None:
    """Both SDK APIs read ``body`` (+ ``headers``) as the signed message liquidfab reads.

    Structured mode when no ``ce-`` header is present, binary mode otherwise. The
    message must be a valid, signed liquidfab message.
    """
    headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    if not is_binary_mode(headers):
        headers.setdefault("content-type", CONTENT_TYPE)
        assert headers["content-type"].split(";")[0].strip() == CONTENT_TYPE
    envelope = envelope_from_http(body, headers)
    assert envelope.verify(), "the message does not verify"
    assert_same_event(*sdk_attributes_core(body, headers), envelope)
    assert_same_event(*sdk_attributes_v1(body, headers), envelope)
