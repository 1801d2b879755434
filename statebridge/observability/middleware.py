"""Pure ASGI middleware: request ids, metrics, the access log, and a last-resort 500.

It sits just inside the security-headers middleware, so even the 500 it writes for an
unhandled exception carries X-Instance-ID, X-Request-ID and the helmet headers (Starlette's
own last-resort handler sits outside every middleware and would send it bare).
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from statebridge.envelope import error
from statebridge.observability.logs import AccessLog
from statebridge.observability.metrics import UNMATCHED, Metrics

log = logging.getLogger("statebridge")
SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
CLIENT_CLOSED = 499  # nginx's code for a client that went away before the answer


def new_request_id() -> bytes:
    return os.urandom(12).hex().encode("ascii")


def route_of(scope: Scope) -> str:
    """The matched route's template, prefix included (`/api/stateful/cart/remove/{product_id}`),
    never the raw path: label values stay bounded whatever clients send.

    FastAPI >= 0.160 keeps included routes unflattened and records the full template in its
    effective route context; older versions flatten them, so the route's own path is whole."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if isinstance(template, str) and template:
        return template
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        access_log: AccessLog | None,
        session_header: bytes = b"session-id",
        session_cookie: bytes | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.session_header = session_header
        self.session_cookie = session_cookie + b"=" if session_cookie else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id: bytes | None = None
        has_session = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if SANE_REQUEST_ID.match(value):
                    request_id = value
            elif name == self.session_header:
                has_session = bool(value)
            elif name == b"cookie" and self.session_cookie and self.session_cookie in value:
                has_session = True
        if request_id is None:
            request_id = new_request_id()
        status = 500
        response_started = False

        async def send_observed(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        metrics = self.metrics
        metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_observed)
        except ClientDisconnect:
            if not response_started:
                status = CLIENT_CLOSED
        except Exception as exc:
            log.error(
                "unhandled error in %s %s (request %s)",
                scope.get("method"),
                route_of(scope),
                request_id.decode(),
                exc_info=exc,
            )
            if response_started:
                raise
            await error(500, "Internal server error")(scope, receive, send_observed)
        finally:
            metrics.in_flight -= 1
            seconds = time.perf_counter() - started_at
            route = route_of(scope)
            method = scope.get("method", "")
            metrics.observe_request(route, method, status, seconds)
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.write(
                    request_id.decode(),
                    method,
                    route,
                    status,
                    seconds,
                    has_session,
                    client[0] if client else "",
                    scope.get("scheme", "http"),
                )
