"""The production rooms of the dashboard: orders by state, units and their public
passports, and the virtual line replayed at any simulated moment.

Read-only and unauthenticated: a unit's page shows the public tier of its passport and
nothing more (the owner and authority tiers are read with a signed request). Lists page
by keyset (``before`` = the last row's time, ``before_id`` = its id) so rows that share
a time are neither repeated nor skipped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, and_, func, or_, select

from liquidfab.db import participants as directory
from liquidfab.db.tables import orders as orders_table
from liquidfab.db.tables import units as units_table
from liquidfab.ledger import reads
from liquidfab.node.pages import _duration, _number, templates
from liquidfab.production import orders, runs, stock, supply, units

__all__ = ["busiest_moment", "display_names", "render_page", "router", "summary_cards"]

router = APIRouter(include_in_schema=False)
PAGE = 50
StateName = orders.State
Before = Annotated[int | None, Query(ge=0, le=2**63 - 1)]
BeforeId = Annotated[str | None, Query(max_length=100)]
PRODUCE = "liquidfab produce --world examples/ebike --orders 100"


def _when(us: int | None) -> str:
    if us is None:
        return "\u2013"
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(seconds: float) -> str:
    """Simulated time as h:mm:ss (what the line's slider shows too)."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _short(did: str) -> str:
    return f"{did[:16]}\u2026{did[-6:]}" if len(did) > 24 else did


def display_names(conn: Connection) -> dict[str, str]:
    return {p["did"]: p["display_name"] for p in directory.list_participants(conn)}


def render_page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    node = request.app.state.node
    helpers = {"when": _when, "clock": _clock, "short": _short}
    return templates.TemplateResponse(
        request, template, {"node": node, **helpers, **context}, status_code=status
    )


def _keyset(time_col: Any, id_col: Any, before: int | None, before_id: str | None) -> Any:
    """Rows older than the cursor (time, id) in (time desc, id desc) order."""
    if before is None:
        return None
    if before_id is None:
        return time_col < before
    return or_(time_col < before, and_(time_col == before, id_col < before_id))


# --- orders -------------------------------------------------------------------------------


def _state_counts(conn: Connection) -> dict[str, int]:
    query = select(orders_table.c.state, func.count()).group_by(orders_table.c.state)
    found = {state: int(n) for state, n in conn.execute(query)}
    return {state: found.get(state, 0) for state in orders.STATES}


def _order_rows(
    conn: Connection, state: str | None, before: int | None, before_id: str | None
) -> list[dict[str, Any]]:
    columns = [c for c in orders_table.c if c.name not in ("program", "choices")]
    query = select(*columns).order_by(orders_table.c.created_us.desc(), orders_table.c.id.desc())
    if state is not None:
        query = query.where(orders_table.c.state == state)
    older = _keyset(orders_table.c.created_us, orders_table.c.id, before, before_id)
    if older is not None:
        query = query.where(older)
    return [dict(r._mapping) for r in conn.execute(query.limit(PAGE + 1))]


@router.get("/orders", response_class=HTMLResponse)
def orders_page(
    request: Request,
    state: StateName | None = None,
    before: Before = None,
    before_id: BeforeId = None,
) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...]:
        return _state_counts(conn), _order_rows(conn, state, before, before_id), display_names(conn)

    counts, rows, names = request.app.state.node.database.read(load)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    older = {"before": rows[-1]["created_us"], "before_id": rows[-1]["id"]} if more else None
    return render_page(
        request,
        "orders.html",
        counts=counts,
        total=sum(counts.values()),
        state=state,
        orders=rows,
        names=names,
        older=older,
        paged=before is not None,
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: str) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...] | None:
        row = orders.get_order(conn, order_id) if len(order_id) <= 100 else None
        if row is None:
            return None
        history = orders.events_of(conn, order_id)
        return row, history, units.unit_for_order(conn, order_id), display_names(conn)

    found = request.app.state.node.database.read(load)
    if found is None:
        return render_page(request, "order.html", 404, order=None, order_id=order_id)
    row, history, unit, names = found
    return render_page(
        request,
        "order.html",
        order=row,
        history=history,
        unit=unit,
        steps=row["program"].get("steps", []),
        names=names,
    )


# --- units --------------------------------------------------------------------------------


def _unit_rows(conn: Connection, before: int | None, before_id: str | None) -> list[dict[str, Any]]:
    columns = [c for c in units_table.c if c.name != "as_built"]
    query = select(*columns).order_by(units_table.c.built_us.desc(), units_table.c.serial.desc())
    older = _keyset(units_table.c.built_us, units_table.c.serial, before, before_id)
    if older is not None:
        query = query.where(older)
    return [dict(r._mapping) for r in conn.execute(query.limit(PAGE + 1))]


@router.get("/units", response_class=HTMLResponse)
def units_page(request: Request, before: Before = None, before_id: BeforeId = None) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...]:
        total = conn.execute(select(func.count()).select_from(units_table)).scalar_one()
        return _unit_rows(conn, before, before_id), display_names(conn), int(total)

    rows, names, total = request.app.state.node.database.read(load)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    older = {"before": rows[-1]["built_us"], "before_id": rows[-1]["serial"]} if more else None
    return render_page(
        request,
        "units.html",
        units=rows,
        names=names,
        total=total,
        older=older,
        paged=before is not None,
    )


def _words(id_short: str) -> str:
    """``URIOfTheProduct`` → ``URI of the product``: words from the camel case, acronyms kept."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b)|[A-Z]?[a-z]+|\d+|[A-Z]+", id_short)
    if not words:
        return id_short
    rest = [w if len(w) > 1 and w.isupper() else w.lower() for w in words[1:]]
    return " ".join([words[0], *rest])


def _value(element: dict[str, Any]) -> str:
    value = element.get("value")
    if isinstance(value, list):  # a MultiLanguageProperty: English first, else the first
        texts = {v.get("language"): v.get("text", "") for v in value if isinstance(v, dict)}
        return texts.get("en") or next(iter(texts.values()), "")
    return "" if value is None else str(value)


def _properties(elements: list[Any], within: str = "") -> list[dict[str, str]]:
    """Label/value rows of AAS elements; a collection's members are labelled under it."""
    rows = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        id_short = str(element.get("idShort", ""))
        label = f"{within} \u203a {_words(id_short)}" if within else _words(id_short)
        if element.get("modelType") in ("SubmodelElementCollection", "SubmodelElementList"):
            rows.extend(_properties(element.get("value") or [], label))
        else:
            rows.append({"id": id_short, "label": label, "value": _value(element)})
    return rows


def _nameplate(public: dict[str, Any]) -> list[dict[str, str]]:
    """The public passport's nameplate properties as label/value rows."""
    rows = []
    for submodel in public.get("aas", {}).get("submodels", []):
        rows.extend(_properties(submodel.get("submodelElements", [])))
    return rows


@router.get("/units/{serial}", response_class=HTMLResponse)
def unit_page(request: Request, serial: str) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...] | None:
        unit = units.get_unit(conn, serial) if len(serial) <= 64 else None
        if unit is None:
            return None
        # Only the public tier leaves this function: the page has no signed reader.
        return units.passport(conn, unit, "public"), unit["order_id"], display_names(conn)

    found = request.app.state.node.database.read(load)
    if found is None:
        return render_page(request, "unit.html", 404, passport=None, serial=serial)
    public, order_id, names = found
    return render_page(
        request,
        "unit.html",
        passport=public,
        order_id=order_id,
        nameplate=_nameplate(public),
        names=names,
        api=f"/v1/units/{public['serial']}/passport",
    )


# --- the line -----------------------------------------------------------------------------

# Figures a run's summary may hold, shown first and named for people; the rest follow
# as they are, labelled from their keys.
_KNOWN: tuple[tuple[str, tuple[tuple[str, ...], ...], str], ...] = (
    ("orders", (("orders",), ("orders_placed",)), "count"),
    ("units built", (("units_built",),), "count"),
    ("units per hour", (("throughput_per_hour",),), "rate"),
    (
        "lead time, median",
        (
            ("lead_time_p50_seconds",),
            ("lead_time_p50",),
            ("lead_time_seconds", "p50"),
            ("lead_time", "p50"),
        ),
        "duration",
    ),
    (
        "lead time, 95 % within",
        (
            ("lead_time_p95_seconds",),
            ("lead_time_p95",),
            ("lead_time_seconds", "p95"),
            ("lead_time", "p95"),
        ),
        "duration",
    ),
    ("setup time", (("setup_seconds",), ("total_setup_seconds",)), "duration"),
    ("payments settled", (("payments_settled",), ("payments", "settled")), "count"),
)


def _format(value: Any, kind: str) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if kind == "duration":
            return _duration(float(value))
        if kind == "rate" or isinstance(value, float):
            return _number(float(value), 2 if abs(value) < 100 else 1)
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if len(value) <= 6 else f"{len(value)} items"
    return str(value)


def _leaves(summary: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in summary.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, (*path, str(key))))
        else:
            out[(*path, str(key))] = value
    return out


def summary_cards(summary: dict[str, Any]) -> list[dict[str, str]]:
    """A run's summary as cards: the known figures first, then every other leaf."""
    leaves = _leaves(summary)
    cards = []
    for label, paths, kind in _KNOWN:
        for path in paths:
            taken = [p for p in leaves if p[: len(path)] == path]
            if not taken:
                continue
            if path in leaves:
                value: Any = leaves[path]
            else:  # a dict: of times (setup seconds per station) the total, else as it is
                parts = [leaves[p] for p in taken]
                numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in parts)
                if kind != "duration" or not numbers:
                    continue
                value = sum(parts)
            for p in taken:
                del leaves[p]
            key = "-".join(path).replace("_", "-")
            cards.append({"key": key, "label": label, "value": _format(value, kind)})
            break
    for path, value in leaves.items():
        kind = "duration" if any("seconds" in p for p in path) else "plain"
        cards.append(
            {
                "key": "-".join(path).replace("_", "-"),
                "label": " ".join(path).replace("_", " "),
                "value": _format(value, kind),
            }
        )
    return cards


def busiest_moment(trace: dict[str, Any]) -> float:
    """The earliest simulated time with the most units at stations (0 for an empty line)."""
    stations = {s["id"] for s in trace.get("stations", [])}  # as ``runs.units_at`` counts
    events: list[tuple[float, int]] = []
    for unit in trace.get("units", []):
        for station, start, finish in unit.get("visits", []):
            if station in stations and finish > start:
                events.append((float(start), 1))
                events.append((float(finish), -1))
    events.sort()  # at equal times a unit leaves (-1) before the next arrives (+1)
    best, best_at, now = 0, 0.0, 0
    for at, step in events:
        now += step
        if now > best:
            best, best_at = now, at
    return best_at


def _horizon(trace: dict[str, Any]) -> float:
    if trace.get("horizon"):
        return float(trace["horizon"])
    finishes = [v[2] for u in trace.get("units", []) for v in u.get("visits", [])]
    return float(max(finishes, default=0.0))


def _stock_and_supply(conn: Connection) -> tuple[Any, ...]:
    decimals = {i.name: i.decimals for i in reads.list_ledgers(conn)}
    return (
        stock.stock_levels(conn),
        supply.list_contracts(conn, limit=PAGE),
        decimals,
    )


@router.get("/line", response_class=HTMLResponse)
def line_page(request: Request) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...]:
        return runs.latest_run(conn), *_stock_and_supply(conn), display_names(conn)

    run, stock, contracts, decimals, names = request.app.state.node.database.read(load)
    context: dict[str, Any] = {
        "run": run,
        "stock": stock,
        "contracts": contracts,
        "decimals": decimals,
        "names": names,
        "produce": PRODUCE,
    }
    if run is not None:
        trace = run["trace"]
        t = busiest_moment(trace)
        context.update(
            cards=summary_cards(run["summary"]),
            trace=trace,
            stations=trace.get("stations", []),
            horizon=_horizon(trace),
            t=t,
            at=runs.units_at(trace, t),
        )
    return render_page(request, "line.html", **context)
