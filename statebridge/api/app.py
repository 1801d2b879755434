"""The three faces of statebridge, and the front that serves them from one process.

- combined (port 8000): the stateless API at the root, both under /api/stateless and /api/stateful
- stateless (port 3001): Phase 1's stateless server at the root
- stateful (port 3002): Phase 1's stateful server at the root
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

from statebridge import __version__
from statebridge.api.docs import docs_router
from statebridge.api.health import router as health_router
from statebridge.api.schemas import openapi_document
from statebridge.api.stateful.routes import router as stateful_router
from statebridge.api.stateful.sessions import router as sessions_router
from statebridge.api.stateless.routes import router as stateless_router
from statebridge.api.web.routes import router as demo_page_router
from statebridge.asgi.cors import Cors
from statebridge.asgi.front import Front
from statebridge.envelope import ApiError, error
from statebridge.observability.logs import AccessLog
from statebridge.observability.metrics import METRICS
from statebridge.stores.sessions.base import StoreUnavailable
from statebridge.wiring.services import Services

log = logging.getLogger("statebridge")
Face = Literal["combined", "stateless", "stateful"]


async def api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    response = error(exc.status_code, exc.message, exc.errors)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        return error(404, "Endpoint not found")
    return error(exc.status_code, str(exc.detail))


async def request_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in item.get("loc", ())), "message": item["msg"]}
        for item in exc.errors()
    ]
    return error(400, "Validation failed", errors)


# A store that cannot be reached (database or Redis down, restarting, pool exhausted): 503
UNAVAILABLE: tuple[type[Exception], ...] = (
    StoreUnavailable,
    DBAPIError,
    PoolTimeout,
    RedisError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    OSError,  # ConnectionError, TimeoutError
)
_last_outage_log = [0.0]


async def store_unavailable(_request: Request, exc: Exception) -> Response:
    """503, counted; logged at most once a second, so an outage does not flood the log.

    A database error caused by the data rather than the connection is not an outage."""
    if isinstance(exc, DataError):
        return error(400, "Validation failed", [{"field": "body", "message": "Value not storable"}])
    if isinstance(exc, IntegrityError):
        return error(409, "Conflicting change, try again")
    METRICS.store_error("redis" if isinstance(exc, RedisError) else "database")
    now = time.monotonic()
    if now - _last_outage_log[0] >= 1.0:
        _last_outage_log[0] = now
        log.warning("store unavailable, answering 503: %s: %s", type(exc).__name__, exc)
    response = error(503, "Service temporarily unavailable")
    response.headers["Retry-After"] = "1"
    return response


async def internal_error(_request: Request, _exc: Exception) -> Response:
    """The answer; the front logs the error with its route and request id."""
    return error(500, "Internal server error")


def build_app(services: Services, face: Face) -> FastAPI:
    app = FastAPI(
        title=f"statebridge ({face})",
        version=__version__,
        docs_url=None,  # Swagger UI from package files, below (statebridge/api/docs.py)
        redoc_url=None,
        openapi_url="/openapi.json" if face == "combined" else None,
    )
    app.state.services = services
    # typed bodies in /openapi.json; they are read at run time by `Body`, not by these models
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    app.include_router(health_router, tags=["operations"])
    if face in ("combined", "stateless"):
        app.include_router(stateless_router, tags=["stateless"])
    if face == "stateful":
        app.include_router(stateful_router, tags=["stateful"])
        app.include_router(sessions_router, tags=["sessions"])
    if face == "combined":
        app.include_router(stateless_router, prefix="/api/stateless", tags=["stateless"])
        app.include_router(stateful_router, prefix="/api/stateful", tags=["stateful"])
        app.include_router(sessions_router, prefix="/api/stateful", tags=["sessions"])
        app.include_router(demo_page_router)
        app.include_router(docs_router(app.title, app.openapi_url or "/openapi.json"))
    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: api_error,
        HTTPException: http_error,
        RequestValidationError: request_validation_error,
        **dict.fromkeys(UNAVAILABLE, store_unavailable),
        Exception: internal_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    return app


def build_front(
    services: Services,
    faces: Mapping[int, Face],
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Front:
    """One ASGI app for every listener (port -> face); the first face answers unknown ports."""
    apps = {port: build_app(services, face) for port, face in faces.items()}
    settings = services.settings
    return Front(
        apps,
        default=next(iter(apps.values())),
        instance_id=services.instance_id,
        metrics=METRICS,
        access_log=AccessLog(services.instance_id) if settings.access_log else None,
        cors=Cors(
            settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=[
                "Content-Type",
                "Authorization",
                "Session-ID",
                "Client-ID",
                "X-Request-ID",
            ],
            expose_headers=["Session-ID", "X-Instance-ID", "X-Request-ID"],
        ),
        session_cookie=settings.session_cookie_name if settings.session_cookie else None,
        on_shutdown=on_shutdown,
    )
