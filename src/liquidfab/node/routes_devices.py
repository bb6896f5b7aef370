"""Read-only fleet API: devices searched by product, owner and attributes, and twins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from liquidfab.errors import ProtocolError
from liquidfab.fleet import director, entitlements, groups, registry, rollouts
from liquidfab.market import listings
from liquidfab.node.models import Problem
from liquidfab.node.params import Whole
from liquidfab.node.problems import PROBLEM_JSON

__all__ = ["router"]

router = APIRouter(tags=["fleet"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
DidPath = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")
]


class DeviceOut(BaseModel):
    did: str
    product_id: str
    version: str
    manufacturer: str
    owner: str
    serial: str | None
    attributes: dict[str, Any]
    twin_version: int
    registered_by: str = Field(description="The message that registered it: '<source> <id>'.")
    registered_us: int
    updated_us: int


class TwinOut(BaseModel):
    device: str
    twin_version: int = Field(description="Name it in the next write (twin-desired/-reported).")
    desired: dict[str, Any]
    reported: dict[str, Any]
    delta: dict[str, Any] = Field(description="What is desired and not reported.")


def _device(request: Request, did: str) -> dict[str, Any]:
    row = request.app.state.node.database.read(lambda c: registry.get_device(c, did))
    if row is None:
        raise ProtocolError("not-found", f"this node knows no device {did}.", 404)
    return row


@router.get(
    "/v1/devices",
    response_model=list[DeviceOut],
    responses={400: {"model": Problem, "content": {PROBLEM_JSON: {}}}},
    summary="Devices, in did order",
)
def list_devices(
    request: Request,
    product: Annotated[str | None, Query(max_length=200)] = None,
    version: Annotated[str | None, Query(max_length=100)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    attr: Annotated[
        list[str] | None,
        Query(max_length=10, description="name=value, repeatable; all must match."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000), Whole] = 100,
    after: Annotated[str | None, Query(max_length=200, description="The last did seen.")] = None,
) -> list[dict[str, Any]]:
    wanted: dict[str, str] = {}
    for item in attr or []:
        name, sep, value = item.partition("=")
        if not sep or not name or len(name) > 64:
            raise ProtocolError("malformed", f"attr is name=value, not {item!r}.", 400)
        wanted[name] = value
    return request.app.state.node.database.read(
        lambda c: registry.list_devices(
            c,
            product=product,
            version=version,
            owner=owner,
            attributes=wanted,
            limit=limit,
            after=after,
        )
    )


@router.get("/v1/devices/{did}", response_model=DeviceOut, responses=_NOT_FOUND, summary="A device")
def get_device(request: Request, did: DidPath) -> dict[str, Any]:
    return _device(request, did)


@router.get(
    "/v1/devices/{did}/twin",
    response_model=TwinOut,
    responses=_NOT_FOUND,
    summary="A device's twin: desired, reported, their delta and the version to write on",
)
def get_twin(request: Request, did: DidPath) -> dict[str, Any]:
    row = _device(request, did)
    return {
        "device": did,
        "twin_version": row["twin_version"],
        "desired": row["desired"],
        "reported": row["reported"],
        "delta": registry.delta(row["desired"], row["reported"]),
    }


class AssignmentOut(BaseModel):
    signed: dict[str, Any] = Field(
        description="type, director (the node's did), device, counter, target, sha256, "
        "length, custom, assigned_us, mode, window, consent."
    )
    signature: str = Field(description="Ed25519 by the director over RFC 8785 JSON of signed.")


@router.get(
    "/v1/devices/{did}/assignment",
    response_model=AssignmentOut,
    responses=_NOT_FOUND,
    summary="The target the device should run, signed by this node (its director)",
)
def get_assignment(request: Request, did: DidPath) -> dict[str, Any]:
    node = request.app.state.node
    row = node.database.read(lambda c: director.get_assignment(c, did))
    if row is None:
        raise ProtocolError("not-found", f"device {did} has no assignment.", 404)
    return director.sign_assignment(node.key, row)


class PollOut(BaseModel):
    device: str
    sleep_seconds: int = Field(description="Poll again after this long.")
    assignment: int = Field(description="The counter of the device's assignment (0: none).")
    licenses: int = Field(description="When its licenses last changed, in µs (0: never).")


@router.get(
    "/v1/devices/{did}/poll",
    response_model=PollOut,
    responses=_NOT_FOUND,
    summary="A device's poll: how long to sleep, and whether its assignment or licenses moved",
)
async def poll(request: Request, did: DidPath) -> Response:
    board = request.app.state.node.polls
    answer = board.cached(did)
    if answer is None:
        answer = await run_in_threadpool(board.compute, did)
    if answer is None:
        raise ProtocolError("not-found", f"this node knows no device {did}.", 404)
    return Response(answer, media_type="application/json")


class RolloutOut(BaseModel):
    id: str
    creator: str
    name: str
    target: dict[str, Any]
    filter: dict[str, Any]
    waves: list[int]
    success_threshold: float
    error_threshold: float
    min_sample: int
    rate_per_minute: int
    mode: str = Field(description="forced, soft (the owner consents) or download-only.")
    window: dict[str, Any] | None = Field(description="The maintenance window installs wait for.")
    population: int = Field(description="Devices the filter selected when last counted.")
    assigned: int
    succeeded: int
    failed: int
    state: str = Field(description="running, paused or aborted.")
    complete: bool = Field(
        False, description="Running, its whole population assigned and every device finished."
    )
    wave: int = Field(description="The current wave's index.")
    reason: str | None = Field(description="Why it paused, when it did by itself.")
    created_us: int
    updated_us: int
    progress: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Per wave: devices assigned, succeeded, failed."
    )


@router.get("/v1/rollouts", response_model=list[RolloutOut], summary="Rollouts, newest first")
def list_rollouts(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000), Whole] = 100
) -> list[dict[str, Any]]:
    rows = request.app.state.node.database.read(lambda c: rollouts.list_rollouts(c, limit))
    return [{**row, "complete": rollouts.complete(row)} for row in rows]


@router.get(
    "/v1/rollouts/{rollout_id}",
    response_model=RolloutOut,
    responses=_NOT_FOUND,
    summary="A rollout with its progress per wave",
)
def get_rollout(
    request: Request, rollout_id: Annotated[str, Path(min_length=1, max_length=100)]
) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any] | None:
        row = rollouts.get_rollout(conn, rollout_id)
        if row is None:
            return None
        return {**row, "complete": rollouts.complete(row),
                "progress": rollouts.progress(conn, rollout_id)}  # fmt: skip

    row = request.app.state.node.database.read(load)
    if row is None:
        raise ProtocolError("not-found", f"no rollout {rollout_id}.", 404)
    return row


class LicensesOut(BaseModel):
    signed: dict[str, Any] = Field(
        description="type, issuer (this node), device, as_of_us, grace_seconds, licenses."
    )
    signature: str


@router.get(
    "/v1/devices/{did}/licenses",
    response_model=LicensesOut,
    responses=_NOT_FOUND,
    summary="The device's feature licenses, signed by this node, for offline checks",
)
def get_licenses(request: Request, did: DidPath) -> dict[str, Any]:
    node = request.app.state.node
    _device(request, did)
    now_us = node.license_clock()
    rows = node.database.read(
        lambda c: listings.with_targets(c, entitlements.active(c, did, now_us))
    )
    return entitlements.signed_licenses(node.key, did, rows, now_us)


class GroupOut(BaseModel):
    name: str
    product_id: str
    query: dict[str, Any] = Field(description="version (or null) and attributes it selects.")
    creator: str
    created_us: int
    updated_us: int
    members: int = Field(description="Devices it selects now.")


def _with_members(conn: Any, row: dict[str, Any]) -> dict[str, Any]:
    query = row["query"]
    members = registry.count_matching(
        conn, product=row["product_id"], version=query.get("version"),
        attributes=query.get("attributes") or {},
    )  # fmt: skip
    return {**row, "members": members}


@router.get("/v1/groups", response_model=list[GroupOut], summary="Named device groups")
def list_groups(
    request: Request, product: Annotated[str | None, Query(max_length=200)] = None
) -> list[dict[str, Any]]:
    return request.app.state.node.database.read(
        lambda c: [_with_members(c, g) for g in groups.list_groups(c, product)]
    )


@router.get(
    "/v1/groups/{name}", response_model=GroupOut, responses=_NOT_FOUND, summary="A device group"
)
def get_group(request: Request, name: Annotated[str, Path(max_length=100)]) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any] | None:
        row = groups.get_group(conn, name)
        return None if row is None else _with_members(conn, row)

    found = request.app.state.node.database.read(load)
    if found is None:
        raise ProtocolError("not-found", f"no device group {name}.", 404)
    return found
