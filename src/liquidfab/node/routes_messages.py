"""POST /v1/messages in its three CloudEvents HTTP modes: structured, binary, batch."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from liquidfab.errors import ProtocolError
from liquidfab.node.models import Problem, Receipt
from liquidfab.node.problems import PROBLEM_JSON
from liquidfab.protocol import BATCH_CONTENT_TYPE, CONTENT_TYPE, EnvelopeModel, parse_json
from liquidfab.protocol.dispatcher import Outcome
from liquidfab.protocol.envelope import Envelope

__all__ = ["message_path", "router"]

router = APIRouter(tags=["messages"])

_ENVELOPE_SCHEMA = {"$ref": "#/components/schemas/LiquidfabMessage"}
_PROBLEM = {"model": Problem, "content": {PROBLEM_JSON: {}}}
_LOCATION = {
    "Location": {"description": "Where the message is read back.", "schema": {"type": "string"}}
}
_DUPLICATE = {
    "Liquidfab-Duplicate": {
        "description": "'true' when this was a retry of a message applied before.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
# Binary mode carries the attributes as ce-* headers (CloudEvents HTTP binding, 3.1.3).
_BINARY_HEADERS = [
    {
        "name": f"ce-{name}",
        "in": "header",
        "required": False,
        "description": f"Binary mode: the {name!r} attribute, percent-encoded.",
        "schema": {"type": "string"},
    }
    for name in ("specversion", "id", "source", "type", "time", "subject", "sigalg", "signature",
                 "settlement")
]  # fmt: skip
_REQUEST_BODY = {
    "required": True,
    "description": "A signed message (structured mode), a batch, or data with ce-* headers "
    "(binary mode).",
    "content": {
        CONTENT_TYPE: {"schema": _ENVELOPE_SCHEMA},
        BATCH_CONTENT_TYPE: {"schema": {"type": "array", "items": _ENVELOPE_SCHEMA}},
        "application/json": {"schema": {"description": "binary mode: data, with ce-* headers"}},
    },
}


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ProtocolError(
            "too-large", f"the body is {declared} bytes; at most {cap} are accepted.", 413
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ProtocolError("too-large", f"the body exceeds {cap} bytes.", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _response(outcome: Outcome, request: Request) -> JSONResponse:
    if not outcome.accepted:
        body = dict(outcome.body)
        body.setdefault("instance", request.url.path)
        return JSONResponse(body, outcome.status, media_type=PROBLEM_JSON)
    headers = {"Location": message_path(outcome.body["source"], outcome.body["id"])}
    if outcome.duplicate:
        headers["Liquidfab-Duplicate"] = "true"
    return JSONResponse(outcome.body, outcome.status, headers=headers)


def message_path(source: str, msg_id: str) -> str:
    """Where a message can be read back: ids are the sender's, so every byte is escaped."""
    segment = quote(msg_id, safe="")
    if segment in (".", ".."):  # a dot segment would be removed by URL normalization
        segment = segment.replace(".", "%2E")
    return f"/v1/messages/{quote(source, safe=':')}/{segment}"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _decode_batch(body: bytes, node: Any) -> list[dict[str, Any] | ProtocolError]:
    items = parse_json(body)
    if not isinstance(items, list):
        raise ProtocolError("schema-invalid", "a batch must be a JSON array of messages.", 422)
    if len(items) > node.limits.max_batch_messages:
        raise ProtocolError(
            "too-large",
            f"the batch holds {len(items)} messages; at most "
            f"{node.limits.max_batch_messages} are accepted.",
            413,
        )
    return items


@router.post(
    "/v1/messages",
    summary="Submit signed messages",
    status_code=201,
    response_model=Receipt,
    responses={
        200: {
            "model": Receipt,
            "description": "An identical retry: the stored receipt.",
            "headers": {**_LOCATION, **_DUPLICATE},
        },
        201: {"description": "Applied: the receipt.", "headers": _LOCATION},
        207: {
            "description": "Batch: a receipt or a problem per message, in order.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                {"$ref": "#/components/schemas/Receipt"},
                                {"$ref": "#/components/schemas/Problem"},
                            ]
                        },
                    }
                }
            },
        },
        **{code: _PROBLEM for code in (400, 401, 403, 409, 413, 415, 422, 503)},
    },
    openapi_extra={"requestBody": _REQUEST_BODY, "parameters": _BINARY_HEADERS},
)
async def post_messages(request: Request) -> JSONResponse:
    """Apply a message (or a batch): all its effects commit together, or none do."""
    node = request.app.state.node
    limits = node.limits
    media = _media_type(request)
    if media == BATCH_CONTENT_TYPE:
        body = await _read_capped(request, limits.max_batch_bytes)
        items = await run_in_threadpool(_decode_batch, body, node)
        outcomes = await run_in_threadpool(node.dispatcher.submit_many, items)
        return JSONResponse([o.body for o in outcomes], 207)
    body = await _read_capped(request, limits.max_message_bytes)
    if media == CONTENT_TYPE:
        message: Any = parse_json(body)
    elif "ce-specversion" in request.headers:
        if media != "application/json":
            raise ProtocolError(
                "unsupported-media-type",
                f"binary-mode data must be application/json, not {media or 'unset'}.",
                415,
            )
        data = parse_json(body) if body else None
        message = Envelope.from_binary(request.headers, data, limits)
    else:
        raise ProtocolError(
            "unsupported-media-type",
            f"send {CONTENT_TYPE}, {BATCH_CONTENT_TYPE}, or application/json data with "
            "ce-* headers (binary mode).",
            415,
        )
    outcome = await run_in_threadpool(node.dispatcher.submit, message)
    return _response(outcome, request)


def envelope_schema() -> dict[str, Any]:
    """The envelope's JSON Schema, for the OpenAPI components."""
    return EnvelopeModel.model_json_schema(ref_template="#/components/schemas/{model}")
