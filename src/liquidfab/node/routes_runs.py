"""Read-only production API: runs of the virtual line, parts stock and supply contracts.

What ``liquidfab produce`` and the supply messages leave in the database, as JSON, so a
peer sees the same figures the line page shows. Quantities are thousandths of the
part's unit (``*_milli``); amounts are strings in base units of their ledger.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from liquidfab.errors import ProtocolError
from liquidfab.node.models import Problem
from liquidfab.node.params import Whole
from liquidfab.node.problems import PROBLEM_JSON
from liquidfab.production import runs, stock, supply

__all__ = ["router"]

router = APIRouter(tags=["production"])
_NOT_FOUND = {404: {"model": Problem, "content": {PROBLEM_JSON: {}}}}
RunIdPath = Annotated[str, Path(max_length=36, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,35}$")]
ContractIdPath = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]
SupplyState = Literal[
    "requested", "offered", "agreed", "finalized", "started", "completed", "terminated"
]
Did = Annotated[str | None, Query(max_length=200)]


class RunSummaryOut(BaseModel):
    id: str
    manufacturer: str
    layout_id: str
    layout_version: str
    summary: dict[str, Any] = Field(description="What the run measured (orders, units, ...).")
    started_us: int
    finished_us: int


class RunOut(RunSummaryOut):
    trace: dict[str, Any] = Field(
        description="horizon, stations in line order, and per unit its station visits "
        "[station, start s, finish s] (the last units of the run)."
    )


class LotOut(BaseModel):
    lot: str
    supplier: str
    contract_id: str
    received_milli: int
    left_milli: int
    received_us: int


class StockOut(BaseModel):
    owner: str
    part: str
    on_hand_milli: int = Field(description="Thousandths of the part's unit on hand.")
    received_milli: int = Field(description="Thousandths ever received.")
    lot_count: int = Field(description="Lots still holding any.")
    latest_lot: str | None
    lots: list[LotOut] = Field(description="Lots holding any, oldest (drawn first) first.")


class SupplyEventOut(BaseModel):
    seq: int
    state: str
    actor: str = Field(description="The did that signed the step.")
    message: str = Field(description="The message that made it: '<source> <id>'.")
    transfer: str | None
    note: str | None
    at_us: int


class ContractSummaryOut(BaseModel):
    id: str
    consumer: str
    supplier: str
    part: str
    quantity_milli: int
    unit_price: str | None
    ledger: str
    amount: str | None = Field(description="Base units of ``ledger``, once agreed.")
    pending_transfer: str | None
    lot: str | None
    state: str
    created_us: int
    updated_us: int


class ContractOut(ContractSummaryOut):
    history: list[SupplyEventOut]


def _read(request: Request, fn: Any) -> Any:
    return request.app.state.node.database.read(fn)


def _contract(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "amount": None if row["amount"] is None else str(row["amount"])}


@router.get(
    "/v1/production/runs",
    response_model=list[RunSummaryOut],
    summary="Runs of the virtual line, newest first, without their traces",
)
def list_runs(
    request: Request, limit: Annotated[int, Query(ge=1, le=100), Whole] = 20
) -> list[dict[str, Any]]:
    return _read(request, lambda conn: runs.list_runs(conn, limit))


@router.get(
    "/v1/production/runs/{run_id}",
    response_model=RunOut,
    responses=_NOT_FOUND,
    summary="One run of the virtual line, with its unit-by-station trace",
)
def get_run(request: Request, run_id: RunIdPath) -> dict[str, Any]:
    found = _read(request, lambda conn: runs.get_run(conn, run_id))
    if found is None:
        raise ProtocolError("not-found", f"this node holds no production run {run_id}.", 404)
    return found


@router.get(
    "/v1/production/stock",
    response_model=list[StockOut],
    summary="Parts on hand per owner and part, with the lots holding them",
)
def get_stock(
    request: Request, owner: Did = None, part: Annotated[str | None, Query(max_length=200)] = None
) -> list[dict[str, Any]]:
    return _read(
        request,
        lambda conn: stock.stock_levels(conn, owner=owner, part=part, with_lots=True),
    )


@router.get(
    "/v1/production/supply",
    response_model=list[ContractSummaryOut],
    summary="Supply contracts, newest first, by state, consumer or supplier",
)
def list_contracts(
    request: Request,
    state: SupplyState | None = None,
    consumer: Did = None,
    supplier: Did = None,
    limit: Annotated[int, Query(ge=1, le=500), Whole] = 100,
    before_us: Annotated[int | None, Query(ge=0, le=2**63 - 1), Whole] = None,
) -> list[dict[str, Any]]:
    rows = _read(
        request,
        lambda conn: supply.list_contracts(
            conn,
            state=state,
            consumer=consumer,
            supplier=supplier,
            limit=limit,
            before_us=before_us,
        ),
    )
    return [_contract(row) for row in rows]


@router.get(
    "/v1/production/supply/{contract_id}",
    response_model=ContractOut,
    responses=_NOT_FOUND,
    summary="A supply contract with its history",
)
def get_contract(request: Request, contract_id: ContractIdPath) -> dict[str, Any]:
    def load(conn: Any) -> dict[str, Any] | None:
        row = supply.get_contract(conn, contract_id)
        if row is None:
            return None
        return {**_contract(row), "history": supply.events_of(conn, contract_id)}

    found = _read(request, load)
    if found is None:
        raise ProtocolError("not-found", f"this node holds no supply contract {contract_id}.", 404)
    return found
