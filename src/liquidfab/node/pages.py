"""Server-rendered pages: the dashboard's first room, and the API docs served offline."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from liquidfab.db import messages as message_log
from liquidfab.db import participants as directory
from liquidfab.errors import ProtocolError
from liquidfab.factory import catalog as layouts
from liquidfab.factory.diagram import STATE_COLOURS
from liquidfab.ledger import Transfer, TransferFlags, format_amount, reads
from liquidfab.node.routes_messages import message_path
from liquidfab.product import catalog
from liquidfab.protocol import PROTOCOL_VERSION

__all__ = ["install_pages"]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["message_path"] = message_path
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    node = request.app.state.node

    def load(conn):  # type: ignore[no-untyped-def]
        return (
            directory.list_participants(conn),
            message_log.latest_messages(conn, limit=20),
            message_log.count_messages(conn),
        )

    participants, messages, count = node.database.read(load)
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "node": node,
            "protocol_version": PROTOCOL_VERSION,
            "dialect": node.database.dialect,
            "participants": participants,
            "messages": messages,
            "message_count": count,
            "names": {p["did"]: p["display_name"] for p in participants},
            "message_types": list(node.registry),
        },
    )


def _kind(t: Transfer) -> str:
    if t.flags & TransferFlags.PENDING:
        return "pending"
    if t.flags & TransferFlags.POST_PENDING:
        return "posts escrow"
    if t.flags & TransferFlags.VOID_PENDING:
        return "voids escrow"
    return "posted"


templates.env.globals["fmt"] = format_amount
templates.env.globals["kind"] = _kind


@router.get("/ledger", response_class=HTMLResponse)
def ledger_page(request: Request) -> HTMLResponse:
    node = request.app.state.node

    def load(conn):  # type: ignore[no-untyped-def]
        ledgers = [
            {"name": i.name, "decimals": i.decimals, "supply": reads.supply(conn, i.name) or 0}
            for i in reads.list_ledgers(conn)
        ]
        return (
            ledgers,
            reads.list_accounts(conn, limit=500),
            reads.latest_transfers(conn, limit=30),
            reads.get_head(conn),
            reads.latest_checkpoint(conn),
            directory.list_participants(conn),
        )

    ledgers, accounts, transfers, head, checkpoint, participants = node.database.read(load)
    names = {p["did"]: p["display_name"] for p in participants}
    names[node.did] = f"{node.title} (node)"
    return templates.TemplateResponse(
        request,
        "ledger.html",
        {
            "node": node,
            "ledgers": ledgers,
            "decimals": {lg["name"]: lg["decimals"] for lg in ledgers},
            "accounts": accounts,
            "transfers": transfers,
            "head": head,
            "checkpoint": checkpoint,
            "audit": node.ledger.verify(),
            "names": names,
        },
    )


def _option_view(option: Any) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, Fraction):
            return int(v) if v.denominator == 1 else float(v)
        return v

    view: dict[str, Any] = {
        "id": option.id,
        "label": option.label,
        "kind": option.kind,
        "unit": option.unit,
        "group": option.group or "Options",
        "size": option.size,
    }
    if option.size <= 200:
        view["values"] = [{"value": plain(v), "label": option.show(v)} for v in option.domain()]
    else:
        view.update(min=plain(option.min), max=plain(option.max), step=plain(option.step))
    return view


@router.get("/products", response_class=HTMLResponse)
def products_page(request: Request) -> HTMLResponse:
    node = request.app.state.node

    def load(conn):  # type: ignore[no-untyped-def]
        rows = [
            {**row, "latest": catalog.latest(conn, row["id"]) or row["latest"]}
            for row in catalog.list_products(conn)
        ]
        return rows, {p["did"]: p["display_name"] for p in directory.list_participants(conn)}

    rows, names = node.database.read(load)
    return templates.TemplateResponse(
        request, "products.html", {"node": node, "products": rows, "names": names}
    )


@router.get("/products/{product_id}", response_class=HTMLResponse)
@router.get("/products/{product_id}/{version}", response_class=HTMLResponse)
def product_page(request: Request, product_id: str, version: str | None = None) -> HTMLResponse:
    node = request.app.state.node
    item = node.products.get(product_id, version)
    if item is None:
        raise ProtocolError("not-found", f"this node holds no product {product_id}.", 404)
    product = item.product

    def load(conn):  # type: ignore[no-untyped-def]
        return (
            catalog.get_product(conn, product_id),
            catalog.versions_of(conn, product_id),
            {p["did"]: p["display_name"] for p in directory.list_participants(conn)},
            layouts.layouts_of_product(conn, f"{product.id}@{product.version}"),
        )

    row, versions, names, lines = node.database.read(load)
    options = [_option_view(o) for o in product.options.values()]
    groups: dict[str, list[dict[str, Any]]] = {}
    for view in options:
        groups.setdefault(view["group"], []).append(view)
    return templates.TemplateResponse(
        request,
        "product.html",
        {
            "node": node,
            "product": product,
            "row": row,
            "versions": versions,
            "retired": any(
                v["version"] == product.version and v["retired_us"] is not None for v in versions
            ),
            "names": names,
            "groups": groups,
            "options_json": options,
            "lines": lines,
            "api": f"/v1/products/{product.id}/{product.version}",
        },
    )


# A list page simulates the layouts it has not simulated yet for at most this long; the
# rest say so and are simulated when their own page is opened.
LIST_BUDGET_SECONDS = 10.0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "\u2013"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: float | None, digits: int = 1) -> str:
    return "\u2013" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.0%}"


templates.env.globals["duration"] = _duration
templates.env.globals["number"] = _number
templates.env.globals["percent"] = _percent
templates.env.globals["state_colours"] = STATE_COLOURS


@router.get("/factories", response_class=HTMLResponse)
def factories_page(request: Request) -> HTMLResponse:
    node = request.app.state.node

    def load(conn):  # type: ignore[no-untyped-def]
        return (
            layouts.list_layouts(conn),
            {p["did"]: p["display_name"] for p in directory.list_participants(conn)},
        )

    rows, names = node.database.read(load)
    started = time.monotonic()
    entries = []
    for row in rows:
        item = node.factories.get(row["id"], row["latest"])
        kpis = None
        if item is not None and (
            item.simulated or time.monotonic() - started < LIST_BUDGET_SECONDS
        ):
            kpis = item.kpis_or_none()
        entries.append({"row": row, "item": item, "kpis": kpis})
    return templates.TemplateResponse(
        request, "factories.html", {"node": node, "entries": entries, "names": names}
    )


@router.get("/factories/{layout_id}", response_class=HTMLResponse)
@router.get("/factories/{layout_id}/{version}", response_class=HTMLResponse)
def factory_page(request: Request, layout_id: str, version: str | None = None) -> HTMLResponse:
    node = request.app.state.node
    item = node.factories.get(layout_id, version)
    if item is None:
        raise ProtocolError("not-found", f"this node holds no factory layout {layout_id}.", 404)
    layout = item.layout

    def load(conn):  # type: ignore[no-untyped-def]
        return (
            layouts.get_layout(conn, layout.id),
            layouts.get_version(conn, layout.id, layout.version),
            layouts.versions_of(conn, layout.id),
            {p["did"]: p["display_name"] for p in directory.list_participants(conn)},
        )

    row, published, versions, names = node.database.read(load)
    kpis = item.kpis_or_none()
    api = f"/v1/factories/{layout.id}/{layout.version}"
    return templates.TemplateResponse(
        request,
        "factory.html",
        {
            "node": node,
            "layout": layout,
            "row": row,
            "published": published,
            "versions": versions,
            "names": names,
            "kpis": kpis,
            "failure": item.failure(),
            "by_station": {s["id"]: s for s in (kpis or {}).get("stations", [])},
            "diagram": Markup(item.diagram()),  # built from escaped parts (factory.diagram)
            "api": api,
        },
    )


@router.get("/docs", response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="liquidfab node API",
        swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
    )


def install_pages(app: FastAPI) -> None:
    """Mount the pages and the bundled Swagger UI (nothing is fetched from a CDN)."""
    app.mount(
        "/static/swagger-ui",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="swagger-ui",
    )
    app.include_router(router)
