"""The ASGI app ``steadyscale run`` serves: the JSON API under ``/api/v1`` (its OpenAPI
document at ``/openapi.json``, checked in as ``docs/openapi.json``), the web page at ``/``
and its static files, a limit on request bodies, and every refusal as one JSON line
(``{"detail": "..."}``), never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steadyscale.api import demand, nodes, stream, workload
from steadyscale.api.context import ApiContext

log = logging.getLogger("steadyscale.api")
STATIC = Path(__file__).parent / "static"
TITLE = "steadyscale"
CLUSTER_HEADER = "X-Steadyscale-Cluster"
API_VERSION = "1"
_NO_PAGE = (
    "<!doctype html><title>steadyscale</title><p>steadyscale's API is at /api/v1 "
    "(its description: <a href='/openapi.json'>/openapi.json</a>).</p>"
)


def create_app(ctx: ApiContext) -> FastAPI:
    """The app on ``ctx``: the routes, the page, and the limit on request bodies."""
    app = _routes()
    app.state.ctx = ctx
    app.add_middleware(BodyLimit, limit=ctx.max_body_bytes)
    app.add_middleware(ClusterHeader, cluster_name=ctx.config.cluster_name)
    return app


def _routes() -> FastAPI:
    app = FastAPI(
        title=TITLE,
        version=API_VERSION,
        description="Demand, nodes, usage, drain and events of one steadyscale cluster. "
        "Send `Authorization: Bearer <token>`; see docs/api.md.",
        docs_url=None,
        redoc_url=None,
    )
    for router in (nodes.router, demand.router, workload.router, stream.router):
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _refused)
    app.add_exception_handler(Exception, _failed)

    @app.get("/", include_in_schema=False, response_model=None)
    def page() -> FileResponse | HTMLResponse:
        index = STATIC / "index.html"
        return FileResponse(index) if index.is_file() else HTMLResponse(_NO_PAGE)

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document (what ``docs/openapi.json`` holds)."""
    return _routes().openapi()


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """A malformed request, as one line: where, and what is wrong."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    tail = f" (and {more} more problem(s))" if more > 0 else ""
    return JSONResponse({"detail": f"{where}: {message}{tail}"}, status_code=422)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": str(exc.detail)}, exc.status_code, headers=exc.headers)


async def _failed(request: Request, exc: Exception) -> JSONResponse:
    log.exception("API %s %s failed", request.method, request.url.path)
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


class BodyLimit:
    """Refuses a request body over ``limit`` bytes (413), by its Content-Length or, sent
    in chunks, as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            response = JSONResponse({"detail": _too_large(self.limit)}, status_code=413)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # (an HTTPException: FastAPI passes it on from reading a body)
                raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, counted, send)


class ClusterHeader:
    """Names the cluster on every answer (``X-Steadyscale-Cluster``): a client given the
    address of another cluster's daemon tells it at once."""

    def __init__(self, app: ASGIApp, cluster_name: str) -> None:
        self.app = app
        self.header = (CLUSTER_HEADER.lower().encode(), cluster_name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, named if scope["type"] == "http" else send)


def _too_large(limit: int) -> str:
    return f"request body over {limit} bytes (api.max_body_bytes); send less at once"
