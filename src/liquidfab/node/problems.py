"""Every refusal leaves the node as RFC 9457 problem+json with a stable code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from liquidfab.errors import ProtocolError, StoreError

__all__ = ["PROBLEM_JSON", "install_problem_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("liquidfab.node")

_HTTP_CODES = {
    400: "malformed",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
}


def problem_response(
    error: ProtocolError, instance: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error.problem(instance), error.status, headers=headers, media_type=PROBLEM_JSON
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (one path may have several routes).

    Asked of each route through ``matches``, the one interface every kind of route
    (plain, mounted, included router) answers.
    """
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to problem+json."""

    @app.exception_handler(ProtocolError)
    async def _protocol(request: Request, exc: ProtocolError) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in err.get("loc", ()))
        return problem_response(
            ProtocolError("schema-invalid", f"{where}: {err.get('msg')}", 422), request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http-{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}; the API is listed at /openapi.json."
        # Headers such as a 405's Allow are part of the answer (RFC 9110 15.5.6).
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
            detail = f"{request.method} is not allowed here; use {headers['Allow']}."
        return problem_response(
            ProtocolError(code, detail, exc.status_code), request.url.path, headers
        )

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        log.exception("store error on %s", request.url.path)
        return problem_response(
            ProtocolError("store-unavailable", "the node's database failed; retry later.", 503),
            request.url.path,
        )
