"""The node's HTTP face: FastAPI app factory."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import liquidfab
from liquidfab.node.core import Node
from liquidfab.node.pages import install_pages
from liquidfab.node.pages_fleet import router as fleet_pages
from liquidfab.node.pages_market import router as market_pages
from liquidfab.node.pages_production import router as production_pages
from liquidfab.node.problems import PROBLEM_JSON, install_problem_handlers
from liquidfab.node.routes_devices import router as devices_router
from liquidfab.node.routes_factories import router as factories_router
from liquidfab.node.routes_ledger import router as ledger_router
from liquidfab.node.routes_market import router as market_router
from liquidfab.node.routes_messages import envelope_schema
from liquidfab.node.routes_messages import router as messages_router
from liquidfab.node.routes_orders import router as orders_router
from liquidfab.node.routes_products import router as products_router
from liquidfab.node.routes_read import router as read_router
from liquidfab.node.routes_runs import router as runs_router
from liquidfab.node.routes_store import router as store_router
from liquidfab.node.routes_tuf import router as tuf_router
from liquidfab.node.routes_units import router as units_router

__all__ = ["create_app"]

DESCRIPTION = """A liquidfab node: participants send signed CloudEvents; the node checks,
deduplicates and applies each one in a single transaction. Refusals are RFC 9457
problem+json with a stable `code`. The protocol is specified in docs/protocol.md."""


def _refusals_are_problems(schema: dict[str, Any]) -> None:
    """Describe every 4xx/5xx answer as what the node sends: problem+json, nothing else."""
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = dict(problem)
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)


def create_app(node: Node) -> FastAPI:
    """An ASGI app serving ``node``."""
    app = FastAPI(
        title="liquidfab node",
        version=liquidfab.__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    install_problem_handlers(app)
    app.include_router(messages_router)
    app.include_router(read_router)
    app.include_router(ledger_router)
    app.include_router(products_router)
    app.include_router(factories_router)
    app.include_router(orders_router)
    app.include_router(units_router)
    app.include_router(runs_router)
    app.include_router(devices_router)
    app.include_router(tuf_router)
    app.include_router(market_router)
    app.include_router(store_router)
    app.include_router(production_pages)
    app.include_router(fleet_pages)
    app.include_router(market_pages)
    install_pages(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            envelope = envelope_schema()
            components.update(envelope.pop("$defs", {}))
            components["LiquidfabMessage"] = envelope
            _refusals_are_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
