"""Read-only API: messages, participants, schemas, health and the well-known document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from liquidfab.db import messages as message_log
from liquidfab.db import participants as directory
from liquidfab.errors import ProtocolError
from liquidfab.node.models import (
    Health,
    MessageRecord,
    MessageTypeInfo,
    ParticipantOut,
    Problem,
    WellKnown,
)
from liquidfab.node.params import Whole
from liquidfab.node.problems import PROBLEM_JSON
from liquidfab.protocol import BATCH_CONTENT_TYPE, CONTENT_TYPE, PROTOCOL_VERSION
from liquidfab.protocol.dispatcher import receipt_of
from liquidfab.protocol.participants import Role

__all__ = ["router"]

router = APIRouter()
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
_INVALID = {422: {"model": Problem, "content": {PROBLEM_JSON: {}}}}


def _participant(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ParticipantOut.model_fields}


@router.get(
    "/v1/messages/{source}/{id:path}",
    response_model=MessageRecord,
    responses={**_NOT_FOUND, **_INVALID},
    tags=["messages"],
    summary="One message and its receipt",
)
def get_message(source: str, id: str, request: Request) -> dict[str, Any]:
    node = request.app.state.node
    row = node.database.read(lambda c: message_log.get_message(c, source, id))
    if row is None:
        raise ProtocolError("not-found", f"no message {id!r} from {source} on this node.", 404)
    return {"receipt": receipt_of(row), "message": row["envelope"]}


@router.get(
    "/v1/messages",
    response_model=list[MessageRecord],
    responses=_INVALID,
    tags=["messages"],
    summary="The latest messages, newest first",
)
def list_messages(
    request: Request, limit: Annotated[int, Query(ge=1, le=500), Whole] = 50
) -> list[dict[str, Any]]:
    rows = request.app.state.node.database.read(
        lambda c: message_log.latest_messages(c, limit=limit)
    )
    return [{"receipt": receipt_of(r), "message": r["envelope"]} for r in rows]


@router.get(
    "/v1/participants",
    response_model=list[ParticipantOut],
    responses=_INVALID,
    tags=["participants"],
    summary="Registered participants",
)
def list_participants(request: Request, role: Role | None = None) -> list[dict[str, Any]]:
    rows = request.app.state.node.database.read(
        lambda c: directory.list_participants(c, role.value if role else None)
    )
    return [_participant(r) for r in rows]


@router.get(
    "/v1/participants/{did}",
    response_model=ParticipantOut,
    responses={**_NOT_FOUND, **_INVALID},
    tags=["participants"],
    summary="One participant",
)
def get_participant(did: str, request: Request) -> dict[str, Any]:
    row = request.app.state.node.database.read(lambda c: directory.get_participant(c, did))
    if row is None:
        raise ProtocolError("not-found", f"{did} is not registered on this node.", 404)
    return _participant(row)


@router.get("/v1/schemas", tags=["protocol"], summary="JSON Schema of every message payload")
def schemas(request: Request) -> dict[str, Any]:
    return {t.type: t.payload.model_json_schema() for t in request.app.state.node.registry}


@router.get("/healthz", response_model=Health, tags=["protocol"], summary="Liveness and counts")
def healthz(request: Request) -> dict[str, Any]:
    node = request.app.state.node
    messages, participants = node.database.read(
        lambda c: (message_log.count_messages(c), directory.count_participants(c))
    )
    return {
        "status": "ok",
        "database": node.database.dialect,
        "messages": messages,
        "participants": participants,
    }


@router.get(
    "/.well-known/liquidfab",
    response_model=WellKnown,
    tags=["protocol"],
    summary="Protocol versions, message types and limits served here",
)
def well_known(request: Request) -> dict[str, Any]:
    node = request.app.state.node
    return {
        "protocol": "liquidfab",
        "versions": [{"version": PROTOCOL_VERSION, "path": "/v1"}],
        "node": node.did,
        "title": node.title,
        "message_types": [
            MessageTypeInfo(type=t.type, summary=t.summary, schema_url="/v1/schemas")
            for t in node.registry
        ],
        "content_types": [CONTENT_TYPE, BATCH_CONTENT_TYPE, "application/json"],
        "limits": node.limits.model_dump(),
    }
