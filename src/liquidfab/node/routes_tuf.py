"""The TUF repository over HTTP, as devices' TUF clients fetch it (docs/fleet.md).

``/tuf/metadata/<version>.<role>.json`` and ``/tuf/metadata/timestamp.json``;
``/tuf/targets/<folders>/<sha256>.<name>``. Files only, read from the repository folder;
a path that leaves it, or names nothing, is 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from liquidfab.errors import LiquidfabError, ProtocolError
from liquidfab.node.models import Problem
from liquidfab.node.problems import PROBLEM_JSON

__all__ = ["router"]

router = APIRouter(tags=["fleet"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
MetadataName = Annotated[str, Path(max_length=100, pattern=r"^[0-9a-z.-]+\.json$")]
TargetPath = Annotated[str, Path(max_length=400)]


def _read(request: Request, relative: str) -> bytes:
    service = request.app.state.node.fleet_repository
    if service is None:
        raise ProtocolError("not-found", "this node keeps no software repository.", 404)
    try:
        return service.read(relative)
    except LiquidfabError as e:
        raise ProtocolError("not-found", f"no {relative} in the repository.", 404) from e


@router.get(
    "/tuf/metadata/{name}",
    responses={**_NOT_FOUND, 200: {"content": {"application/json": {}}}},
    response_class=Response,
    summary="TUF metadata: <version>.<role>.json, or timestamp.json (re-signed when old)",
)
def metadata(request: Request, name: MetadataName) -> Response:
    data = _read(request, f"metadata/{name}")
    return Response(data, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    "/tuf/targets/{path:path}",
    responses={**_NOT_FOUND, 200: {"content": {"application/octet-stream": {}}}},
    response_class=Response,
    summary="A target file, by the hash-prefixed path TUF clients ask for",
)
def target(request: Request, path: TargetPath) -> Response:
    return Response(_read(request, f"targets/{path}"), media_type="application/octet-stream")
