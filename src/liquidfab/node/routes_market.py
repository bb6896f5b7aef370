"""Read-only market API: territories, their owners and co-publishers."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from liquidfab.errors import ProtocolError
from liquidfab.market import fees, territories
from liquidfab.node.models import Problem
from liquidfab.node.params import Whole
from liquidfab.node.problems import PROBLEM_JSON

__all__ = ["router"]

router = APIRouter(tags=["market"])


class TerritoryOut(BaseModel):
    name: str
    skeleton: str = Field(description="What the name looks like; no two claimed share one.")
    owner: str
    publishers: list[str] = Field(description="Co-publishers besides the owner.")
    offered_to: str | None = Field(description="A transfer the owner offered, not yet accepted.")
    claimed_by: str = Field(description="The claim message: '<source> <id>'.")
    claimed_us: int
    updated_us: int


@router.get("/v1/territories", response_model=list[TerritoryOut], summary="Territories by name")
def list_territories(
    request: Request,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[str | None, Query(max_length=40, description="The last name seen.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000), Whole] = 100,
) -> list[dict[str, Any]]:
    return request.app.state.node.database.read(
        lambda c: territories.list_territories(c, owner=owner, after=after, limit=limit)
    )


@router.get(
    "/v1/territories/{name}",
    response_model=TerritoryOut,
    responses={404: {"model": Problem, "content": {PROBLEM_JSON: {}}}},
    summary="A territory",
)
def get_territory(request: Request, name: Annotated[str, Path(max_length=40)]) -> dict[str, Any]:
    row = request.app.state.node.database.read(lambda c: territories.get_territory(c, name))
    if row is None:
        raise ProtocolError("not-found", f"no territory {name}.", 404)
    return row


class FeesOut(BaseModel):
    in_force: dict[str, Any] = Field(description="The split governing a sale now (basis points).")
    announced: list[dict[str, Any]] = Field(description="Published changes not yet in force.")
    notice_days: int = Field(description="How long after publication a change may take effect.")


@router.get("/v1/market/fees", response_model=FeesOut, summary="The market's fee schedule")
def get_fees(request: Request) -> dict[str, Any]:
    now_us = time.time_ns() // 1000

    def load(conn: Any) -> dict[str, Any]:
        current = fees.in_force(conn, now_us)
        later = [s.document() for s in fees.schedules(conn) if s.effective_us > now_us]
        return {"in_force": current.document(), "announced": later,
                "notice_days": fees.NOTICE_DAYS}  # fmt: skip

    return request.app.state.node.database.read(load)
